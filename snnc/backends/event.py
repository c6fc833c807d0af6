"""The event backend: spike-response models (the Tempotron) computed from spike times for
all time points at once, a renderer over the plan like softbp and clock.

Encoders give spike times ([B, *shape], runtime.event's NO_SPIKE where none), inputs are
spike times too; each population's voltage is its connections' linear ops applied to the
responses of their sources' spike times under the model's `kernel` (runtime.response),
and its output is its first threshold crossing, again as spike times, so that event
populations chain. Its module is built as softbp's (templates/torch/: the same
connections, so the same state_dict keys). What it cannot run: a cycle (the responses
of a step would wait on the outputs of that step), a synapse (`via`: the kernel is the
synapse), per-synapse delays, and a stepped neuron (the registry's backends say so).
"""
from __future__ import annotations

from snnc.backends import modules
from snnc.backends.common import Scope
from snnc.backends.modules import MODULE_NAMES
from snnc.backends.steps import charge_function
from snnc.errors import SnnError
from snnc.ir import expr as ex
from snnc.plan.nodes import LAYERS, Plan
from snnc.printers import SnnPrinter, TorchPrinter
from snnc.registry import READOUTS

NAME = "event"
# Names forward() relies on (see templates/event/network.py.j2).
FORWARD_NAMES = {"self", "torch", "nn", "rt", "super"}


def context(plan: Plan, version: str) -> dict:
    check_runnable(plan)
    module = Scope(MODULE_NAMES)
    by_kernel = [p for p in plan.populations if p.event_driven]
    derived = [p for p in plan.populations if not p.event_driven]
    kernel_fns, kernel_of = modules.shared(
        [(p, p.name, f"{p.model.name} population") for p in by_kernel],
        _kernel_function, lambda p: f"kernel_{p.model.name}", module,
        "The PSP kernel K(t), t steps after a spike, of")
    charge_fns, charge_of = modules.shared(
        [(p, p.name, f"{p.model.name} population") for p in derived],
        charge_function, lambda p: f"charge_{p.model.name}", module,
        "The charge alone (below threshold, no reset) of")
    fire_fns, fire_of = modules.shared(
        [(p, p.name, f"{p.model.name} population") for p in plan.populations],
        _fire_function, lambda p: f"fire_{p.model.name}", module,
        "Where the voltage v fires (0/1), for")
    synapse_fns, synapse_of = modules.synapse_functions(plan, module)
    local = modules.LocalNames(plan, FORWARD_NAMES, ("steps", "batch"))
    return {
        **modules.module_context(plan, NAME, version),
        "inputs": [{"arg": local.args[n.name], "name": n.name, "shape": n.shape,
                    "seq": local.seq[n.name]} for n in plan.inputs],
        "local": local,
        "functions": kernel_fns + charge_fns + fire_fns + synapse_fns,
        "populations": [_population(p, fire_of[p.name], kernel_of.get(p.name),
                                    charge_of.get(p.name)) for p in plan.populations],
        # runtime.event's encoders are built on the shape of what they read
        "encoders": [{**modules.encoder(e, local),
                      "shape": plan.node(e.source).shape if e.source else e.shape}
                     for e in plan.encoders],
        # a connection's delay shifts its source's spike times (runtime.response.respond),
        # not a sequence, which respond makes a chunk of steps at a time; its synapse
        # (kept, for softbp's state_dict) is part of the target's kernel
        "connections": [{**modules.connection(c, synapse_of.get(c.name)), "delay": 0}
                        for c in plan.projections],
        "nodes": [_node(plan, name, local) for name in plan.order
                  if plan.node(name).kind == "population"],
        # a population's record; an encoder's spike times
        "monitors": [{"key": m.key, "target": m.target, "var": m.var,
                      "times": local.seq[m.target]
                      if plan.node(m.target).kind == "encoder" else None}
                     for m in plan.monitors],
        "readout": _readout(plan),
    }


def _population(pop, fire: str, kernel: str | None, charge: str | None) -> dict:
    common = {"name": pop.name, "shape": pop.shape, "fire": fire}
    if pop.event_driven:
        return {**common, "kind": "kernel", "kernel": kernel,
                "v_rest": float(pop.params.get("v_reset", 0.0))}
    return {**common, "kind": "linear", "charge": charge, "state_init": pop.state_init,
            "voltage": _voltage(pop), "learnable": pop.learnable}


