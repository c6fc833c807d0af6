"""Elementwise helpers that generated step functions call (see printers.TorchPrinter).

Conditions are 0/1 numbers of the state's dtype, so a comparison can be stored in
a state (SpikingFlow's one-step-late spike) and mixed into arithmetic.
"""
from __future__ import annotations

import torch

Number = torch.Tensor | float


def truth(cond: torch.Tensor | bool, like: torch.Tensor | None = None) -> Number:
    """A comparison's result as 0.0/1.0, in `like`'s dtype where given (the step's input,
    so that a state holding a comparison keeps the other states' dtype)."""
    if isinstance(cond, torch.Tensor):
        if cond.is_floating_point():
            return cond
        return cond.to(like.dtype if like is not None else torch.get_default_dtype())
    return 1.0 if cond else 0.0


def _is_true(c: Number) -> torch.Tensor | bool:
    return c != 0 if isinstance(c, torch.Tensor) else bool(c)


def where(cond: Number, a: Number, b: Number) -> Number:
    """`if(c, a, b)`: a where c is non-zero; numbers take the dtype of a branch that is a
    tensor, else of the condition (a 0/1 number of the step's dtype)."""
    c = _is_true(cond)
    if not isinstance(c, torch.Tensor):
        return a if c else b
    like = next((t for t in (a, b, cond) if isinstance(t, torch.Tensor)
                 and t.is_floating_point()), None)
    a = a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=_dtype(like))
    b = b if isinstance(b, torch.Tensor) else torch.as_tensor(b, dtype=_dtype(like))
    return torch.where(c, a, b)


def _dtype(like: torch.Tensor | None) -> torch.dtype:
    return like.dtype if like is not None else torch.get_default_dtype()


def logical_not(a: Number, like: torch.Tensor | None = None) -> Number:
    return truth(~_is_true(a), like) if isinstance(a, torch.Tensor) else float(not a)


def logical_and(a: Number, b: Number, like: torch.Tensor | None = None) -> Number:
    return truth(torch.as_tensor(_is_true(a)) & torch.as_tensor(_is_true(b)), like)


def logical_or(a: Number, b: Number, like: torch.Tensor | None = None) -> Number:
    return truth(torch.as_tensor(_is_true(a)) | torch.as_tensor(_is_true(b)), like)


def minimum(a: Number, b: Number) -> Number:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.minimum(*_tensors(a, b))
    return min(a, b)


def maximum(a: Number, b: Number) -> Number:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.maximum(*_tensors(a, b))
    return max(a, b)


def _tensors(a: Number, b: Number) -> tuple[torch.Tensor, torch.Tensor]:
    """Both as tensors, a number in the other's dtype and device: `max(v, 0.1)` compares
    a float64 state with 0.1, not with 0.1 rounded to the default float32."""
    like = a if isinstance(a, torch.Tensor) else b
    return tuple(t if isinstance(t, torch.Tensor)
                 else torch.as_tensor(t, dtype=like.dtype, device=like.device) for t in (a, b))


def clamp(a: Number, low: Number, high: Number) -> Number:
    return minimum(maximum(a, low), high)


def full(value: Number, like: torch.Tensor) -> torch.Tensor:
    """`value`, a number or a learnable parameter, as a tensor of `like`'s shape, dtype and
    device: what a step assigns from constants and parameters alone still has one value
    per neuron (a view, and differentiable: the parameter's gradient sums over them)."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).expand(like.shape)


def fired(cond: Number, like: torch.Tensor) -> torch.Tensor:
    """A `fire` condition that is not a comparison (`fire true`, `fire a and b`): a spike
    of `like`'s shape and dtype wherever it is non-zero, as `if` reads conditions; no
    surrogate, so no gradient."""
    nonzero = torch.as_tensor(cond, device=like.device) != 0
    return nonzero.to(like.dtype).expand(like.shape)
