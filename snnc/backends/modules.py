"""What every backend that renders a PyTorch module gives its templates (templates/torch/):
the step functions (populations' and synapses'), and the populations, encoders and
connections as data, built alike so that every backend of a network has the plan's
state_dict keys."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from snnc.backends.common import Scope, camel_case, header
from snnc.backends.steps import step_function, synapse_function
from snnc.plan.nodes import Plan, Projection
from snnc.registry import ENCODERS

# Names every generated module relies on.
MODULE_NAMES = {"torch", "nn", "rt"}


def module_context(plan: Plan, backend: str, version: str) -> dict:
    """What every generated module says of itself: its header, network and class."""
    return {"header": header(plan, backend, version), "network": plan.name,
            "class_name": camel_case(plan.name), "steps": plan.steps, "seed": plan.seed,
            "weights": plan.weights.path if plan.weights else None}


class LocalNames:
    """The local names of a generated method: the inputs' (their names are the module's
    keyword API), then its own variables, then one per node, all distinct
    (backends.common.Scope); `own` are the method's own variables."""

    def __init__(self, plan: Plan, reserved: set[str], own: Iterable[str]):
        inputs = [n.name for n in plan.inputs]
        scope = Scope(reserved | (set() if inputs else {"batch_size"}))
        self.args = {n: scope.name(n) for n in inputs}
        for name in own:
            setattr(self, name, scope.name(name))
        self.seq = {n: scope.name(f"s_{n}") for n in plan.order}


def shared(items, make: Callable, name: Callable, module: Scope, says: str = "One step of"
           ) -> tuple[list[dict], dict[str, str]]:
    """One function per distinct body (`make(item)` -> args, lines, returns), named
    `name(item)` in `module`'s scope, documented (`says` its owners) with the owners that
    run it; `items` are (item, owner, what the owner is)."""
    functions: dict[tuple, dict] = {}
    name_of = {}
    for item, owner, what in items:
        fn = make(item)
        body = (tuple(fn["args"]), tuple(fn["lines"]), fn["returns"])
        if body not in functions:
            functions[body] = {**fn, "name": module.name(name(item)), "owners": [],
                               "what": what}
        functions[body]["owners"].append(owner)
        name_of[owner] = functions[body]["name"]
    for fn in functions.values():
        owners = fn.pop("owners")
        names = ", ".join(f"'{n}'" for n in owners)
        fn["doc"] = f"{says} {fn.pop('what')}{'s' if len(owners) > 1 else ''} {names}."
    return list(functions.values()), name_of


def step_functions(plan: Plan, module: Scope):
    """One reference step function per distinct step (populations of one model with the
    same folded parameters share it), named after the model."""
    return shared([(p, p.name, f"{p.model.name} population") for p in plan.populations],
                  step_function, lambda p: f"step_{p.model.name}", module)


def synapse_functions(plan: Plan, module: Scope):
    """One step function per distinct synapse (its equations, parameters folded)."""
    return shared([(c.synapse, c.name, f"{c.synapse.kind} synapse of connection")
                   for c in plan.projections if c.synapse is not None],
                  synapse_function, lambda s: f"synapse_{s.kind}", module)


def population(plan: Plan, pop, step: str, kernel: dict | None = None) -> dict:
    kernel = kernel or {"cpu": None, "cuda": None}
    channels = tuple(dict.fromkeys(c.channel for c in plan.incoming(pop.name) if c.channel))
    return {"name": pop.name, "step": step, "shape": pop.shape, "state_init": pop.state_init,
            "channels": channels,
            "learnable": pop.learnable, "refractory": pop.refractory,
            "feedback_group": pop.feedback_group, "kernel": kernel["cpu"],
            "kernel_cuda": kernel["cuda"], "detach_reset": pop.detach_reset}


def encoder(enc, local: LocalNames) -> dict:
    """Its runtime class (rt.encoders.<CamelCase of its kind>) and its arguments: its
    parameters but the inputs it reads, and its shape."""
    sources = ENCODERS[enc.spec.kind].sources
    return {"name": enc.name, "cls": camel_case(enc.spec.kind), "shape": enc.shape,
            "args": {k: v for k, v in enc.spec.params.items() if k not in sources},
            "seq": local.seq[enc.name],
            "source": local.seq[enc.source] if enc.source else None}


def inputs_by_channel(plan: Plan, population: str, describe: Callable) -> dict:
    """A population's incoming connections (`describe(c)` each) as "incoming", those into
    its input x, and "channels", those into each of its states (`channel = ge`)."""
    incoming, channels = [], {}
    for c in plan.incoming(population):
        (channels.setdefault(c.channel, []) if c.channel else incoming).append(describe(c))
    return {"incoming": incoming, "channels": channels}


def connection(proj: Projection, synapse_step: str | None) -> dict:
    ops = [{"kind": op.kind, "in_shape": op.in_shape, "out_shape": op.out_shape,
            "params": op.params,
            "delays": proj.synapse_delays if i == proj.weighted else None}
           for i, op in enumerate(proj.ops)]
    synapse = None
    if proj.synapse is not None:
        synapse = {"step": synapse_step, "states": dict(proj.synapse.states),
                   "learnable": dict(proj.synapse.learnable),
                   "presynaptic": proj.synapse.presynaptic}
    return {"name": proj.name, "ops": ops, "out_shape": proj.out_shape,
            "delay": proj.delay if proj.synapse_delays is None else 0, "synapse": synapse}
