"""Binding calls to the signatures of the registry (snnc.registry).

Each parameter has a kind that says what values it takes; `bind` evaluates a
call's arguments against a signature and reports the first thing wrong with
the argument's own position.
"""
from __future__ import annotations

from collections.abc import Mapping

from snnc.check.values import RATE, TIME, Evaluator, bind_positional, describe
from snnc.errors import SnnError, unknown
from snnc.frontend import ast
from snnc.ir.values import Normal, Spec, Symbol, Uniform, Value
from snnc.limits import MAX_INT, MAX_SEED, MAX_STEPS
from snnc.registry import REQUIRED, SURROGATES, Param, Signature

# Whole-number kinds and their bounds: whatever the file says, a size fits the int32
# PyTorch builds layers with, a seed fits torch.manual_seed, `steps` a bounded run.
WHOLE_NUMBERS = {"int+": (1, MAX_INT), "int0": (0, MAX_INT), "seed": (0, MAX_SEED),
                 "steps": (1, MAX_STEPS)}
# The kind of quantity each kind expects: a quantity of the other kind is an error.
QUANTITY_OF = {"time": TIME, "steps0": TIME, "rate": RATE}


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
    if kind == "channel":  # which of the target's states: checked with the connection
        if isinstance(expr, ast.Name):
            return Symbol(expr.id)
        raise SnnError(f"{where} takes the name of a state of the target's neuron model",
                       expr.pos, "for example `channel = ge`")
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
