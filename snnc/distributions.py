"""Random initialisers as plain values: the checker produces them, generated code and the
runtime consume them (kept free of torch so the front end does not import it)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float


@dataclass(frozen=True)
class Normal:
    mean: float
    std: float
