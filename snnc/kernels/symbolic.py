"""A neuron's step as closed-form sympy expressions, and their derivatives.

The fused kernels (issue 4) run the forward over T steps and the backward in
reverse; the backward needs, for each step, the derivatives of the charged
states with respect to the previous states, the input and the learnable
parameters, of the surrogate's argument with respect to the charged states,
and of the reset with respect to the charged states and the spike. They come
from here, derived by sympy from the folded equations (passes.fold), never
written by hand.

Comparisons and logical operators are step functions: their derivative is 0
(the surrogate replaces the derivative of `fire` only).
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from snnc.frontend import ast
from snnc.ir.nodes import Population


class _Flat(sp.Function):
    """A function whose derivative is zero everywhere (a step, a logical operator)."""

    def fdiff(self, argindex=1):
        return sp.S.Zero


def _flat(name: str, arity: int) -> type[sp.Function]:
    return type(name, (_Flat,), {"nargs": arity})


CONDITIONS = {op: _flat(f"cmp_{name}", 2) for op, name in
              ((">=", "ge"), (">", "gt"), ("<=", "le"), ("<", "lt"), ("==", "eq"), ("!=", "ne"))}
LOGIC = {"and": _flat("logic_and", 2), "or": _flat("logic_or", 2), "not": _flat("logic_not", 1)}

_FUNCTIONS = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "tanh": sp.tanh, "abs": sp.Abs,
    "sigmoid": lambda a: 1 / (1 + sp.exp(-a)), "min": sp.Min, "max": sp.Max,
    "clamp": lambda a, lo, hi: sp.Min(sp.Max(a, lo), hi),
    "if": lambda c, a, b: sp.Piecewise((a, sp.Ne(c, 0)), (b, True)),
}
_ARITHMETIC = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
               "/": lambda a, b: a / b, "**": lambda a, b: a ** b}


def to_sympy(expr: ast.Expr, env: dict[str, sp.Expr]) -> sp.Expr:
    """An expression over the names in `env` (folded: no units, no build-time names)."""
    if isinstance(expr, ast.Number):
        return sp.Float(expr.value) if isinstance(expr.value, float) else sp.Integer(expr.value)
    if isinstance(expr, ast.Bool):
        return sp.Integer(int(expr.value))
    if isinstance(expr, ast.Name):
        return env[expr.id]
    if isinstance(expr, ast.Unary):
        operand = to_sympy(expr.operand, env)
        return LOGIC["not"](operand) if expr.op == "not" else (-operand if expr.op == "-"
                                                               else operand)
    if isinstance(expr, ast.Call):
        return _FUNCTIONS[expr.func](*(to_sympy(a, env) for a in expr.args))
    left, right = to_sympy(expr.left, env), to_sympy(expr.right, env)
    if expr.op in CONDITIONS:
        return CONDITIONS[expr.op](left, right)
    if expr.op in LOGIC:
        return LOGIC[expr.op](left, right)
    return _ARITHMETIC[expr.op](left, right)


@dataclass(frozen=True)
class StepMath:
    """One step of a population, as functions of named symbols:

    charged[k](x, prev_*, params)   the state after `charge`
    fire_arg(charged_*, params)     h: spike = Heaviside(h), surrogate'(h) backward
    reset[k](charged_*, spike)      the state after the reset (the step's result)
    """

    states: tuple[str, ...]
    learnable: tuple[str, ...]
    x: sp.Symbol
    spike: sp.Symbol
    prev: dict[str, sp.Symbol]
    charged_symbols: dict[str, sp.Symbol]
    params: dict[str, sp.Symbol]
    charged: dict[str, sp.Expr]
    fire_arg: sp.Expr | None
    reset: dict[str, sp.Expr]

    def charge_jacobian(self) -> dict[tuple[str, str], sp.Expr]:
        """d charged[k] / d v for v in x, the previous states and the learnable params."""
        wrt = {"x": self.x, **{f"prev_{s}": self.prev[s] for s in self.states},
               **{f"param_{p}": self.params[p] for p in self.learnable}}
        return {(k, name): sp.diff(expr, sym) for k, expr in self.charged.items()
                for name, sym in wrt.items()}

    def fire_gradient(self) -> dict[str, sp.Expr]:
        """d h / d charged[k] (and d h / d param)."""
        if self.fire_arg is None:
            return {}
        syms = {**self.charged_symbols, **{f"param_{p}": self.params[p] for p in self.learnable}}
        return {k: sp.diff(self.fire_arg, sym) for k, sym in syms.items()}

    def spike_has_gradient(self) -> bool:
        """Whether any gradient reaches the spike: the fire argument depends on the input or
        a parameter, directly or through states that do (SpikingFlow's clock-driven models
        fire on a comparison kept in a state, which carries none)."""
        if self.fire_arg is None:
            return False
        charge, reset, fire = self.charge_jacobian(), self.reset_jacobian(), self.fire_gradient()
        live = {"x", *(f"param_{p}" for p in self.learnable)}

        def charged_live() -> set[str]:
            return {k for k in self.states if any(charge[(k, name)] != 0 for name in live)}

        while True:  # the states that the input or a parameter reaches, to a fixed point
            charged = charged_live()
            after = {k for k in self.states
                     if k in charged or any(reset[(k, j)] != 0 for j in charged)}
            if {f"prev_{k}" for k in after} <= live:
                break
            live |= {f"prev_{k}" for k in after}
        return any(fire.get(k, 0) != 0 for k in charged_live()) or any(
            fire.get(f"param_{p}", 0) != 0 for p in self.learnable)

    def reset_jacobian(self) -> dict[tuple[str, str], sp.Expr]:
        """d reset[k] / d charged[j] and d reset[k] / d spike."""
        wrt = {**self.charged_symbols, "spike": self.spike}
        return {(k, name): sp.diff(expr, sym) for k, expr in self.reset.items()
                for name, sym in wrt.items()}


def step_math(pop: Population) -> StepMath:
    """The population's folded update in closed form (charge assignments substituted)."""
    eq = pop.equations
    states = tuple(s.name for s in pop.model.states)
    learnable = tuple(pop.learnable)
    x, spike = sp.Symbol("x"), sp.Symbol("spike")
    prev = {s: sp.Symbol(f"prev_{s}") for s in states}
    params = {p: sp.Symbol(f"param_{p}") for p in learnable}
    env: dict[str, sp.Expr] = {"x": x, **prev, **params}
    for assign in eq.charge:
        env[assign.target] = to_sympy(assign.value, env)
    charged = {s: env[s] for s in states}
    charged_symbols = {s: sp.Symbol(f"charged_{s}") for s in states}
    after: dict[str, sp.Expr] = {"x": x, **charged_symbols, **params}
    difference = eq.fire_difference()
    fire_arg = None if difference is None else to_sympy(difference, after)
    for assign in eq.reset:  # applied where fired: new = s * value + (1 - s) * old
        value = to_sympy(assign.value, after)
        after[assign.target] = spike * value + (1 - spike) * after[assign.target]
    reset = {s: after[s] for s in states}
    return StepMath(states, learnable, x, spike, prev, charged_symbols, params, charged,
                    fire_arg, reset)

