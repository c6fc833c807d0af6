"""Signatures of everything a network can name besides neurons, and binding calls to them.

Each parameter has a kind that says what values it takes; `bind` evaluates a
call's arguments against a signature and reports the first thing wrong with
the argument's own position.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from snnc.check.values import RATE, TIME, Evaluator, bind_positional, describe
from snnc.errors import Pos, SnnError, unknown
from snnc.frontend import ast
from snnc.ir.values import Normal, Spec, Symbol, Uniform, Value
from snnc.limits import MAX_INT, MAX_SEED, MAX_STEPS

REQUIRED = object()  # default of a parameter that must be given


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: object = REQUIRED
    choices: tuple[str, ...] = ()


# A check of a call's bound values together (`filter(tau, learnable)`) for what the
# runtime cannot compute (a log of a non-positive number, a division by zero, a
# diverging update): it raises an SnnError placed with `at(param)`, where that
# argument was written; `bind` names the call in the message.
Combination = Callable[[Mapping[str, Value], Callable[[str], Pos]], None]


@dataclass(frozen=True)
class Signature:
    name: str
    params: tuple[Param, ...] = ()
    what: str = "op"
    doc: str = ""
    sources: tuple[str, ...] = field(default=())  # encoders: params that name an input
    combination: Combination | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def usage(self) -> str:
        parts = [p.name if p.default is REQUIRED else f"{p.name} = {_show(p.default)}"
                 for p in self.params]
        return f"{self.name}({', '.join(parts)})"


def _show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Symbol):
        return value.name
    return str(value)


def _sig(what: str, name: str, *params: Param, doc: str = "", sources: tuple[str, ...] = (),
         combination: Combination | None = None):
    return Signature(name, params, what, doc, sources, combination)


# Parameter kinds:
#   number, positive, nonneg, prob, prob<1 (in [0, 1)), bool,
#   whole numbers: int+ (>= 1), int0 (>= 0), seed, steps (see WHOLE_NUMBERS),
#   time (steps, > 0), steps0 (a whole number of steps >= 0, rounded),
#   rate (probability per step), init (number | uniform | normal), choice, source
def P(name: str, kind: str, default: object = REQUIRED, *choices: str) -> Param:
    return Param(name, kind, default, tuple(choices))


# Whole-number kinds and their bounds: whatever the file says, a size fits the int32
# PyTorch builds layers with, a seed fits torch.manual_seed, `steps` a bounded run.
WHOLE_NUMBERS = {"int+": (1, MAX_INT), "int0": (0, MAX_INT), "seed": (0, MAX_SEED),
                 "steps": (1, MAX_STEPS)}
# The kind of quantity each kind expects: a quantity of the other kind is an error.
QUANTITY_OF = {"time": TIME, "steps0": TIME, "rate": RATE}

# Explicit Euler steps such as `x += (1 - x) / tau` diverge when tau < 1/2 step.
_STABLE_TAU = 0.5
# latency(mode = log) scales its input by exp(t_max - 1), which must fit a float32.
_FLOAT32_MAX = 3.4028234663852886e38
_LOG_LATENCY_T_MAX = 1 + math.log(_FLOAT32_MAX)


def _stable_taus(*names: str) -> Combination:
    def check(p: Mapping[str, Value], at: Callable[[str], Pos]) -> None:
        for name in names:
            if p[name] < _STABLE_TAU:
                raise SnnError(f"'{name}' must be at least {_STABLE_TAU:g} step, got "
                               f"{p[name]:g}", at(name),
                               f"an update by 1/{name} per step diverges below half a step")
    return check


def _filter(p: Mapping[str, Value], at: Callable[[str], Pos]) -> None:
    if p["learnable"] and p["tau"] <= 1:
        raise SnnError(f"with learnable = true, 'tau' must be above 1 step, got {p['tau']:g}",
                       at("tau"), "its 1/tau is learnt as sigmoid(w), which lies in (0, 1)")
    _stable_taus("tau")(p, at)


def _latency(p: Mapping[str, Value], at: Callable[[str], Pos]) -> None:
    if p["mode"].name == "log" and p["t_max"] > _LOG_LATENCY_T_MAX:
        raise SnnError(f"with mode = log, 't_max' must be at most "
                       f"{_LOG_LATENCY_T_MAX:.4g} steps, got {p['t_max']:g}", at("t_max"),
                       "it scales values by exp(t_max - 1), which must fit a float32; "
                       "use mode = linear")


def _ordered(low: str, high: str, strict: bool) -> Combination:
    def check(p: Mapping[str, Value], at: Callable[[str], Pos]) -> None:
        if p[low] > p[high] or (strict and p[low] == p[high]):
            raise SnnError(f"'{low}' must be {'below' if strict else 'at most'} '{high}', "
                           f"got {p[low]:g} and {p[high]:g}", at(low))
    return check


OPS = {s.name: s for s in [
    _sig("op", "dense", P("bias", "bool", False), P("w", "init", None), P("out", "int+", None),
         doc="fully connected on the last axis"),
    _sig("op", "sparse", P("p", "prob", 0.02), P("w", "init", None), P("out", "int+", None),
         doc="each synapse exists with probability p"),
    _sig("op", "one_to_one", P("w", "init", None), doc="one weight per neuron"),
    _sig("op", "conv1d", P("k", "int+", 3), P("stride", "int+", 1), P("pad", "int0", 0),
         P("bias", "bool", False), P("w", "init", None), P("out", "int+", None)),
    _sig("op", "conv2d", P("k", "int+", 3), P("stride", "int+", 1), P("pad", "int0", 1),
         P("bias", "bool", False), P("w", "init", None), P("out", "int+", None)),
    _sig("op", "maxpool", P("k", "int+", 2)),
    _sig("op", "avgpool", P("k", "int+", 2)),
    _sig("op", "flatten"),
    _sig("op", "batchnorm", P("eps", "positive", 1e-5), P("momentum", "prob", 0.1)),
    _sig("op", "dropout", P("p", "prob<1", 0.5)),
    _sig("op", "scale", P("c", "number")),
    _sig("op", "noise", P("std", "nonneg")),
    _sig("op", "channel_maxpool", P("k", "int+")),
    _sig("op", "dct", P("k", "int+")),
    _sig("op", "axat", P("out", "int+", None)),
]}

ENCODERS = {s.name: s for s in [
    _sig("encoder", "poisson", P("x", "source", None), P("rate", "rate", None), sources=("x",)),
    _sig("encoder", "constant", P("x", "source"), sources=("x",)),
    _sig("encoder", "latency", P("x", "source"), P("t_max", "time", 20),
         P("mode", "choice", Symbol("linear"), "linear", "log"), sources=("x",),
         combination=_latency),
    _sig("encoder", "periodic", P("pattern", "source"), sources=("pattern",)),
    _sig("encoder", "gaussian_tuning", P("x", "source"), P("m", "int+", 16),
         P("x_min", "number", 0.0), P("x_max", "number", 1.0), P("t_max", "time", 100),
         sources=("x",), combination=_ordered("x_min", "x_max", strict=True)),
]}

SYNAPSES = {s.name: s for s in [
    _sig("synapse", "exp_current", P("tau", "time", 5.0)),
    _sig("synapse", "spike_current", P("amplitude", "number", 1.0)),
    _sig("synapse", "exp_decay_current", P("tau", "time", 5.0), P("amplitude", "number", 1.0)),
    _sig("synapse", "stp", P("v_base", "prob", 0.2), P("tau_f", "time", 750.0),
         P("tau_d", "time", 50.0), combination=_stable_taus("tau_f", "tau_d")),
    _sig("synapse", "filter", P("tau", "time", 100.0), P("learnable", "bool", False),
         combination=_filter),
]}

RULES = {s.name: s for s in [
    _sig("rule", "stdp", P("tau_pre", "time", 20.0), P("tau_post", "time", 20.0),
         P("a_pre", "number", 0.01), P("a_post", "number", -0.0105),
         P("w_min", "number", 0.0), P("w_max", "number", 1.0),
         # LANGUAGE.md: `1` (additive, the default) or `multiplicative` (soft bounds)
         P("f_w", "weight_fn", Symbol("additive"), "additive", "multiplicative"),
         combination=_ordered("w_min", "w_max", strict=False)),
]}

READOUTS = {s.name: s for s in [
    _sig("readout", "rate"), _sig("readout", "count"), _sig("readout", "v"),
    _sig("readout", "v_max"), _sig("readout", "first_spike"),
    _sig("readout", "voting", P("k", "int+")),
]}

SURROGATES = {s.name: s for s in [
    _sig("surrogate", "sigmoid", P("alpha", "positive", 4.0)),
    _sig("surrogate", "atan", P("alpha", "positive", 2.0)),
    _sig("surrogate", "piecewise", P("a", "positive", 1.0), P("b", "nonneg", 0.01),
         P("c", "positive", 0.5)),
    _sig("surrogate", "sign_swish", P("beta", "positive", 5.0)),
    _sig("surrogate", "rect", P("width", "positive", 1.0)),
]}

SETTINGS = _sig("setting", "network",
                P("dt", "positive", 1.0),  # milliseconds
                P("steps", "steps", 100),
                P("backend", "choice", Symbol("softbp"), "clock", "softbp", "event"),
                P("seed", "seed", None))

# What every population accepts whatever its model (LANGUAGE.md §4.4); `reset`
# overrides the model's reset (hard/soft/none) as SpikingJelly's v_reset=None does.
POPULATION_COMMON = (
    P("surrogate", "surrogate", Spec("sigmoid", {"alpha": 4.0})),
    P("detach_reset", "bool", False),
    P("refractory", "steps0", 0),
    P("reset", "choice", None, "hard", "soft", "none"),
)


def bind(call: ast.Call, sig: Signature, ev: Evaluator,
         sources: Mapping[str, object] | None = None) -> dict[str, Value]:
    """Evaluate `call`'s arguments against `sig`, filling defaults; every mistake is an SnnError."""
    by_name = {p.name: p for p in sig.params}
    raw = bind_positional(call, sig.names, {})
    for key in raw:
        if key not in by_name:
            raise unknown_param(sig, key, _arg_pos(call, key))
    bound: dict[str, Value] = {}
    for param in sig.params:
        if param.name not in raw:
            if param.default is REQUIRED:
                raise SnnError(f"{sig.name}() needs '{param.name}'", call.pos,
                               f"usage: {sig.usage()}")
            bound[param.name] = param.default
            continue
        bound[param.name] = convert(param, raw[param.name], ev, sig, sources)
    if sig.combination is not None:
        try:
            sig.combination(bound, lambda name: raw[name].pos if name in raw else call.pos)
        except SnnError as err:
            raise SnnError(f"{sig.name}(): {err.message}", err.pos, err.hint) from None
    return bound


