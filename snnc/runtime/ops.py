"""Elementwise helpers that generated step functions call (see printers.TorchPrinter).

Conditions are 0/1 numbers of the state's dtype, so a comparison can be stored in
a state (SpikingFlow's one-step-late spike) and mixed into arithmetic.
"""
from __future__ import annotations

import torch

Number = torch.Tensor | float


def truth(cond: torch.Tensor | bool) -> Number:
    """A comparison's result as 0.0/1.0."""
    if isinstance(cond, torch.Tensor):
        return cond.to(torch.get_default_dtype()) if not cond.is_floating_point() else cond
    return 1.0 if cond else 0.0


def _is_true(c: Number) -> torch.Tensor | bool:
    return c != 0 if isinstance(c, torch.Tensor) else bool(c)


def where(cond: Number, a: Number, b: Number) -> Number:
    """`if(c, a, b)`: a where c is non-zero."""
    c = _is_true(cond)
    if not isinstance(c, torch.Tensor):
        return a if c else b
    like = next((t for t in (a, b) if isinstance(t, torch.Tensor)), None)
    a = a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=_dtype(like))
    b = b if isinstance(b, torch.Tensor) else torch.as_tensor(b, dtype=_dtype(like))
    return torch.where(c, a, b)


def _dtype(like: torch.Tensor | None) -> torch.dtype:
    return like.dtype if like is not None else torch.get_default_dtype()


def logical_not(a: Number) -> Number:
    return truth(~_is_true(a)) if isinstance(a, torch.Tensor) else float(not a)


def logical_and(a: Number, b: Number) -> Number:
    return truth(torch.as_tensor(_is_true(a)) & torch.as_tensor(_is_true(b)))


def logical_or(a: Number, b: Number) -> Number:
    return truth(torch.as_tensor(_is_true(a)) | torch.as_tensor(_is_true(b)))


def minimum(a: Number, b: Number) -> Number:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.minimum(torch.as_tensor(a), torch.as_tensor(b))
    return min(a, b)


def maximum(a: Number, b: Number) -> Number:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.maximum(torch.as_tensor(a), torch.as_tensor(b))
    return max(a, b)


def clamp(a: Number, low: Number, high: Number) -> Number:
    return minimum(maximum(a, low), high)
