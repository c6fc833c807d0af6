"""What every registry entry has: a signature (its parameters, each of a kind that says
what values it takes), a doc line, a check of its bound values together, and the backends
that run it. snnc.check.signatures binds calls against these; nothing here reads the AST."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from snnc.errors import Pos, SnnError
from snnc.ir.values import Symbol

REQUIRED = object()  # default of a parameter that must be given


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: object = REQUIRED
    choices: tuple[str, ...] = ()


# Parameter kinds:
#   number, positive, nonneg, prob, prob<1 (in [0, 1)), bool,
#   whole numbers: int+ (>= 1), int0 (>= 0), seed, steps (see check.signatures),
#   time (steps, > 0), steps0 (a whole number of steps >= 0, rounded),
#   rate (probability per step), init (number | uniform | normal), choice, source,
#   surrogate, weight_fn
def P(name: str, kind: str, default: object = REQUIRED, *choices: str) -> Param:
    return Param(name, kind, default, tuple(choices))


# A check of a call's bound values together (`filter(tau, learnable)`) for what the
# runtime cannot compute (a log of a non-positive number, a division by zero, a
# diverging update): it raises an SnnError placed with `at(param)`, where that
# argument was written; binding names the call in the message.
Combination = Callable[[Mapping[str, object], Callable[[str], Pos]], None]

# The backends snnc has; an entry lists those that run it.
SOFTBP, CLOCK, EVENT = "softbp", "clock", "event"
STEPPED = frozenset({SOFTBP, CLOCK})  # the two that step neurons through time


@dataclass(frozen=True)
class Signature:
    name: str
    params: tuple[Param, ...] = ()
    what: str = "op"
    doc: str = ""
    combination: Combination | None = None
    backends: frozenset[str] = field(default=frozenset({SOFTBP}))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def usage(self) -> str:
        parts = [p.name if p.default is REQUIRED else f"{p.name} = {show(p.default)}"
                 for p in self.params]
        return f"{self.name}({', '.join(parts)})"


def show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Symbol):
        return value.name
    return str(value)


def table(*entries: Signature) -> dict[str, Signature]:
    return {entry.name: entry for entry in entries}


# ------------------------------------------------------------------ shared checks
# Explicit Euler steps such as `x += (1 - x) / tau` diverge when tau < 1/2 step.
_STABLE_TAU = 0.5
# latency(mode = log) scales its input by exp(t_max - 1), which must fit a float32.
_FLOAT32_MAX = 3.4028234663852886e38
LOG_LATENCY_T_MAX = 1 + math.log(_FLOAT32_MAX)


def stable_taus(*names: str) -> Combination:
    def check(p: Mapping[str, object], at: Callable[[str], Pos]) -> None:
        for name in names:
            if p[name] < _STABLE_TAU:
                raise SnnError(f"'{name}' must be at least {_STABLE_TAU:g} step, got "
                               f"{p[name]:g}", at(name),
                               f"an update by 1/{name} per step diverges below half a step")
    return check


def ordered(low: str, high: str, strict: bool) -> Combination:
    def check(p: Mapping[str, object], at: Callable[[str], Pos]) -> None:
        if p[low] > p[high] or (strict and p[low] == p[high]):
            raise SnnError(f"'{low}' must be {'below' if strict else 'at most'} '{high}', "
                           f"got {p[low]:g} and {p[high]:g}", at(low))
    return check


def neuron_backends(event_driven: bool, linear: bool = False) -> tuple[str, ...]:
    """The backends that run a neuron model: spike-response models (a `kernel`) the event
    backend, stepped models (charge, fire, reset) the clock and softbp backends, and the
    event backend too where they are linear below threshold (ir.nodes.Model.nonlinearity)."""
    if event_driven:
        return (EVENT,)
    return (CLOCK, SOFTBP, EVENT) if linear else (CLOCK, SOFTBP)
