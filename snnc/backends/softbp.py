"""The softbp backend: a differentiable multi-step module trained with surrogate gradients.

A renderer over the plan (snnc.plan): feed-forward plans run layer by layer (each
connection's ops once over all T·B samples, each population its step over T; a delay
shifts a sequence in time), plans with a cycle step by step. The context below is data
only; templates/softbp/ lays it out.
"""
from __future__ import annotations

from snnc.backends.common import Scope, camel_case, header
from snnc.backends.steps import step_function, synapse_function
from snnc.errors import SnnError
from snnc.kernels import context as kernel_context
from snnc.kernels import cpu as cpu_kernels
from snnc.kernels import cuda as cuda_kernels
from snnc.plan.nodes import STEPS, Plan, Projection
from snnc.registry import ENCODERS, READOUTS

NAME = "softbp"
# Names the generated module and its forward() rely on (see templates/softbp/network.py.j2).
MODULE_NAMES = {"torch", "nn", "rt"}
FORWARD_NAMES = {"self", "torch", "nn", "rt", "range", "super"}


def context(plan: Plan, version: str) -> dict:
    check_runnable(plan)
    module = Scope(MODULE_NAMES)
    steps_fns, step_of = _step_functions(plan, module)
    synapse_fns, synapse_of = _synapse_functions(plan, module)
    kernels, kernel_of = _kernels(plan, module)
    local = ForwardNames(plan)
    return {
        "header": header(plan, NAME, version),
        "network": plan.name,
        "class_name": camel_case(plan.name),
        "steps": plan.steps,
        "seed": plan.seed,
        "mode": plan.mode,
        "inputs": [{"arg": local.args[n.name], "name": n.name, "shape": n.shape,
                    "seq": local.seq[n.name]} for n in plan.inputs],
        "local": local,
        "steps_fns": steps_fns + synapse_fns,
        "kernels": kernels,
        "populations": [_population(p, step_of[p.name], kernel_of[p.name])
                        for p in plan.populations],
        "encoders": [_encoder(e, local) for e in plan.encoders],
        "connections": [_connection(c, synapse_of.get(c.name)) for c in plan.projections],
        "nodes": [_node(plan, name, local) for name in plan.order
                  if plan.node(name).kind != "input"],
        "monitors": [{"key": m.key, "target": m.target, "var": m.var} for m in plan.monitors],
        "readout": _readout(plan),
    }


def check_runnable(plan: Plan) -> None:
    """What this backend cannot do with a plan whatever the registry lets it run."""
    if plan.mode != STEPS:
        return
    for proj in plan.projections:
        for op in proj.ops:
            if op.kind == "batchnorm":
                raise SnnError(f"`batchnorm` in connection '{proj.name}' of a network with a "
                               "cycle: softbp runs such networks step by step, where it would "
                               "normalise each step's batch alone", op.pos,
                               "remove it, or break the cycle")


class ForwardNames:
    """The local names of the generated forward(): the inputs' parameters first (their
    names are the module's keyword API), then its own variables, then one sequence per
    node, all distinct (backends.common.Scope)."""

    def __init__(self, plan: Plan):
        inputs = [n.name for n in plan.inputs]
        # without inputs, forward() takes `batch_size`
        scope = Scope(FORWARD_NAMES | (set() if inputs else {"batch_size"}))
        self.args = {n: scope.name(n) for n in inputs}
        self.like, self.steps, self.batch = scope.name("like"), scope.name("steps"), \
            scope.name("batch")
        self.sent, self.t = scope.name("sent"), scope.name("t")
        self.seq = {n: scope.name(f"s_{n}") for n in plan.order}


def _shared(items, make, name, module: Scope) -> tuple[list[dict], dict[str, str]]:
    """One function per distinct body (`make(item)` -> args, lines, returns), named
    `name(item)` in `module`'s scope, documented with the items that run it."""
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
        fn["doc"] = f"One step of {fn.pop('what')}{'s' if len(owners) > 1 else ''} {names}."
    return list(functions.values()), name_of


def _step_functions(plan: Plan, module: Scope):
    """One reference step function per distinct step (populations of one model with the
    same folded parameters share it), named after the model."""
    return _shared([(p, p.name, f"{p.model.name} population") for p in plan.populations],
                   step_function, lambda p: f"step_{p.model.name}", module)


