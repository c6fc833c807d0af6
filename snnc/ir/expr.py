"""IR expressions: the update equations of neurons (and later synapses, rules and
surrogates) as small frozen dataclasses that the printers write as PyTorch, C or .snn text.

They are the AST's expressions after checking: units converted to steps and
probabilities per step, calls without keywords. A node may remember where it was written
(`pos`, for errors of later passes); positions never take part in equality, so equal
equations compare and hash equal wherever they came from. Every node knows its `depth`
(operators and calls nested in it, 0 for a leaf), bounded by the parser, so the recursive
passes over expressions stay within Python's stack.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from snnc import trees
from snnc.errors import Pos


@dataclass(frozen=True)
class Number:
    value: float | int
    pos: Pos = trees.position()
    depth: ClassVar[int] = 0


@dataclass(frozen=True)
class Bool:
    value: bool
    pos: Pos = trees.position()
    depth: ClassVar[int] = 0


@dataclass(frozen=True)
class Name:
    id: str
    pos: Pos = trees.position()
    depth: ClassVar[int] = 0


@dataclass(frozen=True)
class Call:
    """`f(a, b)`: one of the expression functions (snnc.check.values.FUNCTIONS) or one the
    kernels define for themselves (kernels.tape)."""

    func: str
    args: tuple[Expr, ...] = ()
    pos: Pos = trees.position()
    depth: int = trees.depth()

    def __post_init__(self) -> None:
        trees.set_depth(self, *self.args)


@dataclass(frozen=True)
class Unary:
    op: str  # "-", "+", "not"
    operand: Expr
    pos: Pos = trees.position()
    depth: int = trees.depth()

    def __post_init__(self) -> None:
        trees.set_depth(self, self.operand)


@dataclass(frozen=True)
class Binary:
    """Arithmetic, comparison and boolean operators alike."""

    op: str  # + - * / ** > >= < <= == != and or
    left: Expr
    right: Expr
    pos: Pos = trees.position()
    depth: int = trees.depth()

    def __post_init__(self) -> None:
        trees.set_depth(self, self.left, self.right)


Expr = Number | Bool | Name | Call | Unary | Binary
LITERALS = (Number, Bool)


@dataclass(frozen=True)
class Assign:
    """`target = value`: one state's update."""

    target: str
    value: Expr
    pos: Pos = trees.position()


def children(node: Expr) -> tuple[Expr, ...]:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    return ()


def with_children(node: Expr, new: list[Expr] | tuple[Expr, ...]) -> Expr:
    """`node` with other children, in the order `children` gives them."""
    if isinstance(node, Unary):
        return Unary(node.op, new[0], pos=node.pos)
    if isinstance(node, Binary):
        return Binary(node.op, new[0], new[1], pos=node.pos)
    if isinstance(node, Call):
        return Call(node.func, tuple(new), pos=node.pos)
    return node


def subexpressions(expr: Expr):
    """Every node of an expression tree, parents first; iterative so depth is no limit."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def names(expr: Expr) -> set[str]:
    """The names an expression reads."""
    return {node.id for node in subexpressions(expr) if isinstance(node, Name)}


def nonlinear_term(expr: Expr, variables: set[str]) -> Expr | None:
    """The first part of `expr` that keeps it from being affine in `variables` (a sum of
    constants and of constants times one variable), or None where it is affine. Parts that
    read none of the variables are constants, whatever they compute; `if(c, a, b)` with a
    constant c is affine where a and b are. Iterative: a node is judged after its
    operands."""
    order, stack = [], [expr]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(children(node))
    reads: dict[int, bool] = {}
    for node in reversed(order):  # operands before the node
        operands = children(node)
        reads[id(node)] = (isinstance(node, Name) and node.id in variables) \
            or any(reads[id(c)] for c in operands)
        if not reads[id(node)] or isinstance(node, Name):
            continue
        if isinstance(node, Unary) and node.op in ("-", "+"):
            continue
        if isinstance(node, Binary) and node.op in ("+", "-"):
            continue
        if isinstance(node, Binary) and node.op == "*" \
                and not (reads[id(node.left)] and reads[id(node.right)]):
            continue
        if isinstance(node, Binary) and node.op == "/" and not reads[id(node.right)]:
            continue
        if isinstance(node, Call) and node.func == "if" and not reads[id(node.args[0])]:
            continue  # a choice made by constants: one affine branch or the other
        return node
    return None
