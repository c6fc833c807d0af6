"""The clock backend's compiled whole-run loop: C that runs every step of one network
(neurons, propagation, delays, synapses, plasticity) for B simulations, the way Brian2's
C++ standalone does. This module turns the plan into the context of
templates/kernels/loop.c.j2; snnc.runtime.compiled builds the source and drives it.

What the loop runs (anything else: `loop_source` is None and the Simulator keeps its
PyTorch path, which `unsupported` names):
- populations whose charge/fire/reset step the fused kernels run
  (kernels.context.supports), with refractory periods, without ILC feedback; their step
  is the fused kernels' printed statements (kernels.context.printed_step);
- connections whose pipeline is `flatten`s and `scale`s around at most one dense (on a
  flat input), sparse or one_to_one op, with any delay, per-synapse delays (not together
  with a presynaptic synapse), any synapse (its equations printed with CPrinter), into x
  or a state (`channel`), and STDP (its equations printed likewise);
- encoders and inputs of every kind: the driver computes them in PyTorch for each call
  (so Poisson spikes come from the module's own generator, docs/RNG.md) and passes them
  in, as `external` arrays.

Layouts, per simulation b of B (arrays with a batch axis are [B, ...]):
- every node keeps a ring of the values it sent, [B][depth][n], slot t % depth holding
  step t's (the Simulator's History: depth = its connections' longest delay + 1); the
  loop lists each slot's nonzeros once, and a connection visits only the sources it
  lists (event-driven propagation);
- a connection adds what reaches its targets this step into an accumulator per target,
  which the target's step reads and clears: dense [out, in] row-major as torch's weight,
  sparse CSR by source (offsets [in + 1], targets and weight [S]), one_to_one [n];
  per-synapse delays (SynapseDelays.delays, absolute; the connection's delay is their
  least) sort each source's synapses by delay once per call, so a spike sent at t - d
  visits just the synapses whose delay is d, with the weights of the step it arrives;
- populations' states, refractory countdowns and spike counts [B][n]; synapses' states
  [B][n] (per source for a presynaptic one); a plastic connection's weights [B][synapses]
  (each simulation learns its own: runtime.batched) and STDP's traces, per synapse [B]
  [synapses] and per target [B][n], learning every step after the nodes, in
  runtime.plasticity's order (decay, the pre pathway where a spike arrived, the post
  pathway where the target fired);
- external nodes' values and monitors [steps][B][n].
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable

from snnc import __version__
from snnc.limits import delay_bytes
from snnc.ir import expr as ex
from snnc.kernels.abi import LOOP_ABI, MT19937_WORDS
from snnc.kernels.context import commentable, printed_step, step_context, supports
from snnc.plan.nodes import Plan, Projection, SynapseStep
from snnc.printers import CPrinter
from snnc.registry.rules import SYNAPSE_SUM
from snnc.templating import templates

# A pipeline the loop runs: these around at most one of WEIGHTED.
WEIGHTED = ("dense", "sparse", "one_to_one")
PASS_THROUGH = ("flatten", "scale")
# The rule's names in the printed C (the registry's own: x_pre, x_post, w).
_RULE_NAMES = {"x_pre": "pre_trace", "x_post": "post_trace", "w": "weight"}


def loop_source(plan: Plan, depths: dict[str, int]) -> str | None:
    """The C of the network's whole-run loop, or None where it cannot run it. `depths`:
    how many past steps each node keeps (the Simulator's)."""
    if unsupported(plan) is not None:
        return None
    return templates().get_template("kernels/loop.c.j2").render(_Loop(plan, depths).context())


def unsupported(plan: Plan) -> str | None:
    """The first construct of `plan` that the loop does not run, or None."""
    return first_unsupported(plan, _unsupported_projection)


def first_unsupported(plan: Plan, projection: Callable[[Projection], str | None]
                      ) -> str | None:
    """The first population whose step the fused kernels do not print, or the first
    connection that `projection` says why it cannot run; None if there is none."""
    for pop in plan.populations:
        if pop.feedback_group or not supports(pop):
            return f"the step of population '{pop.name}'"
    for proj in plan.projections:
        reason = projection(proj)
        if reason is not None:
            return f"{reason} (connection '{proj.name}')"
    return None


def unsupported_pipeline(proj: Projection) -> str | None:
    """Why a compiled loop cannot run the connection's ops: anything but `flatten`s and
    `scale`s around at most one of WEIGHTED, on a flat input (one_to_one: any)."""
    kinds = [op.kind for op in proj.ops]
    other = [k for k in kinds if k not in WEIGHTED + PASS_THROUGH]
    if other:
        return f"the op {other[0]}"
    if sum(k in WEIGHTED for k in kinds) > 1:
        return "more than one weighted op"
    if proj.weighted is not None and proj.connectivity != "one_to_one" \
            and len(proj.ops[proj.weighted].in_shape) != 1:
        return f"{proj.connectivity} on an input of more than one axis"
    return None


def _unsupported_projection(proj: Projection) -> str | None:
    reason = unsupported_pipeline(proj)
    if reason is not None:
        return reason
    if proj.synapse_delays and proj.synapse and proj.synapse.presynaptic:
        return "per-synapse delays after a presynaptic synapse"
    if proj.learning and any(_reads_other_trace(a) for a in proj.learning.decay):
        return "a trace decay that reads the other trace"
    return None


def _drawn(node) -> bool:
    """Whether the loop can draw an encoder's spikes itself: Poisson at a fixed rate."""
    return node.kind == "encoder" and node.spec.kind == "poisson" and node.source is None


def _reads_other_trace(decay: ex.Assign) -> bool:
    names = {n.id for n in ex.subexpressions(decay.value) if isinstance(n, ex.Name)}
    return bool(names - {decay.target})


def c_string(text: str) -> str:
    """`text` as a C string literal: letters, digits and a few marks as they are, every
    other byte (quotes, backslashes, anything a name could hold) as an octal escape."""
    safe = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.,:;[]{}()+-")
    return '"' + "".join(chr(b) if b in safe else f"\\{b:03o}" for b in text.encode()) + '"'


class Arguments:
    """The arrays snnc_loop takes, in order: a field of the simulation's struct each (the
    C that reads it: S-><field>), and the layout entry that tells the driver what to pass:
    [kind, owner, detail, shape per simulation (batched) or in all (None: known when it
    runs), batched]."""

    def __init__(self):
        self.items: list[dict] = []

    def add(self, kind: str, owner: str, detail: str = "", shape: tuple | None = None,
            batched: bool = False, ctype: str = "real", stride: str | None = None) -> str:
        """`stride`: the values per simulation of a batched entry whose shape is known
        only when it runs, as C (reading an entry added before it: bind() sets the
        fields in order)."""
        field = f"{kind}_{len(self.items)}"
        if not batched:
            stride = None
        elif stride is None:
            stride = str(math.prod(shape))
        self.items.append({"field": field, "type": ctype, "stride": stride,
                           "layout": [kind, owner, detail, shape, batched]})
        return f"S->{field}"

    def layout(self) -> list[str]:
        """The layout as JSON, in C string literals of one entry each (C joins them)."""
        entries = [json.dumps(a["layout"]) for a in self.items]
        return [c_string(("[" if k == 0 else "") + entry + ("]" if k == len(entries) - 1
                                                              else ","))
                for k, entry in enumerate(entries)] or [c_string("[]")]


class _Loop:
    """The template context of one network's loop."""

    def __init__(self, plan: Plan, depths: dict[str, int]):
        self.plan, self.depths = plan, depths
        self.args = Arguments()
        # per population, the states that connections deliver into
        self.channels: dict[str, set[str]] = {}
        for proj in plan.projections:
            if proj.channel:
                self.channels.setdefault(proj.dst, set()).add(proj.channel)
        self.nodes = {name: self._node(i, name) for i, name in enumerate(plan.order)}
        self.connections = [self._connection(i, p) for i, p in enumerate(plan.projections)]
        for conn, proj in zip(self.connections, plan.projections, strict=True):
            self._attach(self.nodes[proj.dst], conn, proj)
        self.rules = [self._rule(conn, proj) for conn, proj
                      in zip(self.connections, plan.projections, strict=True)
                      if proj.learning is not None]

    def context(self) -> dict:
        grouped = [c for c in self.connections if c["grouped"]]
        for k, conn in enumerate(grouped):
            conn["group"] = k  # its synapses by delay are groups[k] (built once per call)
        return {"version": __version__, "abi": LOOP_ABI, "network": commentable(self.plan.name),
                "args": self.args.items, "layout": self.args.layout(),
                "nodes": list(self.nodes.values()), "connections": self.connections,
                "grouped": grouped, "rules": self.rules,
                "drawn": any(n["draws"] for n in self.nodes.values()),
                "sparse": [c for c in self.connections if c["connectivity"] == "sparse"]}

    # ------------------------------------------------------------------ nodes
    def _node(self, i: int, name: str) -> dict:
        node = self.plan.node(name)
        n, depth = math.prod(node.shape), self.depths[name]
        add = self.args.add
        common = {"i": i, "name": commentable(name), "n": n, "depth": depth,
                  "ring": add("ring", name, shape=(depth, *node.shape), batched=True)}
        if node.kind != "population":
            # an encoder's detail is the input it reads (the driver computes it from that)
            source = getattr(node, "source", None) or ""
            return {**common, "kind": node.kind, "external": add("external", name, source),
                    "monitor": add("monitor", name, "spikes"),
                    **self._events(name),
                    "draws": self._draws(node) if _drawn(node) else None}
        context = step_context(node)
        printed = printed_step(node, context, CPrinter)
        # states that connections deliver into run on while the neuron is refractory
        channels = self.channels.get(name, set())
        states = [{"c": s["c"], "name": state, "frozen": state not in channels,
                   "array": add("state", name, state, shape=node.shape, batched=True),
                   "monitor": add("monitor", name, state)}
                  for s, state in zip(context["states"], node.model.states, strict=True)]
        return {**common, "kind": "population", "states": states,
                "params": [p["c"] for p in context["params"]],
                "param_array": add("params", name, shape=(len(node.learnable),))
                if node.learnable else None,
                "refractory": node.refractory,
                "countdown": add("countdown", name, shape=node.shape, batched=True)
                if node.refractory else None,
                "counts": add("counts", name, shape=node.shape, batched=True),
                "spike_monitor": add("monitor", name, "spikes"), **self._events(name),
                "charge": printed["charge"], "fire": printed["fire"], "reset": printed["reset"],
                "incoming": [], "x": [], "channels": {}, "draws": None}

    def _events(self, name: str) -> dict:
        """Where a node's spikes go as events (run(sparse_spikes=True)), in place of its
        spike monitor: simulation b writes at events + b * steps * n the flat index
        i * n + j of each spike of neuron j at the call's step i, in order, and counts
        them in event_counts[b]."""
        return {"events": self.args.add("events", name, "spikes", ctype="int64_t"),
                "event_counts": self.args.add("event_counts", name, "spikes",
                                              ctype="int64_t")}

    def _draws(self, node) -> dict:
        """A Poisson encoder at a fixed rate, which the loop may draw itself: its
        generator's state (an mt19937_t, runtime.mt19937), and [the least draw that is
        no spike, 1 where a draw is two words (float64) else 0]."""
        add = self.args.add
        return {"generator": add("generator", node.name, shape=(MT19937_WORDS,),
                                 ctype="int32_t"),
                "threshold": add("threshold", node.name, shape=(2,), ctype="int64_t")}

    def _attach(self, node: dict, conn: dict, proj: Projection) -> None:
        """The connection into its target: its current adds to x, or to a state."""
        node["incoming"].append(conn)
        if proj.channel is None:
            node["x"].append(conn)
        else:
            state = next(s["c"] for s in node["states"] if s["name"] == proj.channel)
            node["channels"].setdefault(state, []).append(conn)

    # ------------------------------------------------------------------ connections
    def _connection(self, i: int, proj: Projection) -> dict:
        src, n_in = self.nodes[proj.src], math.prod(self.plan.node(proj.src).shape)
        n_out = math.prod(proj.out_shape)
        weighted = proj.weighted
        scales = [(k, CPrinter().number(op.params["c"])) for k, op in enumerate(proj.ops)
                  if op.kind == "scale"]
        conn = {"i": i, "name": commentable(proj.name), "src": src, "n_in": n_in,
                "n_out": n_out, "delay": proj.delay,
                "connectivity": proj.connectivity if weighted is not None else "identity",
                "before": [c for k, c in scales if weighted is None or k < weighted],
                "after": [c for k, c in scales if weighted is not None and k > weighted],
                "grouped": proj.synapse_delays is not None,
                "lags": proj.extra_delay + 1, "synapse": None, "bias": None, "rule": None}
        if weighted is not None:
            conn.update(self._weights(proj, conn))
        if proj.synapse is not None:
            presynaptic = proj.synapse.presynaptic
            shape = self.plan.node(proj.src).shape if presynaptic else proj.out_shape
            conn["synapse"] = _synapse(proj.synapse, i, proj.name, shape, self.args)
        conn["acc"] = f"S->acc{i}"
        return conn

    def _weights(self, proj: Projection, conn: dict) -> dict:
        add, name, kind = self.args.add, proj.name, proj.connectivity
        n_in, n_out = conn["n_in"], conn["n_out"]
        size = {"dense": n_out * n_in, "one_to_one": n_in, "sparse": None}[kind]
        shape = None if size is None else (size,)
        out = {}
        if kind == "sparse":
            out["offsets"] = add("offsets", name, shape=(n_in + 1,), ctype="index_t")
            out["targets"] = add("targets", name, ctype="index_t")
        # how many synapses there are, as C
        out["synapses"] = str(size) if size is not None else f"{out['offsets']}[{n_in}]"
        # a plastic connection's weights are each simulation's own (runtime.batched)
        out["weight"] = add("weight", name, shape=shape, batched=proj.learning is not None,
                            stride=out["synapses"])
        if proj.synapse_delays:
            # its detail is the source, whose History SynapseDelays's own is made from;
            # stored in the least integer type of their range, passed as they are
            ctype = f"int{8 * delay_bytes(*proj.synapse_delays)}_t"
            out["delays"] = add("delays", name, proj.src, shape=shape, ctype=ctype)
        if kind == "dense" and proj.ops[proj.weighted].params.get("bias"):
            # SpikeLinear starts from the bias; SynapseDelays adds it after the delays' sum
            out["bias"] = {"array": add("bias", name, shape=(n_out,)),
                           "first": proj.synapse_delays is None}
        return out

    # ------------------------------------------------------------------ rules
    def _rule(self, conn: dict, proj: Projection) -> dict:
        """The rule's equations as C statements over the loop's locals (pre_trace,
        post_trace, weight). `every_step` (plan.RuleStep): each weight change is a pass
        over every synapse, after the sums over the synapses it reads (`synapse_sum`, each
        accumulated in double over the weights in storage order and rounded to real, as
        runtime.plasticity.synapse_sum); `pre_sent`: the pre trace jumps at the synapses
        of the sources that sent a spike this step, whatever the delays."""
        add, name, rule = self.args.add, proj.name, proj.learning
        printer = CPrinter(lambda n: _RULE_NAMES.get(n, n))
        sums: list[dict] = []

        def line(a: ex.Assign) -> str:
            return f"{_RULE_NAMES[a.target]} = {printer(a.value)};"

        def hoisted(expr: ex.Expr) -> ex.Expr:
            """`expr` with each sum over the synapses read from a local computed before."""
            if isinstance(expr, ex.Call) and expr.func == SYNAPSE_SUM:
                (term,) = expr.args
                if ex.names(term) - {"w"}:  # the registry's own equations: never
                    raise ValueError(f"a synapse_sum in rule {rule.kind} reads more than w")
                local = f"synapse_sum_{len(sums)}"
                sums.append({"local": local, "term": printer(hoisted(term))})
                return ex.Name(local)
            return ex.with_children(expr, [hoisted(e) for e in ex.children(expr)])

        def weight(a: ex.Assign) -> tuple[str, list[dict]]:
            start = len(sums)
            printed = line(ex.Assign(a.target, hoisted(a.value)))
            return printed, sums[start:]

        (pre_weight, pre_sums), (post_weight, post_sums) = (weight(rule.pre_weight),
                                                            weight(rule.post_weight))
        if (pre_sums or post_sums) and not rule.every_step:
            # a pathway at its spikes changes some synapses, each reading the sum
            raise ValueError(f"rule {rule.kind}: synapse_sum needs every_step")
        out = {"conn": conn, "dst": self.nodes[proj.dst],
               "x_pre": add("x_pre", name, shape=None if conn["connectivity"] == "sparse"
                            else (int(conn["synapses"]),), batched=True,
                            stride=conn["synapses"]),
               "x_post": add("x_post", name, shape=proj.out_shape, batched=True),
               "decay_pre": [line(a) for a in rule.decay if a.target == "x_pre"],
               "decay_post": [line(a) for a in rule.decay if a.target == "x_post"],
               "pre_trace": line(rule.pre_trace), "pre_weight": pre_weight,
               "post_trace": line(rule.post_trace), "post_weight": post_weight,
               "pre_sums": pre_sums, "post_sums": post_sums,
               "every_step": rule.every_step, "pre_sent": rule.pre_spike == "sent"}
        if conn["connectivity"] == "sparse" and not rule.every_step:
            # the post pathway visits a target's synapses
            out["target_offsets"] = add("target_offsets", name, shape=(conn["n_out"] + 1,),
                                        ctype="index_t")
            out["by_target"] = add("by_target", name, ctype="index_t")
            conn["rule"] = out
        return out


def synapse_locals(syn: SynapseStep, i: int) -> tuple[list, list, list, dict[str, str]]:
    """Connection i's synapse's states, temporaries and learnable parameters, and the C
    local each of them (and x, what arrives: `sx`) is."""
    states = [name for name, _ in syn.states]
    temps = [a.target for a in syn.update if a.target not in states]
    local = {"x": "sx"}
    for k, name in enumerate(dict.fromkeys(states + temps)):
        local[name] = f"q{i}_{k}"
    learnable = [name for name, _ in syn.learnable]
    local.update({name: f"l{i}_{k}" for k, name in enumerate(learnable)})
    return states, temps, learnable, local


def _synapse(syn: SynapseStep, i: int, owner: str, shape: tuple, args: Arguments) -> dict:
    """A synapse's step as C statements over locals: x (what arrives) is `sx`, its states
    and temporaries q<i>_<k>, its learnable parameters l<i>_<k>."""
    states, temps, learnable, local = synapse_locals(syn, i)
    printer = CPrinter(lambda name: local.get(name, name))
    return {"presynaptic": syn.presynaptic,
            "states": [{"c": local[name], "name": name,
                        "array": args.add("synapse_state", owner, name, shape=shape,
                                          batched=True)}
                       for name in states],
            "temps": [local[name] for name in dict.fromkeys(temps)],
            "params": [local[name] for name in learnable],
            "param_array": args.add("synapse_params", owner, shape=(len(learnable),))
            if learnable else None,
            "lines": [f"{local[a.target]} = {printer(a.value)};" for a in syn.update],
            "output": printer(syn.output)}
