"""Build-time values: evaluating constant expressions, units, and random initialisers.

A number written with a unit is converted with the network's `dt`: a time to
steps, a rate to a probability per step (LANGUAGE.md §2). A number without a
unit is taken as it is.

An Evaluator may expect a kind of quantity (TIME or RATE, see `expecting`): then
a quantity of the other kind anywhere in the expression is an error naming the
kind expected, instead of being converted by its own unit (`tau = 20 Hz` is not
0.02 steps).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping

from snnc.errors import Pos, SnnError, unknown
from snnc.frontend import ast
from snnc.ir.values import Normal, Symbol, Uniform, Value
from snnc.limits import MAX_MAGNITUDE
from snnc.registry.functions import FUNCTIONS, PUBLIC

TIME_UNITS_MS = {"s": 1000.0, "ms": 1.0, "us": 1e-3}
RATE_UNITS_HZ = {"Hz": 1.0, "kHz": 1000.0}
TIME, RATE = "time", "rate"  # the kinds of quantity a value may be expected to be


# Python ints grow without bound, PyTorch takes only those that fit an int64: a whole
# result beyond it becomes a float (the constant folder computes with these too).
_INT64_MAX = 2**63 - 1


def _int64(value: float | int) -> float | int:
    return float(value) if isinstance(value, int) and abs(value) > _INT64_MAX else value


BINARY: dict[str, Callable[[float, float], float | bool]] = {
    "+": lambda a, b: _int64(a + b),
    "-": lambda a, b: _int64(a - b),
    "*": lambda a, b: _int64(a * b),
    "/": lambda a, b: a / b,
    "**": lambda a, b: float(a) ** float(b),  # floats: int powers could grow without bound
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "and": lambda a, b: bool(a) and bool(b),
    "or": lambda a, b: bool(a) or bool(b),
}


def quantity_kind(q: ast.Quantity) -> str:
    return TIME if q.unit in TIME_UNITS_MS else RATE


def check_kind(q: ast.Quantity, expect: str | None) -> None:
    """An SnnError naming the kind expected when `q` is of the other kind."""
    if expect is None or quantity_kind(q) == expect:
        return
    got = quantity_kind(q)
    raise SnnError(f"expected a {expect}, got a {got} ({q.value} {q.unit})", q.pos,
                   "times take s, ms or us" if expect == TIME else "rates take Hz or kHz")


def time_to_steps(q: ast.Quantity, dt_ms: float) -> float:
    check_kind(q, TIME)
    return q.value * TIME_UNITS_MS[q.unit] / dt_ms


def rate_to_probability(q: ast.Quantity, dt_ms: float) -> float:
    check_kind(q, RATE)
    return q.value * RATE_UNITS_HZ[q.unit] * dt_ms / 1000.0


def quantity_value(q: ast.Quantity, dt_ms: float, expect: str | None = None) -> float:
    """A time in steps or a rate as a probability per step, whichever the unit says
    (and an SnnError when `expect` is the other kind)."""
    check_kind(q, expect)
    if q.unit in TIME_UNITS_MS:
        return time_to_steps(q, dt_ms)
    return rate_to_probability(q, dt_ms)


class Evaluator:
    """Evaluates build-time expressions over an environment of known values."""

    def __init__(self, dt_ms: float, env: Mapping[str, Value] | None = None,
                 symbols: frozenset[str] = frozenset(), expect: str | None = None):
        self.dt_ms = dt_ms
        self.env = dict(env or {})
        self.symbols = symbols  # bare words accepted as Symbol values
        self.expect = expect    # TIME, RATE, or None: any quantity, by its own unit

    def expecting(self, kind: str | None) -> Evaluator:
        """This evaluator, expecting quantities of `kind` (TIME, RATE or None: any)."""
        other = copy.copy(self)  # the environment is shared, not copied
        other.expect = kind
        return other

    def __call__(self, expr: ast.Expr) -> Value:
        value = self._eval(expr)
        if isinstance(value, float) and not math.isfinite(value):
            raise SnnError("this value is not a finite number", expr.pos)
        return value

    def number(self, expr: ast.Expr) -> float:
        value = self(expr)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SnnError(f"expected a number, got {describe(value)}", expr.pos)
        return value

    def _eval(self, expr: ast.Expr) -> Value:
        if isinstance(expr, ast.Number):
            return bounded(expr.value, expr.pos)
        if isinstance(expr, ast.Bool):
            return expr.value
        if isinstance(expr, ast.Quantity):
            return bounded(quantity_value(expr, self.dt_ms, self.expect), expr.pos)
        if isinstance(expr, ast.Name):
            return self._name(expr)
        if isinstance(expr, ast.Unary):
            return self._unary(expr)
        if isinstance(expr, ast.Binary):
            return self._binary(expr)
        if isinstance(expr, ast.Call):
            return self._call(expr)
        raise TypeError(f"not an expression: {expr!r}")

    def _name(self, expr: ast.Name) -> Value:
        if expr.id in self.env:
            return self.env[expr.id]
        if expr.id in self.symbols:
            return Symbol(expr.id)
        raise unknown("name", expr.id, list(self.env) + list(self.symbols), expr.pos)

    def _unary(self, expr: ast.Unary) -> Value:
        value = self._eval(expr.operand)
        if expr.op == "not":
            return not _scalar(value, expr.operand.pos)
        operand = _scalar(value, expr.operand.pos)
        return -operand if expr.op == "-" else operand

    def _binary(self, expr: ast.Binary) -> Value:
        left = _scalar(self._eval(expr.left), expr.left.pos)
        right = _scalar(self._eval(expr.right), expr.right.pos)
        return binary_value(expr.op, left, right, expr.pos, expr.right.pos)

    def _call(self, expr: ast.Call) -> Value:
        if expr.func in ("uniform", "normal"):
            return self._distribution(expr)
        if expr.func not in PUBLIC:
            raise unknown("function", expr.func, list(PUBLIC) + ["uniform", "normal"], expr.pos)
        arity = PUBLIC[expr.func].arity
        if expr.kwargs or len(expr.args) != arity:
            raise SnnError(f"{expr.func}() takes {arity} argument{'s' if arity > 1 else ''}",
                           expr.pos)
        if expr.func == "if":  # only the chosen branch is evaluated
            cond = _scalar(self._eval(expr.args[0]), expr.args[0].pos)
            return self._eval(expr.args[1] if cond else expr.args[2])
        return call_value(expr.func, [_scalar(self._eval(a), a.pos) for a in expr.args],
                          expr.pos)

    def _distribution(self, expr: ast.Call) -> Value:
        names = ("low", "high") if expr.func == "uniform" else ("mean", "std")
        values = bind_positional(expr, names, {})
        missing = [n for n in names if n not in values]
        if missing:
            raise SnnError(f"{expr.func}() needs {', '.join(names)}", expr.pos,
                           f"write {expr.func}(a, b)")
        a, b = (self.number(values[n]) for n in names)
        if expr.func == "uniform":
            if a > b:
                raise SnnError(f"uniform({a}, {b}) has its bounds reversed", expr.pos)
            return Uniform(float(a), float(b))
        if b < 0:
            raise SnnError(f"normal() needs a standard deviation >= 0, got {b}", expr.pos)
        return Normal(float(a), float(b))


def binary_value(op: str, left: float | bool, right: float | bool, pos: Pos,
                 right_pos: Pos) -> Value:
    """`left op right` for two known numbers (a build-time expression, or a constant part of
    a model that folding computes), or the SnnError that says why it has no value."""
    try:
        result = BINARY[op](left, right)
    except ZeroDivisionError:
        if op == "**":
            raise SnnError("zero to a negative power is undefined", pos) from None
        raise SnnError("division by zero", right_pos) from None
    except (OverflowError, ValueError):
        raise SnnError("this value is out of range", pos) from None
    if isinstance(result, complex):
        raise SnnError("this value is not a real number", pos,
                       "a negative number to a fractional power has no real value")
    return result if isinstance(result, bool) else bounded(result, pos)


def call_value(func: str, args: list[float | bool], pos: Pos) -> Value:
    """A function of the language on known numbers, or the SnnError where it is undefined."""
    try:
        return bounded(FUNCTIONS[func].value(*args), pos)
    except (ValueError, OverflowError, ZeroDivisionError):
        raise SnnError(f"{func}() is undefined for {', '.join(map(_show, args))}",
                       pos) from None


def _show(value: float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}"


def bind_positional(call: ast.Call, names: tuple[str, ...],
                    defaults: Mapping[str, object]) -> dict[str, ast.Expr]:
    """Python-style binding of a call's arguments to parameter names (values unevaluated)."""
    if len(call.args) > len(names):
        raise SnnError(f"{call.func}() takes at most {len(names)} positional argument"
                       f"{'s' if len(names) != 1 else ''}, got {len(call.args)}",
                       call.args[len(names)].pos,
                       f"parameters: {', '.join(names)}" if names else "it takes no parameters")
    bound: dict[str, ast.Expr] = dict(zip(names, call.args, strict=False))
    for kw in call.kwargs:
        if kw.name in bound:
            raise SnnError(f"{call.func}() got '{kw.name}' twice", kw.pos)
        bound[kw.name] = kw.value
    return bound


def _scalar(value: Value, pos: Pos) -> float | bool:
    if isinstance(value, (int, float, bool)):
        return value
    raise SnnError(f"expected a number, got {describe(value)}", pos)


def bounded(value: float | int, pos: Pos) -> float | int:
    """`value`, or an SnnError when it is NaN or beyond ±MAX_MAGNITUDE (inf included)."""
    if isinstance(value, float) and math.isnan(value):
        raise SnnError("this value is not a number (NaN)", pos)
    if abs(value) > MAX_MAGNITUDE:
        raise SnnError(f"number too large: {value:g}", pos,
                       f"values must lie within ±{MAX_MAGNITUDE:g}")
    return value


def describe(value: Value) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value:g})"
    if isinstance(value, Symbol):
        return f"the word '{value.name}'"
    if isinstance(value, (Uniform, Normal)):
        return "a random distribution"
    return f"'{value.kind}'"