def unknown_param(sig: Signature, key: str, pos) -> SnnError:
    err = unknown("parameter", key, sig.names, pos, owner=sig.name)
    err.hint = (f"{sig.name} accepts: {', '.join(sig.names)}" if sig.names
                else f"{sig.name} takes no parameters")
    return err


def _arg_pos(call: ast.Call, key: str):
    for kw in call.kwargs:
        if kw.name == key:
            return kw.pos
    return call.pos


def convert(param: Param, expr: ast.Expr, ev: Evaluator, sig: Signature,
            sources: Mapping[str, object] | None = None) -> Value:
    """One argument's value, checked against its parameter's kind."""
    where = f"{sig.name}(): '{param.name}'"
    kind = param.kind
    if kind == "source":
        return _source(expr, where, sources or {})
    if kind == "surrogate":
        return _surrogate(expr, ev)
    if kind == "choice":
        return _choice(param, expr, where)
    if kind == "weight_fn":
        if isinstance(expr, ast.Number) and expr.value == 1:
            return Symbol("additive")
        return _choice(param, expr, where)
    value = ev.expecting(QUANTITY_OF.get(kind))(expr)
    if kind == "init":
        if isinstance(value, (Uniform, Normal)) or _is_number(value):
            return value
        raise SnnError(f"{where} takes a number, uniform(a, b) or normal(mu, sigma), "
                       f"got {describe(value)}", expr.pos)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise SnnError(f"{where} takes true or false, got {describe(value)}", expr.pos)
    if not _is_number(value):
        raise SnnError(f"{where} takes a number, got {describe(value)}", expr.pos)
    return _check_range(kind, value, where, expr)


