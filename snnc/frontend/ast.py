"""The AST: small frozen dataclasses that remember where they were written.

Positions never take part in equality, so two trees parsed from differently
laid-out text compare equal when they mean the same thing.

Every expression node knows its `depth` (operators and calls nested in it, 0 for
a leaf), computed from its children when it is made: the parser refuses an
expression deeper than snnc.limits.MAX_EXPR_DEPTH, so the recursive passes over
expressions later on (evaluation, folding, printing) stay within Python's stack.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from snnc import trees
from snnc.errors import Pos


# ------------------------------------------------------------------ expressions
@dataclass(frozen=True)
class Number:
    value: float | int
    pos: Pos = trees.position()
    depth: ClassVar[int] = 0


@dataclass(frozen=True)
class Quantity:
    """A number written with a unit: `20 ms`, `15 Hz`."""

    value: float | int
    unit: str
    pos: Pos = trees.position()
    depth: ClassVar[int] = 0


@dataclass(frozen=True)
class Name:
    id: str
    pos: Pos = trees.position()
    depth: ClassVar[int] = 0


@dataclass(frozen=True)
class Bool:
    value: bool
    pos: Pos = trees.position()
    depth: ClassVar[int] = 0


@dataclass(frozen=True)
class Kwarg:
    name: str
    value: Expr
    pos: Pos = trees.position()

    @property
    def depth(self) -> int:
        return self.value.depth  # `k = v` adds no level to a call


@dataclass(frozen=True)
class Call:
    """`f(a, k = b)`; also a bare model reference such as `flatten` (no args)."""

    func: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Kwarg, ...] = ()
    pos: Pos = trees.position()
    depth: int = trees.depth()

    def __post_init__(self) -> None:
        trees.set_depth(self, *self.args, *self.kwargs)

    def kwarg(self, name: str) -> Expr | None:
        for kw in self.kwargs:
            if kw.name == name:
                return kw.value
        return None


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


Expr = Number | Quantity | Name | Bool | Call | Unary | Binary


# ------------------------------------------------------------------ neurons
@dataclass(frozen=True)
class ParamDecl:
    """A parameter of a neuron's signature, with its default."""

    name: str
    default: Expr
    pos: Pos = trees.position()


@dataclass(frozen=True)
class ParamStmt:
    """`param w = expr [learnable]` inside a neuron body."""

    name: str
    value: Expr
    learnable: bool
    pos: Pos = trees.position()


@dataclass(frozen=True)
class StateStmt:
    name: str
    init: Expr
    pos: Pos = trees.position()


@dataclass(frozen=True)
class Assign:
    target: str
    value: Expr
    pos: Pos = trees.position()


@dataclass(frozen=True)
class Reset:
    """`reset hard|soft|none` (kind) or `reset { ... }` (assigns, applied where fired)."""

    kind: str | None
    assigns: tuple[Assign, ...] = ()
    pos: Pos = trees.position()


@dataclass(frozen=True)
class NeuronDef:
    name: str
    params: tuple[ParamDecl, ...]
    body_params: tuple[ParamStmt, ...]
    states: tuple[StateStmt, ...]
    charge: tuple[Assign, ...] | None
    fire: Expr | None
    reset: Reset | None
    kernel: Expr | None = None      # spike-response models: PSP kernel in `t`
    feedback: Call | None = None    # ILC: spikes -> grouped conv1d -> next step's x
    pos: Pos = trees.position()


# ------------------------------------------------------------------ networks
@dataclass(frozen=True)
class Setting:
    name: str
    value: Expr
    pos: Pos = trees.position()


@dataclass(frozen=True)
class InputDecl:
    name: str
    shape: tuple[Expr, ...]
    pos: Pos = trees.position()


@dataclass(frozen=True)
class EncoderDecl:
    name: str
    shape: tuple[Expr, ...] | None
    encoder: Call
    pos: Pos = trees.position()


@dataclass(frozen=True)
class PopulationDecl:
    name: str
    shape: tuple[Expr, ...]
    model: Call
    pos: Pos = trees.position()


@dataclass(frozen=True)
class Connect:
    src: Name
    dst: Name
    alias: str | None
    ops: tuple[Call, ...]
    delay: Expr | None
    via: Call | None
    learn: Call | None
    pos: Pos = trees.position()

    @property
    def name(self) -> str:
        return self.alias or f"{self.src.id}->{self.dst.id}"


@dataclass(frozen=True)
class Probe:
    target: str
    var: str
    pos: Pos = trees.position()


@dataclass(frozen=True)
class Monitor:
    probes: tuple[Probe, ...]
    pos: Pos = trees.position()


@dataclass(frozen=True)
class Readout:
    target: str
    kind: Call
    pos: Pos = trees.position()


@dataclass(frozen=True)
class Weights:
    """`weights "FILE"`: the network's state_dict, loaded when a module is made."""

    path: str
    pos: Pos = trees.position()


NetStmt = (Setting | InputDecl | EncoderDecl | PopulationDecl | Connect | Monitor | Readout
           | Weights)


@dataclass(frozen=True)
class NetworkDef:
    name: str
    body: tuple[NetStmt, ...]
    pos: Pos = trees.position()

    def of(self, kind: type) -> list:
        return [stmt for stmt in self.body if isinstance(stmt, kind)]


@dataclass(frozen=True)
class Import:
    path: str
    pos: Pos = trees.position()


@dataclass(frozen=True)
class File:
    path: str
    imports: tuple[Import, ...]
    neurons: tuple[NeuronDef, ...]
    networks: tuple[NetworkDef, ...]


def subexpressions(expr: Expr):
    """Every node of an expression tree, parents first; iterative so depth is no limit."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Unary):
            stack.append(node.operand)
        elif isinstance(node, Binary):
            stack.extend((node.right, node.left))
        elif isinstance(node, Call):
            stack.extend(kw.value for kw in reversed(node.kwargs))
            stack.extend(reversed(node.args))
        elif isinstance(node, Kwarg):
            stack.append(node.value)