def check_runnable(plan: Plan) -> None:
    """What this backend cannot do with a plan whatever the registry lets it run: a
    cycle, per-synapse delays, a synapse before a kernel (the kernel is the synapse), a
    synapse that is not linear (a stepped model that is not is refused before)."""
    if plan.mode != LAYERS:
        raise SnnError(f"network {plan.name} has a cycle: the event backend computes every "
                       "time point at once, from spike times that must all be known first",
                       hint="break the cycle, or run it on the clock or softbp backend")
    for proj in plan.projections:
        if proj.synapse_delays is not None:
            raise SnnError(f"per-synapse delays in connection '{proj.name}': the event backend "
                           "delays a source's spike times alike for all its synapses",
                           proj.pos, "give the connection one delay")
        _check_synapse(proj, plan.node(proj.dst))
    for pop in plan.populations:
        if pop.feedback_group:
            raise SnnError(f"population '{pop.name}' ({pop.model.name}) feeds its spikes back "
                           "into its input (ILC): the event backend computes the voltage "
                           "from the inputs' spikes alone", pop.pos,
                           "run it on the clock or softbp backend")


def _check_synapse(proj, dst) -> None:
    if proj.synapse is None:
        return
    if dst.event_driven:
        raise SnnError(f"`via {proj.synapse.kind}` in connection '{proj.name}': population "
                       f"'{dst.name}' ({dst.model.name}) has a kernel, which is its synapse",
                       proj.pos, "remove the synapse")
    if proj.synapse.presynaptic or proj.channel:
        what = "acts on the spikes" if proj.synapse.presynaptic else "delivers into a state"
        raise SnnError(f"`via {proj.synapse.kind}` in connection '{proj.name}' {what}: the "
                       "event backend filters a connection's current by one kernel",
                       proj.pos, "run it on the clock or softbp backend")
    variables = {"x", *(name for name, _ in proj.synapse.states)}
    for value in (*(a.value for a in proj.synapse.update), proj.synapse.output):
        term = ex.nonlinear_term(value, variables)
        if term is not None:
            raise SnnError(f"the synapse {proj.synapse.kind} of connection '{proj.name}' is "
                           f"not linear: `{SnnPrinter()(term)}`", proj.pos, _LINEAR_HINT)


_LINEAR_HINT = ("the event backend derives a kernel from dynamics linear in the states and "
                "the input (LIF with exp_current is a two-exponential kernel); run this one "
                "on the clock or softbp backend")


def _voltage(pop) -> str:
    """The one state a stepped model's fire condition compares with a constant (plan
    support refused the models without one: ir.nodes.Model.nonlinearity)."""
    (state,) = ex.names(pop.equations.fire) & set(pop.model.states)
    return state


def _kernel_function(pop) -> dict:
    """K(t): the model's PSP kernel, its parameters folded, in t (a tensor of lags)."""
    printer = TorchPrinter(like="t")
    return {"args": ["t"], "lines": [], "returns": _per_lag(pop.equations.kernel, printer)}


def _per_lag(kernel: ex.Expr, printer: TorchPrinter) -> str:
    """The kernel as a tensor of t's shape even where it does not read t (a constant)."""
    text = printer(kernel)
    reads_t = any(isinstance(n, ex.Name) and n.id == "t" for n in ex.subexpressions(kernel))
    return text if reads_t else f"rt.ops.full({text}, t)"


def _fire_function(pop) -> dict:
    """Where the model fires, from its voltage v: its `fire` condition as 0/1 (a stepped
    model's voltage is the state it compares)."""
    voltage = "v" if pop.event_driven else _voltage(pop)
    printer = TorchPrinter(lambda name: "v" if name == voltage else name, like="v")
    return {"args": ["v"], "lines": [], "returns": printer(pop.equations.fire)}


def _node(plan: Plan, name: str, local: modules.LocalNames) -> dict:
    return {"name": name, "seq": local.seq[name], "shape": plan.node(name).shape,
            "incoming": [{"name": c.name, "seq": local.seq[c.src], "delay": c.delay}
                         for c in plan.incoming(name)]}


def _readout(plan: Plan) -> dict:
    """forward()'s value: the readout of one population, or (none declared) the spike
    trains of the populations with no outgoing connection."""
    readout = plan.readout
    if readout is None:
        sources = {c.src for c in plan.projections}
        ends = [p.name for p in plan.populations if p.name not in sources] \
            or [p.name for p in plan.populations]
        return {"kind": "spikes", "targets": ends}
    entry = READOUTS[readout.spec.kind]
    # `v` is the whole trace here, [B, *shape, T] (the Tempotron's), not the last step's
    return {"kind": "readout", "target": readout.target,
            "fn": "trace" if entry.name == "v" else entry.name,
            "source": "v" if entry.needs_v else "spikes",
            "args": list(readout.spec.params.values())}