def _check_range(kind: str, value: float, where: str, expr: ast.Expr) -> Value:
    if kind in WHOLE_NUMBERS:
        return _whole(value, *WHOLE_NUMBERS[kind], where, expr)
    if kind in ("positive", "time") and value <= 0:
        noun = "a time constant" if kind == "time" else "a value"
        raise SnnError(f"{where} must be positive ({noun}), got {value:g}", expr.pos)
    if kind in ("nonneg", "steps0") and value < 0:
        raise SnnError(f"{where} must not be negative, got {value:g}", expr.pos)
    if kind in ("prob", "prob<1", "rate") and not 0.0 <= value <= 1.0:
        raise SnnError(f"{where} is a probability and must lie in [0, 1], got {value:g}",
                       expr.pos, "a rate with a unit is a probability per step: "
                       "rate × dt must not exceed 1" if kind == "rate" else None)
    if kind == "prob<1" and value == 1.0:
        raise SnnError(f"{where} must be below 1, got {value:g}", expr.pos,
                       "p = 1 would drop everything, and what is kept is scaled by 1 / (1 - p)")
    if kind == "steps0":
        return _whole(round(value), 0, MAX_STEPS, where, expr)
    return float(value) if kind != "number" or isinstance(value, float) else value


def _whole(value: float, low: int, high: int, where: str, expr: ast.Expr) -> int:
    # Not float(value): an integer literal as large as a 63-bit seed must stay exact.
    if isinstance(value, float) and not value.is_integer():
        raise SnnError(f"{where} must be a whole number, got {value:g}", expr.pos)
    value = int(value)
    if value < low:
        raise SnnError(f"{where} must be at least {low}, got {value}" if low else
                       f"{where} must not be negative, got {value}", expr.pos)
    if value > high:
        raise SnnError(f"{where} must be at most {high}, got {_big(value)}", expr.pos)
    return value


