"""A neuron's step as a tape of single operations, and the tape run in reverse.

The fused kernels' backward needs the derivatives of one step. Substituting each charge
assignment into the next and differentiating the closed form grows exponentially (14
lines of `v = v * v + v` make 2^14 terms); here every operation of the folded equations
is one entry of a tape instead, reading only inputs, earlier entries and numbers, so
`v = v * v + v` fourteen times is 28 entries. Reverse-mode differentiation then walks
the tape backwards, adding each entry's local derivatives, times the gradient reaching
it (its adjoint), to its operands' adjoints: the chain rule, a few statements per entry.
Size and time are linear in the equations, and no expression nests deeper than one
operation, however deep the source's.

The local derivatives are PyTorch's (its tools/autograd/derivatives.yaml), so that the
kernels' gradients are what autograd gives for the reference step (backends.steps), at
the edges too: min and max split a tie in half, abs has derivative sign (0 at 0), pow
has PyTorch's special cases at a zero exponent and a zero base, and exp, sqrt, tanh and
sigmoid read their own result. Comparisons and logical operators are steps (no
derivative), and `if` passes the gradient to the branch it took, none to its condition.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from snnc.backends.steps import reset_form
from snnc.ir import expr as ex
from snnc.ir.nodes import Equations
from snnc.registry import FUNCTIONS
from snnc.registry.equations import cmp as _cmp
from snnc.registry.equations import neg as _neg
from snnc.registry.equations import times as _mul
from snnc.registry.equations import where as _where

# Entries that only the tape makes: the spike, Heaviside(h), whose derivative is the
# surrogate's, and `fired`, the spike as the reset reads it (detached where
# detach_reset: its gradient is scaled by `reset_on`, 0 or 1).
HEAVISIDE, FIRED = "heaviside", "fired"
SURROGATE_GRAD, RESET_ON = "surrogate_grad", "reset_on"

_ARITHMETIC = frozenset({"+", "-", "*", "/", "**"})
# The arguments each function passes a gradient to (`if`: not its condition).


def _n(value: float) -> ex.Number:
    return ex.Number(value)


@dataclass
class Tape:
    """Entries `name = expr`, each expr one operation over ex.Name (an input or an
    earlier entry) and ex.Number; equal operations share one entry."""

    prefix: str = "t"
    entries: list[tuple[str, ex.Expr]] = field(default_factory=list)
    _known: dict[tuple, ex.Name] = field(default_factory=dict)

    def push(self, expr: ex.Expr) -> ex.Name:
        key = _key(expr)
        known = self._known.get(key)
        if known is None:
            known = ex.Name(f"{self.prefix}{len(self.entries)}")
            self.entries.append((known.id, expr))
            self._known[key] = known
        return known

    def lower(self, expr: ex.Expr, env: Mapping[str, ex.Expr]) -> ex.Expr:
        """`expr` (folded) as entries; returns what holds its value: an entry, one of the
        values in `env` (what each name of the model holds), or a number."""
        if isinstance(expr, ex.Bool):
            return _n(float(expr.value))
        if isinstance(expr, ex.Number):
            return _n(expr.value)
        if isinstance(expr, ex.Name):
            return env[expr.id]
        if isinstance(expr, ex.Unary):
            operand = self.lower(expr.operand, env)
            return operand if expr.op == "+" else self.push(ex.Unary(expr.op, operand))
        if isinstance(expr, ex.Binary):
            return self.push(ex.Binary(expr.op, self.lower(expr.left, env),
                                        self.lower(expr.right, env)))
        args = tuple(self.lower(a, env) for a in expr.args)
        if expr.func == "clamp":  # as rt.clamp computes it
            return self.push(ex.Call("min", (self.push(ex.Call("max", args[:2])), args[2])))
        return self.push(ex.Call(expr.func, args))

    def live(self, sources: Iterable[str]) -> set[str]:
        """The sources and the entries that a gradient can reach from them."""
        live = set(sources)
        for name, expr in self.entries:
            if any(isinstance(o, ex.Name) and o.id in live for o in _differentiable(expr)):
                live.add(name)
        return live

    def needed(self, outputs: Iterable[str]) -> set[str]:
        """The outputs and every input and entry whose value they depend on
        differentiably: what autograd visits on its way back from them."""
        needed = set(outputs)
        for name, expr in reversed(self.entries):
            if name in needed:
                needed.update(o.id for o in _differentiable(expr) if isinstance(o, ex.Name))
        return needed

    def reverse(self, seeds: Mapping[str, list[ex.Expr]], wrt: Iterable[str],
                live: set[str], weak: set[str] = frozenset()
                ) -> tuple[list[tuple[str, ex.Expr, bool]], dict[str, ex.Expr]]:
        """The adjoints, given those of some values (`seeds`: name -> terms of its
        adjoint): statements (name, expr, accumulate) in order, `accumulate` meaning
        `name += expr`, and the adjoint of each of `wrt` (an input of the tape) as an
        expression, 0 where no gradient reaches it. Only values in `live` get adjoints.
        Terms are added one statement each, so a value read a thousand times costs a
        thousand small statements, not one expression nested a thousand deep.

        An entry in `weak` passes nothing on while its adjoint is 0: autograd never
        visits a value that no gradient reaches, where the tape would multiply that 0 by
        an infinite derivative and make a NaN (see kernels.context)."""
        terms: dict[str, list[ex.Expr]] = {k: list(v) for k, v in seeds.items() if k in live}
        statements: list[tuple[str, ex.Expr, bool]] = []

        def adjoint(name: str) -> ex.Expr | None:
            pending = terms.pop(name, [])
            if not pending:
                return None
            target = f"d_{name}"
            statements.append((target, pending[0], False))
            statements.extend((target, term, True) for term in pending[1:])
            return ex.Name(target)

        for name, expr in reversed(self.entries):
            if name not in live:
                continue
            d = adjoint(name)
            if d is None:
                continue
            for operand, term in _partials(expr, ex.Name(name), d):
                if isinstance(operand, ex.Name) and operand.id in live:
                    terms.setdefault(operand.id, []).append(
                        _where(d, term, _n(0)) if name in weak else term)
        return statements, {name: adjoint(name) or _n(0) for name in wrt}


def _key(expr: ex.Expr) -> tuple:
    """What makes two entries the same operation: numbers by their exact float (0.0 and
    -0.0 are equal in Python, not in what they do)."""
    def operand(o: ex.Expr) -> tuple:
        return ("name", o.id) if isinstance(o, ex.Name) else ("number", repr(float(o.value)))

    if isinstance(expr, ex.Unary):
        return ("unary", expr.op, operand(expr.operand))
    if isinstance(expr, ex.Binary):
        return ("binary", expr.op, operand(expr.left), operand(expr.right))
    return ("call", expr.func, *(operand(a) for a in expr.args))


def _differentiable(expr: ex.Expr) -> tuple[ex.Expr, ...]:
    """The operands of one entry that its value depends on differentiably."""
    if isinstance(expr, ex.Unary):
        return (expr.operand,) if expr.op == "-" else ()
    if isinstance(expr, ex.Binary):
        return (expr.left, expr.right) if expr.op in _ARITHMETIC else ()
    if isinstance(expr, ex.Call):
        own = (0,) if expr.func in (HEAVISIDE, FIRED) else FUNCTIONS[expr.func].differentiable
        return tuple(expr.args[i] for i in own)
    return ()


# ------------------------------------------------------------------ local derivatives
def _partials(expr: ex.Expr, out: ex.Name, d: ex.Expr) -> list[tuple[ex.Expr, ex.Expr]]:
    """(operand, the adjoint `d` of `out = expr` times d out / d operand) for each operand
    a gradient reaches, in PyTorch's formulas."""
    if isinstance(expr, ex.Unary):
        return [(expr.operand, _neg(d))] if expr.op == "-" else []
    if isinstance(expr, ex.Binary):
        return _binary_partials(expr.op, expr.left, expr.right, out, d)
    return _call_partials(expr.func, expr.args, out, d)


