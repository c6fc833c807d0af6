"""Expression printers, kept apart from templates: IR expressions -> text, with minimal
parentheses.

`SnnPrinter` writes the .snn syntax back (for `snnc inspect`); `TorchPrinter`
writes PyTorch source for generated step functions. They share the precedence
logic and differ only in how leaves, calls and logical operators look.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from snnc.ir import expr as ex
from snnc.registry import FUNCTIONS

# Binding strength, loosest first; a child that binds more loosely gets parentheses.
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, ">": 4, ">=": 4, "<": 4, "<=": 4, "==": 4,
               "!=": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "**": 8}
ATOM = 9
COMPARISONS = (">", ">=", "<", "<=", "==", "!=")


class SnnPrinter:
    def __call__(self, expr: ex.Expr) -> str:
        return self.print(expr)[0]

    def print(self, expr: ex.Expr) -> tuple[str, int]:
        if isinstance(expr, (ex.Number, ex.Bool)):
            text = self.number(expr.value)
            return text, (_PRECEDENCE["neg"] if text.startswith("-") else ATOM)
        if isinstance(expr, ex.Name):
            return self.name(expr.id), ATOM
        if isinstance(expr, ex.Call):
            return self.call(expr.func, [self(a) for a in expr.args]), ATOM
        if isinstance(expr, ex.Unary):
            return self.unary(expr)
        return self.binary(expr)

    def wrap(self, expr: ex.Expr, minimum: int) -> str:
        text, level = self.print(expr)
        return text if level >= minimum else f"({text})"

    # ---------------------------------------------------------- what differs by target
    def number(self, value: float | int | bool) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        text = repr(float(value)) if isinstance(value, float) else str(value)
        return text.removesuffix(".0")

    def name(self, name: str) -> str:
        return name

    def call(self, func: str, args: list[str]) -> str:
        return f"{func}({', '.join(args)})"

    def unary(self, expr: ex.Unary) -> tuple[str, int]:
        level = _PRECEDENCE["not" if expr.op == "not" else "neg"]
        sep = " " if expr.op == "not" else ""
        return f"{expr.op}{sep}{self.wrap(expr.operand, level + 1)}", level

    def binary(self, expr: ex.Binary) -> tuple[str, int]:
        level = _PRECEDENCE[expr.op]
        # Left-associative, except ** which binds to the right.
        left_min, right_min = (level + 1, level) if expr.op == "**" else (level, level + 1)
        text = f"{self.wrap(expr.left, left_min)} {expr.op} {self.wrap(expr.right, right_min)}"
        return text, level


to_snn = SnnPrinter()


# Generated code never nests an expression deeper than this many operators and calls:
# Python's parser takes at most 200 nested parentheses and clang 256 nested brackets,
# and a printed level opens up to four (C's sigmoid), so deeper parts become temporaries.
SPLIT_DEPTH = 40


def split_deep(expr: ex.Expr, fresh: Callable[[], str], limit: int = SPLIT_DEPTH
               ) -> tuple[list[tuple[str, ex.Expr]], ex.Expr]:
    """`expr` as definitions (name, part) to evaluate first, in order, and what is left of
    it, each nesting at most `limit` operators and calls: a part that reaches `limit`
    becomes a name from `fresh()`. Evaluating the parts first computes the same values in
    the same order (no expression has side effects), so the result is unchanged; an
    expression shallower than `limit`, the common case, comes back as it is."""
    if expr.depth < limit:
        return [], expr
    parts: list[tuple[str, ex.Expr]] = []

    def visit(node: ex.Expr) -> tuple[ex.Expr, int]:
        if node.depth < limit:
            return node, node.depth
        children = [visit(child) for child in ex.children(node)]
        rebuilt = ex.with_children(node, [c for c, _ in children])
        height = 1 + max(h for _, h in children)
        if height < limit or node is expr:
            return rebuilt, height
        name = fresh()
        parts.append((name, rebuilt))
        return ex.Name(name, pos=node.pos), 0

    root, _ = visit(expr)
    return parts, root


class _CodePrinter(SnnPrinter):
    """A printer for generated code: names go through `rename`."""

    def __init__(self, rename: Callable[[str], str] = lambda name: name):
        self.rename = rename

    def name(self, name: str) -> str:
        return self.rename(name)


class TorchPrinter(_CodePrinter):
    """PyTorch source over tensors and floats. Comparisons and logical operators give
    0/1 floats (rt.truth, rt.logical_*) of the dtype of the tensor named `like` (the
    default dtype without it), so every expression is a number and `if(c, a, b)` is
    `rt.where(c, a, b)` with a non-zero c meaning true."""

    def __init__(self, rename: Callable[[str], str] = lambda name: name,
                 like: str | None = None):
        super().__init__(rename)
        self.like = f", {like}" if like else ""

    def number(self, value: float | int | bool) -> str:
        value = float(value)
        if not math.isfinite(value):
            # the folder refuses these; were one to get here, `inf` would read as a name
            return _NON_FINITE_PYTHON[repr(value)]
        return repr(value)

    def call(self, func: str, args: list[str]) -> str:
        return FUNCTIONS[func].torch.format(*args)  # `rt` is snnc.runtime

    def unary(self, expr: ex.Unary) -> tuple[str, int]:
        if expr.op == "not":
            return f"rt.logical_not({self(expr.operand)}{self.like})", ATOM
        return super().unary(expr)

    def binary(self, expr: ex.Binary) -> tuple[str, int]:
        if expr.op in COMPARISONS:
            return f"rt.truth({self(expr.left)} {expr.op} {self(expr.right)}{self.like})", ATOM
        if expr.op in ("and", "or"):
            return (f"rt.logical_{expr.op}({self(expr.left)}, {self(expr.right)}{self.like})",
                    ATOM)
        return super().binary(expr)


# Non-finite numbers as expressions of finite literals (1e309 overflows to inf).
_NON_FINITE_PYTHON = {"inf": "1e309", "-inf": "(-1e309)", "nan": "(1e309 - 1e309)"}
_NON_FINITE_C = {"inf": "((real)INFINITY)", "-inf": "(-(real)INFINITY)", "nan": "((real)NAN)"}

# The kernels' own function: the backward's derivative of the spike (kernels.tape).
SURROGATE_GRAD = "surrogate_grad"
# `a ** c` for the exponents PyTorch computes without pow() (ATen's PowKernel), spelt the
# same way so that the kernels' results are PyTorch's bit for bit (step.h.j2 defines them).
_C_POWERS = {2.0: "snnc_square", 3.0: "snnc_cube", -1.0: "snnc_reciprocal",
             -2.0: "snnc_reciprocal_square", 0.5: "sqrt", -0.5: "snnc_rsqrt"}
_C_CONDITIONS = {">=": "cmp_ge", ">": "cmp_gt", "<=": "cmp_le", "<": "cmp_lt", "==": "cmp_eq",
                 "!=": "cmp_ne"}


class CPrinter(_CodePrinter):
    """C over `real` (float or double), evaluating in the same order as TorchPrinter's
    code so a fused kernel reproduces the reference step bit for bit."""

    def number(self, value: float | int | bool) -> str:
        value = float(value)
        if not math.isfinite(value):
            return _NON_FINITE_C[repr(value)]  # never a bare `inf`, which C reads as a name
        return f"(real){value!r}"

    def call(self, func: str, args: list[str]) -> str:
        if func == SURROGATE_GRAD:
            return f"{SURROGATE_GRAD}({args[0]})"
        return FUNCTIONS[func].c.format(*args)  # tgmath.h makes them type-generic

    def unary(self, expr: ex.Unary) -> tuple[str, int]:
        if expr.op == "not":
            return f"logic_not({self(expr.operand)})", ATOM
        return super().unary(expr)

    def binary(self, expr: ex.Binary) -> tuple[str, int]:
        if expr.op in _C_CONDITIONS:
            return f"{_C_CONDITIONS[expr.op]}({self(expr.left)}, {self(expr.right)})", ATOM
        if expr.op in ("and", "or"):
            return f"logic_{expr.op}({self(expr.left)}, {self(expr.right)})", ATOM
        if expr.op == "**":
            exponent = expr.right.value if isinstance(expr.right, ex.Number) else None
            if exponent in _C_POWERS:
                return f"{_C_POWERS[exponent]}({self(expr.left)})", ATOM
            return f"pow({self(expr.left)}, {self(expr.right)})", ATOM
        return super().binary(expr)


class CudaPrinter(CPrinter):
    """C for CUDA kernels: PyTorch's CUDA division by a Python number multiplies by the
    number's reciprocal (computed in the tensor's type), so the kernel does the same to
    reproduce the reference step bit for bit on the GPU."""

    def binary(self, expr: ex.Binary) -> tuple[str, int]:
        if expr.op == "/" and isinstance(expr.right, ex.Number):
            level = _PRECEDENCE["*"]
            reciprocal = f"((real)1 / {self.number(expr.right.value)})"
            return f"{self.wrap(expr.left, level)} * {reciprocal}", level
        return super().binary(expr)
