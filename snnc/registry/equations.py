"""Writing equations as IR expressions: `E("v + x / tau")`-style helpers would need the
parser, so entries build their expressions from these few constructors instead."""
from __future__ import annotations

from snnc.ir import expr as ex


def n(name: str) -> ex.Name:
    return ex.Name(name)


def c(value: float) -> ex.Number:
    return ex.Number(value)


def call(func: str, *args: ex.Expr) -> ex.Call:
    return ex.Call(func, tuple(args))


def add(a: ex.Expr, b: ex.Expr) -> ex.Binary:
    return ex.Binary("+", a, b)


def sub(a: ex.Expr, b: ex.Expr) -> ex.Binary:
    return ex.Binary("-", a, b)


def mul(*factors: ex.Expr) -> ex.Expr:
    """a * b * c, left to right (as PyTorch evaluates it)."""
    out = factors[0]
    for f in factors[1:]:
        out = ex.Binary("*", out, f)
    return out


def times(a: ex.Expr, b: ex.Expr) -> ex.Expr:
    """a * b, skipping a factor of one (so derivatives built from it stay readable)."""
    if isinstance(b, ex.Number) and b.value == 1:
        return a
    if isinstance(a, ex.Number) and a.value == 1:
        return b
    return ex.Binary("*", a, b)


def where(condition: ex.Expr, a: ex.Expr, b: ex.Expr) -> ex.Call:
    return ex.Call("if", (condition, a, b))


def div(a: ex.Expr, b: ex.Expr) -> ex.Binary:
    return ex.Binary("/", a, b)


def power(a: ex.Expr, b: ex.Expr) -> ex.Binary:
    return ex.Binary("**", a, b)


def cmp(op: str, a: ex.Expr, b: ex.Expr) -> ex.Binary:
    return ex.Binary(op, a, b)


def neg(a: ex.Expr) -> ex.Unary:
    return ex.Unary("-", a)


def let(target: str, value: ex.Expr) -> ex.Assign:
    return ex.Assign(target, value)