def _binary_partials(op, a, b, out, d) -> list[tuple[ex.Expr, ex.Expr]]:
    if op == "+":
        return [(a, d), (b, d)]
    if op == "-":
        return [(a, d), (b, _neg(d))]
    if op == "*":
        return [(a, _mul(d, b)), (b, _mul(d, a))]
    if op == "/":  # other: -grad * ((self / other) / other)
        return [(a, ex.Binary("/", d, b)), (b, _mul(_neg(d), ex.Binary("/", out, b)))]
    if op == "**":
        return [(a, _mul(d, _pow_base(a, b))), (b, _mul(d, _pow_exponent(a, b, out)))]
    return []  # comparisons and logical operators: steps


def _pow_base(a: ex.Expr, b: ex.Expr) -> ex.Expr:
    """d a^b / d a: b * a^(b - 1), and 0 where b is 0 (PyTorch's pow_backward_self)."""
    if isinstance(b, ex.Number):
        if b.value == 0:
            return _n(0)
        lower = a if b.value - 1 == 1 else ex.Binary("**", a, _n(b.value - 1))
        return _mul(b, lower)
    return _where(_cmp("==", b, _n(0)), _n(0),
                  _mul(b, ex.Binary("**", a, ex.Binary("-", b, _n(1)))))


def _pow_exponent(a: ex.Expr, b: ex.Expr, out: ex.Name) -> ex.Expr:
    """d a^b / d b: a^b * log(a), and 0 where a is 0 and b >= 0 (pow_backward_exponent)."""
    value = _mul(out, ex.Call("log", (a,)))
    at_zero = ex.Binary("and", _cmp("==", a, _n(0)), _cmp(">=", b, _n(0)))
    return _where(at_zero, _n(0), value)


def _call_partials(func, args, out, d) -> list[tuple[ex.Expr, ex.Expr]]:
    """The language's functions by their registry entries; the tape's own two here."""
    if func == HEAVISIDE:
        return [(args[0], _mul(d, ex.Call(SURROGATE_GRAD, (args[0],))))]
    if func == FIRED:  # a select, not a product: detached, not even a NaN gets through
        return [(args[0], _where(ex.Name(RESET_ON), d, _n(0)))]
    return FUNCTIONS[func].partials(args, out, d)


