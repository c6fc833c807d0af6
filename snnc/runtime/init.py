"""Initial values: a number, uniform(a, b) or normal(mu, sigma), filled into a tensor."""
from __future__ import annotations

import torch

from snnc.ir.values import Normal, Uniform


def fill(value: float | Uniform | Normal, shape: tuple[int, ...],
         like: torch.Tensor) -> torch.Tensor:
    """A tensor of `shape` on `like`'s device and dtype, drawn or filled from `value`."""
    if isinstance(value, Uniform):
        return torch.empty(shape, dtype=like.dtype, device=like.device).uniform_(value.low,
                                                                                 value.high)
    if isinstance(value, Normal):
        return torch.empty(shape, dtype=like.dtype, device=like.device).normal_(value.mean,
                                                                                value.std)
    return torch.full(shape, float(value), dtype=like.dtype, device=like.device)


def init_weight(weight: torch.Tensor, value: float | Uniform | Normal | None) -> None:
    """Overwrite `weight` in place; None keeps PyTorch's default initialisation."""
    if value is None:
        return
    with torch.no_grad():
        weight.copy_(fill(value, tuple(weight.shape), weight))
