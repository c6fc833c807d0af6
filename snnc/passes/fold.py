"""Constant folding: each population's update with its build-time parameters substituted.

`LIF(decay_input = false)` folds its `if` away and `v_reset = 0` turns
`v - (v - v_rest) / tau` into `v - v / tau`, so each parameter set compiles to
its own specialised step function. Learnable parameters, states, `x` and `t`
stay symbolic.

A constant part must have a value: `exp(1000)`, `log(-1)`, `(-8) ** (1/3)`, `1 / 0`
and a division by a part that folds to zero (`x / (a - a)`) are errors at their
position, as they are in build-time expressions (check.values), and a constant beyond
±MAX_MAGNITUDE is refused like a literal would be. So no folded equation holds an
infinity or a NaN, and every constant in generated code is a finite number.
"""
from __future__ import annotations

import dataclasses

import networkx as nx

from snnc.check.values import binary_value, bounded, call_value
from snnc.errors import SnnError
from snnc.ir import expr as ex
from snnc.ir.nodes import Equations, Population
from snnc.ir.values import Value
from snnc.registry import FUNCTIONS

Literal = ex.LITERALS


def fold_constants(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of `graph` whose populations carry folded `equations`."""
    folded = graph.copy()
    dt_ms = graph.graph["dt_ms"]
    for _, data in folded.nodes(data=True):
        if data["kind"] == "population":
            pop: Population = data["node"]
            data["node"] = dataclasses.replace(pop, equations=equations_of(pop, dt_ms))
    return folded


def equations_of(pop: Population, dt_ms: float) -> Equations:
    env: dict[str, Value] = {**pop.params, "dt": dt_ms}
    model = pop.model

    def f(expr: ex.Expr | None) -> ex.Expr | None:
        return None if expr is None else fold(expr, env)

    charge = tuple(ex.Assign(a.target, f(a.value), pos=a.pos) for a in model.charge)
    reset = tuple(ex.Assign(a.target, f(a.value), pos=a.pos) for a in _reset_assigns(pop))
    return Equations(charge, f(model.fire), reset, f(model.kernel))


def _reset_assigns(pop: Population) -> tuple[ex.Assign, ...]:
    """`reset hard|soft` spelt out as assignments to the fired state."""
    if pop.reset == "block":
        return pop.model.reset
    if pop.reset == "none":
        return ()
    state, threshold = pop.model.threshold
    pos = pop.pos
    if pop.reset == "hard":
        return (ex.Assign(state, ex.Name("v_reset", pos=pos), pos=pos),)
    return (ex.Assign(state, ex.Binary("-", ex.Name(state, pos=pos), threshold, pos=pos),
                       pos=pos),)


def fold(expr: ex.Expr, env: dict[str, Value]) -> ex.Expr:
    """`expr` with names from `env` substituted and constant parts computed."""
    if isinstance(expr, ex.Name):
        return _literal(env[expr.id], expr.pos) if expr.id in env else expr
    if isinstance(expr, ex.Unary):
        return _unary(expr.op, fold(expr.operand, env), expr.pos)
    if isinstance(expr, ex.Binary):
        return _binary(expr.op, fold(expr.left, env), fold(expr.right, env), expr.pos)
    if isinstance(expr, ex.Call):
        if expr.func == "if":
            # a known condition chooses a branch, and only that one is folded (as
            # check.values evaluates only the chosen branch)
            condition = fold(expr.args[0], env)
            if isinstance(condition, Literal):
                return fold(expr.args[1 if _value(condition) else 2], env)
            return ex.Call("if", (condition, *(fold(a, env) for a in expr.args[1:])),
                           pos=expr.pos)
        return _call(expr.func, [fold(a, env) for a in expr.args], expr.pos)
    return expr


def _literal(value: Value, pos) -> ex.Expr:
    if isinstance(value, bool):
        return ex.Bool(value, pos=pos)
    return ex.Number(bounded(value, pos), pos=pos)


def _value(expr: ex.Expr) -> float | bool:
    return expr.value  # type: ignore[union-attr]


def _unary(op: str, operand: ex.Expr, pos) -> ex.Expr:
    if isinstance(operand, Literal):
        v = _value(operand)
        return _literal(not v if op == "not" else (-v if op == "-" else +v), pos)
    return operand if op == "+" else ex.Unary(op, operand, pos=pos)


def _is(expr: ex.Expr, number: float) -> bool:
    return isinstance(expr, ex.Number) and expr.value == number


def _binary(op: str, left: ex.Expr, right: ex.Expr, pos) -> ex.Expr:
    if isinstance(left, Literal) and isinstance(right, Literal):
        return _literal(binary_value(op, _value(left), _value(right), pos, right.pos), pos)
    if op == "/" and isinstance(right, Literal) and _value(right) == 0:
        raise SnnError("division by zero", right.pos,
                       "this divisor is zero for every neuron and step")
    # Identities that hold for every finite value of the other side.
    if (op == "+" and _is(left, 0)) or (op == "*" and _is(left, 1)):
        return right
    if (op in ("+", "-") and _is(right, 0)) or (op in ("*", "/", "**") and _is(right, 1)):
        return left
    if op == "-" and _is(left, 0):
        return ex.Unary("-", right, pos=pos)
    if op in ("+", "-") and isinstance(right, ex.Number) and right.value < 0:
        # `v - -1` reads better as `v + 1`
        flipped = "-" if op == "+" else "+"
        return ex.Binary(flipped, left, ex.Number(-right.value, pos=right.pos), pos=pos)
    if op == "*" and (_is(left, 0) or _is(right, 0)):
        return ex.Number(0, pos=pos)
    return ex.Binary(op, left, right, pos=pos)


def _call(func: str, args: list[ex.Expr], pos) -> ex.Expr:
    if func in FUNCTIONS and all(isinstance(a, Literal) for a in args):
        return _literal(call_value(func, [_value(a) for a in args], pos), pos)
    return ex.Call(func, tuple(args), pos=pos)
