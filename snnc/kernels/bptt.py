"""softbp's compiled step-by-step run: C for the forward of every step of a network that
runs step by step (a cycle), recording what its reverse needs, and for that reverse
(backpropagation through time), so that training a recurrent network costs two native
calls per forward and backward instead of a dozen autograd nodes per step. This module
turns the plan into the context of templates/kernels/bptt.c.j2; snnc.runtime.bptt builds
the source and wraps it in one autograd Function.

The forward computes what the PyTorch step path computes, in its order (the clock loop's
statements: kernels.loop), so the spikes are the same; the reverse is each operation's
derivative as PyTorch's autograd takes it: a population's step from its tape
(kernels.context), a synapse's from its own tape (kernels.tape), the projections as their
transposes, the surrogate gradient at the spikes.

What it runs (anything else: `bptt_source` is None and the PyTorch path runs; `unsupported`
names why):
- populations whose step the fused kernels run, with refractory periods, without ILC
  feedback or states that connections deliver into (`channel`);
- connections whose pipeline is `flatten`s and `scale`s around at most one dense (on a
  flat input), sparse or one_to_one op, with a delay, and a synapse that acts on the
  current (not a presynaptic one, not per-synapse delays, no plasticity rule).

Layouts (arrays with a batch axis: [B, n] for the states, [T, B, n] over the steps):
every node's values at every step (`values`: a population's spikes, an input's or
encoder's given values); a population's states before the run (`state`, in; after it,
out), its countdown, and per step its states before the step (`tape_state`), countdown
(`tape_count`) and input (`tape_x`); a synapse's states (`synapse_state`) and per step
its states before the step and its input (`tape_synapse`, `tape_sx`). The backward's
gradients sit beside them (`grad_*`), the weights' and parameters' per simulation
([B, ...], summed by the caller).
"""
from __future__ import annotations

import math

from snnc import __version__
from snnc.ir import expr as ex
from snnc.kernels.abi import BPTT_ABI
from snnc.kernels.context import commentable, printed_step, step_context
from snnc.kernels.loop import (Arguments, first_unsupported, synapse_locals,
                              unsupported_pipeline)
from snnc.kernels.tape import Tape, value_of
from snnc.plan.nodes import STEPS, Plan, Projection, SynapseStep
from snnc.printers import CPrinter
from snnc.templating import templates


def bptt_source(plan: Plan) -> str | None:
    """The C of the network's compiled run and its reverse, or None where it cannot."""
    if unsupported(plan) is not None:
        return None
    return templates().get_template("kernels/bptt.c.j2").render(_Run(plan).context())


def unsupported(plan: Plan) -> str | None:
    """The first thing about `plan` that the compiled run does not do, or None."""
    if plan.mode != STEPS:
        return "a network without a cycle (it runs layer by layer)"
    return first_unsupported(plan, _unsupported_projection)


def _unsupported_projection(proj: Projection) -> str | None:
    reason = unsupported_pipeline(proj)
    if reason is not None:
        return reason
    if proj.synapse_delays:
        return "per-synapse delays"
    if proj.synapse is not None and proj.synapse.presynaptic:
        return "a presynaptic synapse"
    if proj.channel is not None:
        return "a connection into a state"
    if proj.learning is not None:
        return "a plasticity rule"
    return None


