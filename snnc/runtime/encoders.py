"""Encoders: values -> spikes, for all T steps at once ([T, B, *shape])."""
from __future__ import annotations

import math

import torch
from torch import nn


class Poisson(nn.Module):
    """P(spike) = value (clipped to [0, 1]) at every step; or a fixed rate with no input."""

    def __init__(self, rate: float | None = None, shape: tuple[int, ...] = ()):
        super().__init__()
        self.rate = rate
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor | None, steps: int, batch: int, like: torch.Tensor):
        if x is None:
            p = torch.full((steps, batch, *self.shape), self.rate, dtype=like.dtype,
                           device=like.device)
        else:
            p = x.clamp(0, 1)
        return (torch.rand_like(p) < p).to(p.dtype)


class Constant(nn.Module):
    """A spike wherever the value is positive, at every step."""

    def forward(self, x: torch.Tensor, steps: int, batch: int, like: torch.Tensor):
        return (x > 0).to(x.dtype)


class Latency(nn.Module):
    """One spike per element, earlier for larger values in [0, 1] (linear or log in time)."""

    def __init__(self, t_max: float, mode: str = "linear"):
        super().__init__()
        self.t_max, self.mode = t_max, mode

    def forward(self, x: torch.Tensor, steps: int, batch: int, like: torch.Tensor):
        value = x[0].clamp(0, 1)
        if self.mode == "linear":
            t = (self.t_max - 1) * (1 - value)
        else:  # log: t = (t_max - 1) - ln(alpha * value + 1), alpha so that t(1) = 0
            alpha = math.exp(self.t_max - 1) - 1
            t = (self.t_max - 1) - torch.log(alpha * value + 1)
        # past the run, a step never comes; clamped first, as a float past int64 (t_max up
        # to 1e30) has no defined conversion
        t = t.clamp(0, steps).round().long()
        step = torch.arange(steps, device=x.device).view(-1, *([1] * value.dim()))
        return (step == t.unsqueeze(0)).to(x.dtype)


class Periodic(nn.Module):
    """Replays a [B, P, *shape] spike pattern: step t emits pattern[:, t mod P]."""

    def forward(self, x: torch.Tensor, steps: int, batch: int, like: torch.Tensor):
        pattern = x[0]
        period = pattern.shape[1]
        index = torch.arange(steps, device=x.device) % period
        return pattern[:, index].transpose(0, 1)
