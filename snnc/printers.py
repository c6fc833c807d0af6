"""Expression printers, kept apart from templates: AST -> text in .snn syntax."""
from __future__ import annotations

from snnc.frontend import ast

# Binding strength, loosest first; a child that binds more loosely gets parentheses.
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, ">": 4, ">=": 4, "<": 4, "<=": 4, "==": 4,
               "!=": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "**": 8}


def to_snn(expr: ast.Expr) -> str:
    """An expression as it would be written in a .snn file."""
    return _print(expr)[0]


def _number(value: float | int) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    text = repr(float(value)) if isinstance(value, float) else str(value)
    return text.removesuffix(".0") if text.endswith(".0") else text


def _print(expr: ast.Expr) -> tuple[str, int]:
    if isinstance(expr, ast.Number):
        text = _number(expr.value)
        return text, (_PRECEDENCE["neg"] if text.startswith("-") else 9)
    if isinstance(expr, ast.Bool):
        return str(expr.value).lower(), 9
    if isinstance(expr, ast.Quantity):
        return f"{_number(expr.value)} {expr.unit}", 9
    if isinstance(expr, ast.Name):
        return expr.id, 9
    if isinstance(expr, ast.Call):
        return f"{expr.func}({', '.join(to_snn(a) for a in expr.args)})", 9
    if isinstance(expr, ast.Unary):
        level = _PRECEDENCE["not" if expr.op == "not" else "neg"]
        sep = " " if expr.op == "not" else ""
        return f"{expr.op}{sep}{_wrap(expr.operand, level + 1)}", level
    level = _PRECEDENCE[expr.op]
    # Left-associative, except ** which binds to the right.
    left_min, right_min = (level + 1, level) if expr.op == "**" else (level, level + 1)
    return f"{_wrap(expr.left, left_min)} {expr.op} {_wrap(expr.right, right_min)}", level


def _wrap(expr: ast.Expr, minimum: int) -> str:
    text, level = _print(expr)
    return text if level >= minimum else f"({text})"
