"""The fields every tree of frozen dataclasses in snnc shares (the AST's and the IR's
expressions): a position that never takes part in equality, and a depth derived from the
children."""
from __future__ import annotations

from dataclasses import field

from snnc.errors import Pos

NOWHERE = Pos("<builtin>", 0, 0)


def position() -> Pos:
    return field(default=NOWHERE, compare=False, repr=False, kw_only=True)


def depth() -> int:
    # Derived from the children in __post_init__: never passed, compared or shown.
    return field(default=0, init=False, compare=False, repr=False)


def set_depth(node, *children) -> None:
    object.__setattr__(node, "depth", 1 + max((c.depth for c in children), default=0))
