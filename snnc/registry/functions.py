"""Expression functions: each once, with its arity, its value at build time (the constant
folder and the checker compute with it), how PyTorch and C spell it, and its partial
derivatives (the fused kernels' backward, kernels.tape). `public` ones may be written in
.snn files (LANGUAGE.md §3); the others only appear in snnc's own equations (the sign_swish
surrogate's cosh)."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from snnc.ir import expr as ex
from snnc.registry.equations import cmp as _cmp
from snnc.registry.equations import sub as _sub
from snnc.registry.equations import times as _mul
from snnc.registry.equations import where

Partials = Callable[[tuple[ex.Expr, ...], ex.Expr, ex.Expr], list[tuple[ex.Expr, ex.Expr]]]


@dataclass(frozen=True)
class Function:
    name: str
    arity: int
    value: Callable[..., float]
    torch: str                    # format string over the arguments' code ({0}, {1}, ...)
    c: str
    partials: Partials            # (args, out, d: the gradient reaching out) -> per arg
    differentiable: tuple[int, ...] = (0,)   # the arguments a gradient flows to
    public: bool = True


def _n(value: float) -> ex.Number:
    return ex.Number(value)


def _one(rule: Callable[[ex.Expr, ex.Expr, ex.Expr], ex.Expr]) -> Partials:
    """The partials of a function of one argument: [(a, rule(a, out, d))]."""
    return lambda args, out, d: [(args[0], rule(args[0], out, d))]


def _extremum(func: str) -> Partials:
    """torch.minimum / maximum: where(a == b, grad / 2, grad), then 0 on the side that
    lost (a > b for min's a, a < b for max's a)."""
    def partials(args, out, d):
        a, b = args
        half = where(_cmp("==", a, b), ex.Binary("/", d, _n(2)), d)
        a_lost = _cmp(">" if func == "min" else "<", a, b)
        b_lost = _cmp("<" if func == "min" else ">", a, b)
        return [(a, where(a_lost, _n(0), half)), (b, where(b_lost, _n(0), half))]
    return partials


def _sigmoid(v: float) -> float:
    # the form that cannot overflow on either side (sigmoid(-1000) is 0, as in PyTorch)
    return 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))


def _if_partials(args, out, d):
    return [(args[1], where(args[0], d, _n(0))), (args[2], where(args[0], _n(0), d))]


def _no_partials(args, out, d):
    return []


def _no_value(name: str) -> Callable[..., float]:
    def value(*args: float) -> float:
        raise ValueError(f"{name} has no build-time value")
    return value


FUNCTIONS: dict[str, Function] = {f.name: f for f in [
    Function("exp", 1, math.exp, "torch.exp({0})", "exp({0})",
             _one(lambda a, out, d: _mul(d, out))),
    Function("log", 1, math.log, "torch.log({0})", "log({0})",
             _one(lambda a, out, d: ex.Binary("/", d, a))),
    Function("sqrt", 1, math.sqrt, "torch.sqrt({0})", "sqrt({0})",
             _one(lambda a, out, d: ex.Binary("/", d, _mul(_n(2), out)))),
    # tanh_backward: grad * (1 - y * y)
    Function("tanh", 1, math.tanh, "torch.tanh({0})", "tanh({0})",
             _one(lambda a, out, d: _mul(d, _sub(_n(1), _mul(out, out))))),
    # sigmoid_backward: grad * (1 - y) * y
    Function("sigmoid", 1, _sigmoid, "torch.sigmoid({0})",
             "((real)1 / ((real)1 + exp(-({0}))))",
             _one(lambda a, out, d: _mul(_mul(d, _sub(_n(1), out)), out))),
    # grad * sgn(a)
    Function("abs", 1, abs, "torch.abs({0})", "fabs({0})",
             _one(lambda a, out, d: _mul(d, _sub(_cmp(">", a, _n(0)), _cmp("<", a, _n(0)))))),
    # torch.minimum/maximum: NaN wherever an argument is NaN, where C's fmin and fmax drop
    # it (templates/kernels/step.h.j2 defines snnc_min/snnc_max)
    Function("min", 2, min, "rt.minimum({0}, {1})", "snnc_min({0}, {1})", _extremum("min"),
             (0, 1)),
    Function("max", 2, max, "rt.maximum({0}, {1})", "snnc_max({0}, {1})", _extremum("max"),
             (0, 1)),
    # the tape lowers clamp to min(max(...)) before differentiating
    Function("clamp", 3, lambda v, lo, hi: min(max(v, lo), hi), "rt.clamp({0}, {1}, {2})",
             "snnc_min(snnc_max({0}, {1}), {2})", _no_partials, ()),
    Function("if", 3, lambda cond, a, b: a if cond else b, "rt.where({0}, {1}, {2})",
             "(({0}) != 0 ? ({1}) : ({2}))", _if_partials, (1, 2)),
    # only in a plasticity rule's weight change (registry.rules: SpikingFlow's normalised
    # f_w): the sum over the connection's synapses, never per element (kernels.loop
    # computes it before its pass over the synapses; its C spelling exists nowhere)
    Function("synapse_sum", 1, _no_value("synapse_sum"), "rt.plasticity.synapse_sum({0})",
             "snnc_synapse_sum_outside_a_rule({0})", _no_partials, (), public=False),
    # only in a surrogate's derivative, which nothing differentiates again
    Function("cosh", 1, math.cosh, "torch.cosh({0})", "cosh({0})", _no_partials, (),
             public=False),
]}

PUBLIC = {name: f for name, f in FUNCTIONS.items() if f.public}
