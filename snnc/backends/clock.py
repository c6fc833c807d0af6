"""The clock backend: a step-by-step simulator with delays, synapses, plasticity and
monitors (Brian2's and SpikingFlow's job), a renderer over the plan like softbp.

Its module is built as softbp's (templates/torch/: the same populations, encoders and
connections, so the same state_dict keys and, without plasticity, the same spikes for the
same input and seed) and runs one step at a time (runtime.simulator.Simulator): each node
in schedule order reads what its connections deliver from the bounded histories of their
sources, then the plastic connections learn.
"""
from __future__ import annotations

from snnc.backends import modules
from snnc.backends.common import Scope
from snnc.backends.modules import MODULE_NAMES
from snnc.backends.steps import rule_functions
from snnc.errors import SnnError
from snnc.kernels.loop import loop_source
from snnc.plan.nodes import Plan, Projection

NAME = "clock"
# Names advance() relies on (see templates/clock/network.py.j2).
ADVANCE_NAMES = {"self", "inputs", "torch", "nn", "rt", "super"}
# What a rule may sit on: its weighted op, after nothing but a flatten, with no op after it.
_BEFORE_A_RULE = {"flatten"}


def context(plan: Plan, version: str) -> dict:
    for proj in plan.projections:
        if proj.learning is not None:
            _check_learnable(proj)
    module = Scope(MODULE_NAMES)
    steps_fns, step_of = modules.step_functions(plan, module)
    synapse_fns, synapse_of = modules.synapse_functions(plan, module)
    rule_fns, rules = _rules(plan, module)
    local = modules.LocalNames(plan, ADVANCE_NAMES, ("t", "like"))
    return {
        **modules.module_context(plan, NAME, version),
        "dt_ms": plan.dt_ms,
        "monitor_keys": tuple(m.key for m in plan.monitors),
        "shapes": {n.name: n.shape for n in (*plan.inputs, *plan.encoders, *plan.populations)},
        "depths": _depths(plan),
        "inputs": [{"name": n.name, "seq": local.seq[n.name]} for n in plan.inputs],
        "local": local,
        "steps_fns": steps_fns + synapse_fns + rule_fns,
        "populations": [modules.population(plan, p, step_of[p.name]) for p in plan.populations],
        "encoders": [modules.encoder(e, local) for e in plan.encoders],
        "connections": [modules.connection(c, synapse_of.get(c.name))
                        for c in plan.projections],
        "nodes": [_node(plan, name, local) for name in plan.order
                  if plan.node(name).kind != "input"],
        "rules": rules,
        "loop": _loop(plan, module),
    }


def _loop(plan: Plan, module: Scope) -> dict | None:
    """The C of the network's compiled whole-run loop (runtime.compiled runs it), named
    as a module constant; None where the loop cannot run it (the PyTorch path does)."""
    source = loop_source(plan, _depths(plan))
    return None if source is None else {"name": module.name(f"LOOP_{plan.name}"),
                                        "source": source}


def _check_learnable(proj: Projection) -> None:
    """STDP here acts on one weighted op that the source's spikes reach unchanged (or
    flattened) and whose output is the target's input."""
    before, after = proj.ops[:proj.weighted], proj.ops[proj.weighted + 1:]
    if proj.connectivity not in ("dense", "sparse", "one_to_one") or after \
            or any(op.kind not in _BEFORE_A_RULE for op in before):
        raise SnnError(f"learn {proj.rule.kind} in connection '{proj.name}' needs its weights "
                       "in a dense, sparse or one_to_one op that comes last, after nothing "
                       "but `flatten`", proj.pos)
    if proj.connectivity == "dense" and len(proj.ops[proj.weighted].in_shape) != 1:
        raise SnnError(f"learn {proj.rule.kind} in connection '{proj.name}' needs `dense` "
                       "to read a flat [N] input", proj.pos, "add `flatten` before `dense`")


RULE_PARTS = ("decay", "pre_trace", "pre_weight", "post_trace", "post_weight")


def _rules(plan: Plan, module: Scope) -> tuple[list[dict], list[dict]]:
    """The rules' step functions (each distinct one once) and, per plastic connection,
    which five it runs."""
    learning = [p for p in plan.projections if p.learning is not None]
    rules = {p.name: {"name": p.name, "src": p.src, "dst": p.dst, "weighted": p.weighted,
                      "every_step": p.learning.every_step, "pre_spike": p.learning.pre_spike}
             for p in learning}
    functions = []
    for part in RULE_PARTS:
        fns, name_of = modules.shared(
            [(p.learning, p.name, f"the {p.learning.kind} {part} of connection")
             for p in learning],
            lambda r, part=part: rule_functions(r)[part],
            lambda r, part=part: f"{r.kind}_{part}", module)
        functions += fns
        for p in learning:
            rules[p.name][part] = name_of[p.name]
    return functions, list(rules.values())


def _depths(plan: Plan) -> dict[str, int]:
    """How many of its past steps each node keeps: its outgoing connections read up to
    their longest delay back (per-synapse delays included)."""
    depths = {n: 1 for n in plan.order}
    for proj in plan.projections:
        longest = proj.delay + proj.extra_delay
        depths[proj.src] = max(depths[proj.src], longest + 1)
    return depths


def _node(plan: Plan, name: str, local: modules.LocalNames) -> dict:
    """An encoder or a population in the step, in schedule order."""
    node = plan.node(name)
    if node.kind == "encoder":
        return {"kind": "encoder", **modules.encoder(node, local)}
    return {"kind": "population", "name": name, "seq": local.seq[name], "shape": node.shape,
            **modules.inputs_by_channel(plan, name, lambda c: {"name": c.name, "src": c.src})}