# ------------------------------------------------------------------ a population's step
@dataclass
class StepTape:
    """One step on a tape: x, the states before it and the learnable parameters in;
    charged states, the fire argument h, the spike and the states after it out."""

    tape: Tape
    states: tuple[str, ...]
    learnable: tuple[str, ...]
    inputs: dict[str, ex.Name]        # model name ("x", a state, a param) -> tape input
    charged: dict[str, ex.Expr]       # state -> its value after `charge`
    h: ex.Expr | None                 # spike = Heaviside(h); None: fire is no comparison
    spike: ex.Expr | None
    after: dict[str, ex.Expr]         # state -> its value after the reset

    def gradient_sources(self) -> set[str]:
        """The inputs whose gradient the step reports: x, the states, the parameters."""
        return {name.id for name in self.inputs.values()}

    def reaches(self, origins: Iterable[str] | None = None) -> tuple[bool, bool]:
        """Whether a gradient from `origins` (x and learnable parameters, by model name;
        default: all of them) reaches (the spikes, any output) over any number of steps: a
        state is reached when its value after a step depends on an origin or a reached
        state, to a fixed point. This is what makes the reference step's outputs require
        grad in PyTorch."""
        names = ("x", *self.learnable) if origins is None else origins
        sources = {self.inputs[name].id for name in names}
        while True:
            live = self.tape.live(sources)
            reached = {s for s, value in self.after.items() if _in(value, live)}
            grown = sources | {self.inputs[s].id for s in reached}
            if grown == sources:
                return _in(self.h, live), bool(reached) or _in(self.h, live)
            sources = grown

    def reach_masks(self) -> tuple[int, int]:
        """reaches() of each origin alone, as bit masks (bit 0: x, bit 1 + i: the i-th
        learnable parameter) over (the spikes, any output): the runtime asks which of
        the tensors that require grad reach an output, as autograd would."""
        origins = ("x", *self.learnable)
        spike = outputs = 0
        for bit, origin in enumerate(origins):
            to_spike, to_any = self.reaches((origin,))
            spike |= int(to_spike) << bit
            outputs |= int(to_any) << bit
        return spike, outputs


def _in(value: ex.Expr | None, live: set[str]) -> bool:
    return isinstance(value, ex.Name) and value.id in live


def step_tape(eq: Equations, states: Iterable[str], learnable: Iterable[str],
              names: Mapping[str, str]) -> StepTape:
    """The whole step on one tape; `names` spells its inputs (model name -> tape name)."""
    tape = Tape()
    states, learnable = tuple(states), tuple(learnable)
    inputs = {name: ex.Name(names[name]) for name in ("x", *states, *learnable)}
    env: dict[str, ex.Expr] = dict(inputs)
    charge(tape, eq, env)
    charged = {s: env[s] for s in states}
    h = fire_argument(tape, eq, env)
    spike = tape.push(ex.Call(HEAVISIDE, (h,))) if h is not None else None
    if spike is not None:
        reset(tape, eq, env, tape.push(ex.Call(FIRED, (spike,))))
    return StepTape(tape, states, learnable, inputs, charged, h, spike,
                    {s: env[s] for s in states})


def charge(tape: Tape, eq: Equations, env: dict[str, ex.Expr]) -> None:
    """The charge assignments, in order: `env` then holds each state's charged value."""
    for assign in eq.charge:
        env[assign.target] = tape.lower(assign.value, env)


def fire_argument(tape: Tape, eq: Equations, env: Mapping[str, ex.Expr]) -> ex.Expr | None:
    difference = eq.fire_difference()
    return None if difference is None else tape.lower(difference, env)


def reset(tape: Tape, eq: Equations, env: dict[str, ex.Expr], fired: ex.Expr) -> None:
    """The reset assignments where fired, in the forms every target prints (reset_form):
    `state * (1 - fired)`, `state - fired * c`, `state * (1 - fired) + value * fired`."""
    for assign in eq.reset:
        form, value = reset_form(assign)
        state = env[assign.target]
        if form == "subtract":
            env[assign.target] = tape.push(ex.Binary(
                "-", state, tape.push(ex.Binary("*", fired, tape.lower(value, env)))))
            continue
        kept = tape.push(ex.Binary("*", state, tape.push(ex.Binary("-", _n(1.0), fired))))
        if form == "zero":
            env[assign.target] = kept
            continue
        new = tape.push(ex.Binary("*", tape.lower(value, env), fired))
        env[assign.target] = tape.push(ex.Binary("+", kept, new))


def value_of(expr: ex.Expr) -> ex.Expr:
    """An entry's value as an expression the printers know (the tape's own entries)."""
    if isinstance(expr, ex.Call) and expr.func == HEAVISIDE:
        return ex.Binary(">=", expr.args[0], _n(0))
    if isinstance(expr, ex.Call) and expr.func == FIRED:
        return expr.args[0]
    return expr
