"""What a backend can run, checked once before it renders a plan: every construct the
plan uses against the backends its registry entry names."""
from __future__ import annotations

from collections.abc import Iterator

from snnc import __version__
from snnc.check.neurons import refusal
from snnc.errors import Pos, SnnError
from snnc.plan.nodes import Plan
from snnc.registry import ENCODERS, OPS, READOUTS, RULES, SURROGATES, SYNAPSES
from snnc.registry.core import EVENT, neuron_backends


def check_supported(plan: Plan, backend: str) -> None:
    """An SnnError naming the first construct `backend` cannot run, and where it can."""
    for what, name, where, able, pos in constructs(plan):
        if backend not in able:
            hint = (f"{name} runs on the {' or '.join(sorted(able))} backend" if able
                    else f"no backend of snnc {__version__} runs it yet")
            pop = next((p for p in plan.populations if f"population '{p.name}'" == where
                        and not what), None)
            message = refusal(pop.model, pop.name, backend) if pop is not None else \
                f"the {backend} backend cannot run {what}{name} ({where})"
            raise SnnError(message, pos, hint)


def constructs(plan: Plan) -> Iterator[tuple[str, str, str, frozenset[str], Pos]]:
    """(what, name, where it is used, the backends that run it, position) of each
    construct of the plan, in the order they are declared; `what` is "" for a neuron
    model (its name says what it is)."""
    for pop in plan.populations:
        where = f"population '{pop.name}'"
        yield ("", pop.model.name, where, frozenset(neuron_backends(
            pop.model.event_driven, pop.model.nonlinearity() is None)), pop.pos)
        if not pop.model.event_driven:
            # the event backend takes no gradient through a threshold: any surrogate will do
            entry = SURROGATES[pop.surrogate.kind]
            yield "the surrogate ", entry.name, where, entry.backends | {EVENT}, pop.pos
    for enc in plan.encoders:
        entry = ENCODERS[enc.spec.kind]
        yield "the encoder ", entry.name, f"encoder '{enc.name}'", entry.backends, enc.pos
    for proj in plan.projections:
        where = f"connection '{proj.name}'"
        for op in proj.ops:
            yield "the op ", op.kind, where, OPS[op.kind].backends, op.pos
        if proj.synapse is not None:
            yield "the synapse ", proj.synapse.kind, where, SYNAPSES[proj.synapse.kind].backends, \
                proj.pos
        if proj.rule is not None:
            yield "the plasticity rule ", proj.rule.kind, where, RULES[proj.rule.kind].backends, \
                proj.pos
    if plan.readout is not None:
        entry = READOUTS[plan.readout.spec.kind]
        yield "the readout ", entry.name, f"readout of '{plan.readout.target}'", entry.backends, \
            plan.readout.pos