def _synapse_functions(plan: Plan, module: Scope):
    """One step function per distinct synapse (its equations, parameters folded)."""
    return _shared([(c.synapse, c.name, f"{c.synapse.kind} synapse of connection")
                    for c in plan.projections if c.synapse is not None],
                   synapse_function, lambda s: f"synapse_{s.kind}", module)


def _kernels(plan: Plan, module: Scope) -> tuple[list[dict], dict[str, dict]]:
    """The fused kernels' sources, each once however many populations run it (the runtime
    builds one library per source); derived once per distinct step."""
    kernels: dict[str, dict] = {}
    kernel_of = {}
    rendered: dict[tuple, dict[str, str | None]] = {}
    for pop in plan.populations:
        key = kernel_context.kernel_key(pop)
        if key not in rendered:
            rendered[key] = _kernel_sources(pop)
        names = {}
        for target, source in rendered[key].items():
            if source is None:
                names[target] = None
                continue
            if source not in kernels:
                prefix = "KERNEL" if target == "cpu" else "CUDA_KERNEL"
                kernels[source] = {"name": module.name(f"{prefix}_{pop.model.name}"),
                                   "source": source, "target": target, "populations": []}
            kernels[source]["populations"].append(pop.name)
            names[target] = kernels[source]["name"]
        kernel_of[pop.name] = names
    for kernel in kernels.values():
        names = kernel.pop("populations")
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        kernel["who"] = f"population{'s' if len(names) > 1 else ''} {shown}"
    return list(kernels.values()), kernel_of


def _kernel_sources(pop) -> dict[str, str | None]:
    """The C and CUDA sources of a population's fused kernels (None: not for that target)."""
    fused, cuda = kernel_context.supports(pop), kernel_context.supports_cuda(pop)
    context = kernel_context.step_context(pop) if fused else None  # shared by both targets
    return {"cpu": cpu_kernels.kernel_source(pop, context) if fused else None,
            "cuda": cuda_kernels.cuda_source(pop, context) if cuda else None}


def _population(pop, step: str, kernel: dict) -> dict:
    return {"name": pop.name, "step": step, "shape": pop.shape, "state_init": pop.state_init,
            "learnable": pop.learnable, "refractory": pop.refractory,
            "feedback_group": pop.feedback_group, "kernel": kernel["cpu"],
            "kernel_cuda": kernel["cuda"], "detach_reset": pop.detach_reset}


def _encoder(enc, local: ForwardNames) -> dict:
    """Its runtime class (rt.encoders.<CamelCase of its kind>) and its arguments: its
    parameters but the inputs it reads, and its shape."""
    sources = ENCODERS[enc.spec.kind].sources
    return {"name": enc.name, "cls": camel_case(enc.spec.kind), "shape": enc.shape,
            "args": {k: v for k, v in enc.spec.params.items() if k not in sources},
            "seq": local.seq[enc.name],
            "source": local.seq[enc.source] if enc.source else None}


def _connection(proj: Projection, synapse_step: str | None) -> dict:
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


def _node(plan: Plan, name: str, local: ForwardNames) -> dict:
    """An encoder or a population in the forward, in the order they are computed (and
    draw random numbers): a population's sequence from its incoming connections'."""
    node = plan.node(name)
    if node.kind == "encoder":
        return {"kind": "encoder", **_encoder(node, local)}
    return {"kind": "population", "name": name, "seq": local.seq[name], "shape": node.shape,
            "incoming": [{"name": c.name, "src": c.src, "seq": local.seq[c.src],
                          "recurrent": plan.node(c.src).kind == "population"}
                         for c in plan.incoming(name)]}


def _readout(plan: Plan) -> dict:
    readout = plan.readout
    if readout is None:
        # LANGUAGE.md §4.6; when every population feeds another, all of them
        sources = {c.src for c in plan.projections}
        ends = [p.name for p in plan.populations if p.name not in sources] \
            or [p.name for p in plan.populations]
        return {"kind": "spikes", "targets": ends, "uses_v": False}
    return {"kind": readout.spec.kind, "target": readout.target,
            "args": list(readout.spec.params.values()),
            "uses_v": READOUTS[readout.spec.kind].needs_v}
