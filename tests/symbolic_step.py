"""A neuron's step and its derivatives as sympy expressions: the tests' closed-form view.

The fused kernels differentiate the step on its tape (kernels.tape), one operation at a
time, with PyTorch's local derivatives. This module shows the same derivatives in
closed form: each Jacobian entry is the tape run in reverse from one output, its
statements evaluated in sympy. tests/test_symbolic.py checks them against autograd on
the reference step. Closed forms can grow exponentially with the number of charge
assignments, so nothing that builds a module computes them.

Comparisons and logical operators are step functions (their derivative is 0; the
surrogate replaces the derivative of `fire` only); they appear here as the flat
functions cmp_* and logic_*, which the kernels' C defines as macros.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from snnc.ir import expr as ex
from snnc.ir.nodes import Population
from snnc.kernels import tape as tapes


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


def to_sympy(expr: ex.Expr, env: dict[str, sp.Expr]) -> sp.Expr:
    """An expression over the names in `env` (folded: no units, no build-time names)."""
    if isinstance(expr, ex.Number):
        return sp.Float(expr.value) if isinstance(expr.value, float) else sp.Integer(expr.value)
    if isinstance(expr, ex.Bool):
        return sp.Integer(int(expr.value))
    if isinstance(expr, ex.Name):
        return env[expr.id]
    if isinstance(expr, ex.Unary):
        operand = to_sympy(expr.operand, env)
        return LOGIC["not"](operand) if expr.op == "not" else (-operand if expr.op == "-"
                                                               else operand)
    if isinstance(expr, ex.Call):
        return _FUNCTIONS[expr.func](*(to_sympy(a, env) for a in expr.args))
    left, right = to_sympy(expr.left, env), to_sympy(expr.right, env)
    if expr.op in CONDITIONS:
        return CONDITIONS[expr.op](left, right)
    if expr.op in LOGIC:
        return LOGIC[expr.op](left, right)
    return _ARITHMETIC[expr.op](left, right)


@dataclass(frozen=True)
class _Part:
    """One part of the step on a tape of its own, with sympy symbols for its inputs."""

    tape: tapes.Tape
    inputs: dict[str, sp.Symbol]    # tape input name -> symbol
    labels: dict[str, str]          # tape input name -> its key in a Jacobian
    outputs: dict[str, ex.Expr]    # output -> what holds its value on the tape

    def values(self) -> dict[str, sp.Expr]:
        """Every input's and entry's value in closed form."""
        env: dict[str, sp.Expr] = dict(self.inputs)
        for name, expr in self.tape.entries:
            env[name] = to_sympy(expr, env)
        return env

    def value(self, output: str) -> sp.Expr:
        return to_sympy(self.outputs[output], self.values())

    def jacobian(self, output: str) -> dict[str, sp.Expr]:
        """d output / d input for every input: the tape's reverse statements, in sympy."""
        held = self.outputs[output]
        if not isinstance(held, ex.Name):  # a constant
            return {self.labels[name]: sp.S.Zero for name in self.inputs}
        env = self.values()
        live = self.tape.live(self.inputs)
        statements, results = self.tape.reverse({held.id: [ex.Number(1)]}, self.inputs, live)
        for target, expr, accumulate in statements:
            value = to_sympy(expr, env)
            env[target] = env[target] + value if accumulate else value
        return {self.labels[name]: to_sympy(result, env) for name, result in results.items()}


@dataclass(frozen=True)
class StepMath:
    """One step of a population, as functions of named symbols:

    charged[k](x, prev_*, params)   the state after `charge`
    fire_arg(charged_*, params, x)  h: spike = Heaviside(h), surrogate'(h) backward
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
    _charge: _Part
    _fire: _Part
    _reset: _Part
    _step: tapes.StepTape

    def charge_jacobian(self) -> dict[tuple[str, str], sp.Expr]:
        """d charged[k] / d v for v in x, the previous states and the learnable params."""
        return {(k, name): d for k in self.states
                for name, d in self._charge.jacobian(k).items()}

    def fire_gradient(self) -> dict[str, sp.Expr]:
        """d h / d charged[k] and d h / d param (and d h / d x where fire reads x)."""
        if self.fire_arg is None:
            return {}
        gradient = self._fire.jacobian("h")
        if self.x not in self.fire_arg.free_symbols:
            gradient.pop("x")
        return gradient

    def spike_has_gradient(self) -> bool:
        """Whether any gradient reaches the spike: the fire argument depends on the input or
        a parameter, directly or through states that do (SpikingFlow's clock-driven models
        fire on a comparison kept in a state, which carries none)."""
        return self._step.reaches()[0]

    def reset_jacobian(self) -> dict[tuple[str, str], sp.Expr]:
        """d reset[k] / d charged[j] and d reset[k] / d spike."""
        return {(k, name): d for k in self.states
                for name, d in self._reset.jacobian(k).items() if name != "x"
                and not name.startswith("param_")}


def step_math(pop: Population) -> StepMath:
    """The population's folded update on tapes, with closed forms in sympy."""
    eq = pop.equations
    states = pop.model.states
    learnable = tuple(pop.learnable)
    x, spike = sp.Symbol("x"), sp.Symbol("spike")
    prev = {s: sp.Symbol(f"prev_{s}") for s in states}
    params = {p: sp.Symbol(f"param_{p}") for p in learnable}
    charged_symbols = {s: sp.Symbol(f"charged_{s}") for s in states}
    param_inputs = {f"param_{p}": params[p] for p in learnable}

    def part(before: dict[str, sp.Symbol], lower, by_symbol: bool) -> _Part:
        """A tape whose inputs are x, the params and `before` (model name -> symbol), the
        latter keyed in Jacobians by their symbol's name or by their model name."""
        tape = tapes.Tape()
        inputs = {"x": x, **param_inputs, **{str(v): v for v in before.values()}}
        labels = {name: name for name in inputs} | {
            str(v): str(v) if by_symbol else name for name, v in before.items()}
        env = {"x": ex.Name("x"), **{p: ex.Name(f"param_{p}") for p in learnable},
               **{name: ex.Name(str(v)) for name, v in before.items()}}
        return _Part(tape, inputs, labels, lower(tape, env))

    def charge(tape, env):
        tapes.charge(tape, eq, env)
        return {s: env[s] for s in states}

    def fire(tape, env):
        h = tapes.fire_argument(tape, eq, env)
        return {} if h is None else {"h": h}

    def reset(tape, env):
        tapes.reset(tape, eq, env, ex.Name("spike"))
        return {s: env[s] for s in states}

    charge_part = part(prev, charge, by_symbol=True)
    fire_part = part(charged_symbols, fire, by_symbol=False)
    reset_part = part({**charged_symbols, "spike": spike}, reset, by_symbol=False)
    names = {"x": "x", **{s: f"prev_{s}" for s in states},
             **{p: f"param_{p}" for p in learnable}}
    return StepMath(states, learnable, x, spike, prev, charged_symbols, params,
                    {s: charge_part.value(s) for s in states},
                    fire_part.value("h") if "h" in fire_part.outputs else None,
                    {s: reset_part.value(s) for s in states},
                    charge_part, fire_part, reset_part,
                    tapes.step_tape(eq, states, learnable, names))
