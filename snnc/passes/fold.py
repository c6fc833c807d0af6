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

from snnc.check.neurons import fire_parts
from snnc.check.values import (
    FUNCTIONS,
    Value,
    binary_value,
    bounded,
    call_value,
    quantity_value,
)
from snnc.errors import SnnError
from snnc.frontend import ast
from snnc.ir.nodes import Equations, Population

Literal = (ast.Number, ast.Bool)


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

    def f(expr: ast.Expr | None) -> ast.Expr | None:
        return None if expr is None else fold(expr, env, dt_ms)

    charge = tuple(ast.Assign(a.target, f(a.value), pos=a.pos) for a in model.charge or ())
    reset = tuple(ast.Assign(a.target, f(a.value), pos=a.pos) for a in _reset_assigns(pop))
    return Equations(charge, f(model.fire), reset, f(model.kernel))


def _reset_assigns(pop: Population) -> tuple[ast.Assign, ...]:
    """`reset hard|soft` spelt out as assignments to the fired state."""
    if pop.reset == "block":
        return pop.model.reset.assigns
    if pop.reset == "none":
        return ()
    state, threshold = fire_parts(pop.model)
    pos = pop.model.reset.pos if pop.model.reset else pop.pos
    if pop.reset == "hard":
        return (ast.Assign(state, ast.Name("v_reset", pos=pos), pos=pos),)
    return (ast.Assign(state, ast.Binary("-", ast.Name(state, pos=pos), threshold, pos=pos),
                       pos=pos),)


def fold(expr: ast.Expr, env: dict[str, Value], dt_ms: float) -> ast.Expr:
    """`expr` with names from `env` substituted and constant parts computed."""
    if isinstance(expr, ast.Name):
        return _literal(env[expr.id], expr.pos) if expr.id in env else expr
    if isinstance(expr, ast.Quantity):
        return ast.Number(bounded(quantity_value(expr, dt_ms), expr.pos), pos=expr.pos)
    if isinstance(expr, ast.Unary):
        return _unary(expr.op, fold(expr.operand, env, dt_ms), expr.pos)
    if isinstance(expr, ast.Binary):
        return _binary(expr.op, fold(expr.left, env, dt_ms), fold(expr.right, env, dt_ms),
                       expr.pos)
    if isinstance(expr, ast.Call):
        if expr.func == "if":
            # a known condition chooses a branch, and only that one is folded (as
            # check.values evaluates only the chosen branch)
            condition = fold(expr.args[0], env, dt_ms)
            if isinstance(condition, Literal):
                return fold(expr.args[1 if _value(condition) else 2], env, dt_ms)
            return ast.Call("if", (condition, *(fold(a, env, dt_ms) for a in expr.args[1:])),
                            pos=expr.pos)
        return _call(expr.func, [fold(a, env, dt_ms) for a in expr.args], expr.pos)
    return expr


def _literal(value: Value, pos) -> ast.Expr:
    if isinstance(value, bool):
        return ast.Bool(value, pos=pos)
    return ast.Number(bounded(value, pos), pos=pos)


def _value(expr: ast.Expr) -> float | bool:
    return expr.value  # type: ignore[union-attr]


def _unary(op: str, operand: ast.Expr, pos) -> ast.Expr:
    if isinstance(operand, Literal):
        v = _value(operand)
        return _literal(not v if op == "not" else (-v if op == "-" else +v), pos)
    return operand if op == "+" else ast.Unary(op, operand, pos=pos)


def _is(expr: ast.Expr, number: float) -> bool:
    return isinstance(expr, ast.Number) and expr.value == number


def _binary(op: str, left: ast.Expr, right: ast.Expr, pos) -> ast.Expr:
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
        return ast.Unary("-", right, pos=pos)
    if op in ("+", "-") and isinstance(right, ast.Number) and right.value < 0:
        # `v - -1` reads better as `v + 1`
        flipped = "-" if op == "+" else "+"
        return ast.Binary(flipped, left, ast.Number(-right.value, pos=right.pos), pos=pos)
    if op == "*" and (_is(left, 0) or _is(right, 0)):
        return ast.Number(0, pos=pos)
    return ast.Binary(op, left, right, pos=pos)


def _call(func: str, args: list[ast.Expr], pos) -> ast.Expr:
    if func in FUNCTIONS and all(isinstance(a, Literal) for a in args):
        return _literal(call_value(func, [_value(a) for a in args], pos), pos)
    return ast.Call(func, tuple(args), pos=pos)
