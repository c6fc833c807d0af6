"""Expression printers, kept apart from templates: AST -> text, with minimal parentheses.

`SnnPrinter` writes the .snn syntax back (for `snnc inspect`); `TorchPrinter`
writes PyTorch source for generated step functions. They share the precedence
logic and differ only in how leaves, calls and logical operators look.
"""
from __future__ import annotations

from collections.abc import Callable

from snnc.frontend import ast

# Binding strength, loosest first; a child that binds more loosely gets parentheses.
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, ">": 4, ">=": 4, "<": 4, "<=": 4, "==": 4,
               "!=": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "**": 8}
ATOM = 9
COMPARISONS = (">", ">=", "<", "<=", "==", "!=")


class SnnPrinter:
    def __call__(self, expr: ast.Expr) -> str:
        return self.print(expr)[0]

    def print(self, expr: ast.Expr) -> tuple[str, int]:
        if isinstance(expr, (ast.Number, ast.Bool)):
            text = self.number(expr.value)
            return text, (_PRECEDENCE["neg"] if text.startswith("-") else ATOM)
        if isinstance(expr, ast.Quantity):
            return f"{self.number(expr.value)} {expr.unit}", ATOM
        if isinstance(expr, ast.Name):
            return self.name(expr.id), ATOM
        if isinstance(expr, ast.Call):
            return self.call(expr.func, [self(a) for a in expr.args]), ATOM
        if isinstance(expr, ast.Unary):
            return self.unary(expr)
        return self.binary(expr)

    def wrap(self, expr: ast.Expr, minimum: int) -> str:
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

    def unary(self, expr: ast.Unary) -> tuple[str, int]:
        level = _PRECEDENCE["not" if expr.op == "not" else "neg"]
        sep = " " if expr.op == "not" else ""
        return f"{expr.op}{sep}{self.wrap(expr.operand, level + 1)}", level

    def binary(self, expr: ast.Binary) -> tuple[str, int]:
        level = _PRECEDENCE[expr.op]
        # Left-associative, except ** which binds to the right.
        left_min, right_min = (level + 1, level) if expr.op == "**" else (level, level + 1)
        text = f"{self.wrap(expr.left, left_min)} {expr.op} {self.wrap(expr.right, right_min)}"
        return text, level


to_snn = SnnPrinter()


# How the language's functions read in generated PyTorch code (`rt` is snnc.runtime).
TORCH_FUNCTIONS = {
    "exp": "torch.exp", "log": "torch.log", "sqrt": "torch.sqrt", "tanh": "torch.tanh",
    "sigmoid": "torch.sigmoid", "abs": "torch.abs", "min": "rt.minimum", "max": "rt.maximum",
    "clamp": "rt.clamp", "if": "rt.where",
}


class _CodePrinter(SnnPrinter):
    """A printer for generated code: names go through `rename`."""

    def __init__(self, rename: Callable[[str], str] = lambda name: name):
        self.rename = rename

    def name(self, name: str) -> str:
        return self.rename(name)


class TorchPrinter(_CodePrinter):
    """PyTorch source over tensors and floats. Comparisons and logical operators give
    0/1 floats (rt.truth, rt.logical_*), so every expression is a number and
    `if(c, a, b)` is `rt.where(c, a, b)` with a non-zero c meaning true."""

    def number(self, value: float | int | bool) -> str:
        return repr(float(value))

    def call(self, func: str, args: list[str]) -> str:
        return f"{TORCH_FUNCTIONS[func]}({', '.join(args)})"

    def unary(self, expr: ast.Unary) -> tuple[str, int]:
        if expr.op == "not":
            return f"rt.logical_not({self(expr.operand)})", ATOM
        return super().unary(expr)

    def binary(self, expr: ast.Binary) -> tuple[str, int]:
        if expr.op in COMPARISONS:
            return f"rt.truth({self(expr.left)} {expr.op} {self(expr.right)})", ATOM
        if expr.op in ("and", "or"):
            return f"rt.logical_{expr.op}({self(expr.left)}, {self(expr.right)})", ATOM
        return super().binary(expr)


# How the language's functions read in generated C (tgmath.h makes them type-generic).
C_FUNCTIONS = {"exp": "exp", "log": "log", "sqrt": "sqrt", "tanh": "tanh", "abs": "fabs",
               "min": "fmin", "max": "fmax"}
_C_CONDITIONS = {">=": "cmp_ge", ">": "cmp_gt", "<=": "cmp_le", "<": "cmp_lt", "==": "cmp_eq",
                 "!=": "cmp_ne"}


class CPrinter(_CodePrinter):
    """C over `real` (float or double), evaluating in the same order as TorchPrinter's
    code so a fused kernel reproduces the reference step bit for bit."""

    def number(self, value: float | int | bool) -> str:
        return f"(real){float(value)!r}"

    def call(self, func: str, args: list[str]) -> str:
        if func == "sigmoid":
            return f"((real)1 / ((real)1 + exp(-({args[0]}))))"
        if func == "clamp":
            return f"fmin(fmax({args[0]}, {args[1]}), {args[2]})"
        if func == "if":
            return f"(({args[0]}) != 0 ? ({args[1]}) : ({args[2]}))"
        return f"{C_FUNCTIONS[func]}({', '.join(args)})"

    def unary(self, expr: ast.Unary) -> tuple[str, int]:
        if expr.op == "not":
            return f"logic_not({self(expr.operand)})", ATOM
        return super().unary(expr)

    def binary(self, expr: ast.Binary) -> tuple[str, int]:
        if expr.op in _C_CONDITIONS:
            return f"{_C_CONDITIONS[expr.op]}({self(expr.left)}, {self(expr.right)})", ATOM
        if expr.op in ("and", "or"):
            return f"logic_{expr.op}({self(expr.left)}, {self(expr.right)})", ATOM
        if expr.op == "**":
            return f"pow({self(expr.left)}, {self(expr.right)})", ATOM
        return super().binary(expr)


class CudaPrinter(CPrinter):
    """C for CUDA kernels: PyTorch's CUDA division by a Python number multiplies by the
    number's reciprocal (computed in the tensor's type), so the kernel does the same to
    reproduce the reference step bit for bit on the GPU."""

    def binary(self, expr: ast.Binary) -> tuple[str, int]:
        if expr.op == "/" and isinstance(expr.right, ast.Number):
            level = _PRECEDENCE["*"]
            reciprocal = f"((real)1 / {self.number(expr.right.value)})"
            return f"{self.wrap(expr.left, level)} * {reciprocal}", level
        return super().binary(expr)