def _big(value: int) -> str:
    return str(value) if abs(value) < 10**16 else f"{value:.3g}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _choice(param: Param, expr: ast.Expr, where: str) -> Symbol:
    if isinstance(expr, (ast.Name, ast.Call)) and not getattr(expr, "args", None) \
            and not getattr(expr, "kwargs", None):
        word = expr.id if isinstance(expr, ast.Name) else expr.func
        if word in param.choices:
            return Symbol(word)
        raise unknown("value", word, param.choices, expr.pos, owner=where)
    raise SnnError(f"{where} takes one of: {', '.join(param.choices)}", expr.pos)


def _source(expr: ast.Expr, where: str, sources: Mapping[str, object]) -> Symbol:
    if not isinstance(expr, ast.Name):
        raise SnnError(f"{where} takes the name of an input", expr.pos)
    if expr.id not in sources:
        raise unknown("input", expr.id, sources, expr.pos)
    return Symbol(expr.id)


def _surrogate(expr: ast.Expr, ev: Evaluator) -> Spec:
    if isinstance(expr, ast.Name):
        expr = ast.Call(expr.id, pos=expr.pos)
    if not isinstance(expr, ast.Call):
        raise SnnError("surrogate takes a surrogate function such as atan(alpha = 2.0)",
                       expr.pos, f"known: {', '.join(SURROGATES)}")
    if expr.func not in SURROGATES:
        raise unknown("surrogate", expr.func, SURROGATES, expr.pos)
    sig = SURROGATES[expr.func]
    return Spec(sig.name, bind(expr, sig, ev))


def resolve(table: Mapping[str, Signature], call: ast.Call, what: str) -> Signature:
    """The signature `call` names in `table`, or an unknown-name error with a suggestion."""
    if call.func not in table:
        raise unknown(what, call.func, table, call.pos)
    return table[call.func]
