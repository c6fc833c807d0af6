"""Checked values: numbers, random initialisers, bare words and bound calls.

The checker produces them; the IR, the passes, the backends and the runtime read them
(kept free of torch, so the front end does not import it).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float


@dataclass(frozen=True)
class Normal:
    mean: float
    std: float


@dataclass(frozen=True)
class Symbol:
    """A bare word used as a value, such as `linear` in `mode = linear`."""

    name: str


@dataclass(frozen=True)
class Spec:
    """A named thing with bound parameters: an encoder, op, synapse, rule, surrogate, readout."""

    kind: str
    params: Mapping[str, Value]


Value = int | float | bool | Uniform | Normal | Symbol | Spec


def describe_init(value: Value) -> str:
    if isinstance(value, Uniform):
        return f"uniform({value.low:g}, {value.high:g})"
    if isinstance(value, Normal):
        return f"normal({value.mean:g}, {value.std:g})"
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else str(value)
