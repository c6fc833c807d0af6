"""The softbp backend: a differentiable multi-step module trained with surrogate gradients.

A renderer over the plan (snnc.plan): feed-forward plans run layer by layer (each
connection's ops once over all T·B samples, each population its step over T; a delay
shifts a sequence in time), plans with a cycle step by step. The context below is data
only; templates/softbp/ lays it out.
"""
from __future__ import annotations

from snnc.backends import modules
from snnc.backends.common import Scope
from snnc.backends.modules import MODULE_NAMES
from snnc.errors import SnnError
from snnc.kernels import context as kernel_context
from snnc.kernels import cpu as cpu_kernels
from snnc.kernels import cuda as cuda_kernels
from snnc.kernels.bptt import bptt_source
from snnc.plan.nodes import STEPS, Plan
from snnc.registry import READOUTS

NAME = "softbp"
# Names forward() relies on (see templates/softbp/network.py.j2).
FORWARD_NAMES = {"self", "torch", "nn", "rt", "range", "super"}


def context(plan: Plan, version: str) -> dict:
    check_runnable(plan)
    module = Scope(MODULE_NAMES)
    steps_fns, step_of = modules.step_functions(plan, module)
    synapse_fns, synapse_of = modules.synapse_functions(plan, module)
    kernels, kernel_of = _kernels(plan, module)
    local = modules.LocalNames(plan, FORWARD_NAMES, ("like", "steps", "batch", "sent", "t"))
    return {
        **modules.module_context(plan, NAME, version),
        "mode": plan.mode,
        "inputs": [{"arg": local.args[n.name], "name": n.name, "shape": n.shape,
                    "seq": local.seq[n.name]} for n in plan.inputs],
        "local": local,
        "steps_fns": steps_fns + synapse_fns,
        "kernels": kernels,
        "populations": [modules.population(plan, p, step_of[p.name], kernel_of[p.name])
                        for p in plan.populations],
        "encoders": [modules.encoder(e, local) for e in plan.encoders],
        "connections": [modules.connection(c, synapse_of.get(c.name))
                        for c in plan.projections],
        "nodes": [_node(plan, name, local) for name in plan.order
                  if plan.node(name).kind != "input"],
        "monitors": [{"key": m.key, "target": m.target, "var": m.var} for m in plan.monitors],
        "readout": _readout(plan),
        "compiled": _compiled(plan, module),
        "externals": [{"name": n.name, "seq": local.seq[n.name]}
                      for n in (*plan.inputs, *plan.encoders)],
    }


def _compiled(plan: Plan, module: Scope) -> dict | None:
    """The C of the network's compiled step-by-step run and its reverse (runtime.bptt),
    named as a module constant; None where it cannot run it (the PyTorch path does)."""
    source = bptt_source(plan)
    return None if source is None else {"name": module.name(f"RUN_{plan.name}"),
                                        "source": source}


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


def _node(plan: Plan, name: str, local: modules.LocalNames) -> dict:
    """An encoder or a population in the forward, in the order they are computed (and
    draw random numbers): a population's sequence from its incoming connections'."""
    node = plan.node(name)
    if node.kind == "encoder":
        return {"kind": "encoder", **modules.encoder(node, local)}
    return {"kind": "population", "name": name, "seq": local.seq[name], "shape": node.shape,
            **modules.inputs_by_channel(plan, name, lambda c: {
                "name": c.name, "src": c.src, "seq": local.seq[c.src],
                "recurrent": plan.node(c.src).kind == "population"})}


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