class _Run:
    """The template context of one network's compiled run."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.args = Arguments()
        self.nodes = {name: self._node(i, name) for i, name in enumerate(plan.order)}
        self.connections = [self._connection(i, p) for i, p in enumerate(plan.projections)]
        for conn, proj in zip(self.connections, plan.projections, strict=True):
            self.nodes[proj.dst]["incoming"].append(conn)

    def context(self) -> dict:
        nodes = list(self.nodes.values())
        return {"version": __version__, "abi": BPTT_ABI, "network": commentable(self.plan.name),
                "args": self.args.items, "layout": self.args.layout(), "nodes": nodes,
                "populations": [n for n in nodes if n["kind"] == "population"],
                "connections": self.connections}

    def _node(self, i: int, name: str) -> dict:
        node = self.plan.node(name)
        n, add = math.prod(node.shape), self.args.add
        common = {"i": i, "name": commentable(name), "n": n,
                  "sent": add("values", name), "grad_sent": add("grad_values", name)}
        if node.kind != "population":
            return {**common, "kind": "external"}
        context = step_context(node)
        printed = printed_step(node, context, CPrinter)
        states = [{"c": s["c"], "array": add("state", name, state),
                   "tape": add("tape_state", name, state),
                   "grad": add("grad_state", name, state)}
                  for s, state in zip(context["states"], node.model.states, strict=True)]
        params = [p["c"] for p in context["params"]]
        return {**common, "kind": "population", "states": states, "params": params,
                "param_array": add("params", name) if params else None,
                "grad_params": add("grad_params", name) if params else None,
                "refractory": node.refractory,
                "countdown": add("countdown", name) if node.refractory else None,
                "tape_count": add("tape_count", name) if node.refractory else None,
                "tape_x": add("tape_x", name), "surrogate": context["surrogate"],
                "reset_on": 0 if node.detach_reset else 1,
                "incoming": [], **{k: printed[k] for k in (
                    "charge", "fire", "reset", "backward", "g_x", "g_prev", "g_param")}}

    def _connection(self, i: int, proj: Projection) -> dict:
        add, name = self.args.add, proj.name
        n_in, n_out = math.prod(self.plan.node(proj.src).shape), math.prod(proj.out_shape)
        weighted = proj.weighted
        scales = [(k, CPrinter().number(op.params["c"])) for k, op in enumerate(proj.ops)
                  if op.kind == "scale"]
        kind = proj.connectivity if weighted is not None else "identity"
        conn = {"i": i, "name": commentable(name), "src": self.nodes[proj.src], "n_in": n_in,
                "n_out": n_out, "delay": proj.delay, "connectivity": kind,
                "before": [c for k, c in scales if weighted is None or k < weighted],
                "after": [c for k, c in scales if weighted is not None and k > weighted],
                "synapse": None, "bias": None, "weight": None}
        if weighted is not None:
            # the weights' shape (the driver checks the modules' against it)
            shape = {"dense": (n_out, n_in), "one_to_one": (n_in,)}.get(kind)
            conn["weight"] = add("weight", name, kind, shape=shape)
            conn["grad_weight"] = add("grad_weight", name, kind)
            # how many weights there are, as C
            conn["synapses"] = str(math.prod(shape)) if shape else None
            if kind == "sparse":
                conn["offsets"] = add("offsets", name, shape=(n_in + 1,), ctype="index_t")
                conn["targets"] = add("targets", name, ctype="index_t")
                conn["synapses"] = f"{conn['offsets']}[{n_in}]"
            if kind == "dense" and proj.ops[weighted].params.get("bias"):
                conn["bias"] = {"array": add("bias", name, shape=(n_out,)),
                                "grad": add("grad_bias", name)}
        if proj.synapse is not None:
            conn["synapse"] = _synapse(proj.synapse, i, name, self.args)
            conn["tape_sx"] = add("tape_sx", name)
        return conn


def _synapse(syn: SynapseStep, i: int, owner: str, args: Arguments) -> dict:
    """A synapse's step (sx in, its states q<i>_<k> and learnable parameters l<i>_<k>)
    and its reverse from its tape: from the gradient reaching its output (g_out) and its
    states after the step (g_q<i>_<k>), the gradients reaching sx, its states before the
    step and its parameters."""
    states, temps, learnable, local = synapse_locals(syn, i)
    printer = CPrinter(lambda name: local.get(name, name))
    out = {"states": [{"c": local[name], "array": args.add("synapse_state", owner, name),
                       "tape": args.add("tape_synapse", owner, name),
                       "grad": args.add("grad_synapse_state", owner, name)}
                      for name in states],
           "temps": [local[name] for name in dict.fromkeys(temps)],
           "params": [local[name] for name in learnable],
           "param_array": args.add("synapse_params", owner) if learnable else None,
           "grad_params": args.add("grad_synapse_params", owner) if learnable else None,
           "lines": [f"{local[a.target]} = {printer(a.value)};" for a in syn.update],
           "output": printer(syn.output)}
    return {**out, **_synapse_reverse(syn, states, learnable, local)}


def _synapse_reverse(syn: SynapseStep, states: list[str], learnable: list[str],
                     local: dict[str, str]) -> dict:
    """The synapse's step on a tape, its inputs sx, prev_<state> and the parameters (as
    the forward spells them), run in reverse: statements, and the gradients reaching sx
    (g_sx), each state before the step (g_prev) and each parameter (g_param) as C."""
    tape = Tape(prefix=f"{local['x']}_t")
    inputs = {"x": ex.Name("sx"), **{s: ex.Name(f"prev_{local[s]}") for s in states},
              **{p: ex.Name(local[p]) for p in learnable}}
    env: dict[str, ex.Expr] = dict(inputs)
    for assign in syn.update:
        env[assign.target] = tape.lower(assign.value, env)
    output = tape.lower(syn.output, env)
    seeds: dict[str, list[ex.Expr]] = {}
    for value, gradient in [(output, "g_out"), *((env[s], f"g_{local[s]}") for s in states)]:
        if isinstance(value, ex.Name):
            seeds.setdefault(value.id, []).append(ex.Name(gradient))
    sources = {name.id for name in inputs.values()}
    statements, results = tape.reverse(seeds, sorted(sources), tape.live(sources))
    printer = CPrinter(lambda name: name)
    lines = [f"const real {name} = {printer(value_of(expr))};" for name, expr in tape.entries]
    lines += [f"{target} += {printer(expr)};" if accumulate
              else f"real {target} = {printer(expr)};" for target, expr, accumulate in statements]
    return {"reverse": lines, "g_sx": printer(results["sx"]),
            "g_prev": {local[s]: printer(results[f"prev_{local[s]}"]) for s in states},
            "g_param": {local[p]: printer(results[local[p]]) for p in learnable}}
