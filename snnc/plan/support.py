"""What a backend can run, checked once before it renders a plan: every construct the
plan uses against the backends its registry entry names."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from snnc import __version__
from snnc.check.neurons import backends_of, refusal
from snnc.errors import Pos, SnnError
from snnc.plan.nodes import Plan
from snnc.registry import ENCODERS, OPS, READOUTS, RULES, SURROGATES, SYNAPSES
from snnc.registry.core import EVENT


def check_supported(plan: Plan, backend: str) -> None:
    """An SnnError naming the first construct `backend` cannot run, and where it can."""
    for refused, name, able, pos in constructs(plan):
        if backend not in able:
            hint = (f"{name} runs on the {' or '.join(sorted(able))} backend" if able
                    else f"no backend of snnc {__version__} runs it yet")
            raise SnnError(refused(backend), pos, hint)


Refusal = Callable[[str], str]  # a backend -> the error of that backend


def constructs(plan: Plan) -> Iterator[tuple[Refusal, str, frozenset[str], Pos]]:
    """(the error of a backend that cannot run it, its name, the backends that run it,
    position) of each construct of the plan, in the order they are declared."""
    for pop in plan.populations:
        yield (lambda backend, pop=pop: refusal(pop.model, pop.name, backend)), \
            pop.model.name, frozenset(backends_of(pop.model)), pop.pos
        if not pop.model.event_driven:
            # the event backend takes no gradient through a threshold: any surrogate will do
            entry = SURROGATES[pop.surrogate.kind]
            yield _refusal("the surrogate ", entry.name, f"population '{pop.name}'"), \
                entry.name, entry.backends | {EVENT}, pop.pos
    for enc in plan.encoders:
        entry = ENCODERS[enc.spec.kind]
        yield _refusal("the encoder ", entry.name, f"encoder '{enc.name}'"), entry.name, \
            entry.backends, enc.pos
    for proj in plan.projections:
        where = f"connection '{proj.name}'"
        for op in proj.ops:
            yield _refusal("the op ", op.kind, where), op.kind, OPS[op.kind].backends, op.pos
        if proj.synapse is not None:
            kind = proj.synapse.kind
            yield _refusal("the synapse ", kind, where), kind, SYNAPSES[kind].backends, proj.pos
        if proj.rule is not None:
            kind = proj.rule.kind
            yield _refusal("the plasticity rule ", kind, where), kind, RULES[kind].backends, \
                proj.pos
    if plan.readout is not None:
        entry = READOUTS[plan.readout.spec.kind]
        yield _refusal("the readout ", entry.name, f"readout of '{plan.readout.target}'"), \
            entry.name, entry.backends, plan.readout.pos


def _refusal(what: str, name: str, where: str) -> Refusal:
    return lambda backend: f"the {backend} backend cannot run {what}{name} ({where})"
