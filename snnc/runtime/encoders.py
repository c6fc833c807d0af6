"""Encoders: values -> spikes, for T steps at once ([T, B, *shape]): all of a run (softbp)
or one step at a time (the clock backend: `start` is the first step's index in the run)."""
from __future__ import annotations

import math

import torch
from torch import nn

from snnc.runtime.init import DrawsAtRunTime, draw


class Encoder(nn.Module):
    """What every encoder is built with: its shape (generated code passes it to all)."""

    def __init__(self, shape: tuple[int, ...] = ()):
        super().__init__()
        self.shape = tuple(shape)


class Poisson(DrawsAtRunTime, Encoder):
    """P(spike) = value (clipped to [0, 1]) at every step; or a fixed rate with no input.
    It draws one uniform number per element, [T, B, *shape] in time order, so a run of
    T steps at once draws what T runs of one step would."""

    def __init__(self, shape: tuple[int, ...] = (), rate: float | None = None):
        super().__init__(shape)
        self.rate = rate

    def forward(self, x: torch.Tensor | None, steps: int, batch: int, like: torch.Tensor,
                start: int = 0):
        if x is None:  # one rate for all: a 0-d tensor of the run's dtype, broadcast
            p = torch.tensor(self.rate, dtype=like.dtype, device=like.device)
            shape = (steps, batch, *self.shape)
        else:
            p = x.clamp(0, 1)
            shape = p.shape
        uniform = draw(shape, p, self.generator, lambda t, g: t.uniform_(generator=g))
        return (uniform < p).to(p.dtype)


class Constant(Encoder):
    """A spike wherever the value is positive, at every step."""

    def forward(self, x: torch.Tensor, steps: int, batch: int, like: torch.Tensor,
                start: int = 0):
        return (x > 0).to(x.dtype)


class Latency(Encoder):
    """One spike per element, earlier for larger values in [0, 1] (linear or log in time)."""

    def __init__(self, shape: tuple[int, ...] = (), t_max: float = 20, mode: str = "linear"):
        super().__init__(shape)
        self.t_max, self.mode = t_max, mode

    def forward(self, x: torch.Tensor, steps: int, batch: int, like: torch.Tensor,
                start: int = 0):
        value = x[0].clamp(0, 1)
        if self.mode == "linear":
            t = (self.t_max - 1) * (1 - value)
        else:  # log: t = (t_max - 1) - ln(alpha * value + 1), alpha so that t(1) = 0
            alpha = math.exp(self.t_max - 1) - 1
            t = (self.t_max - 1) - torch.log(alpha * value + 1)
        # past the run, a step never comes; clamped first, as a float past int64 (t_max up
        # to 1e30) has no defined conversion
        t = t.clamp(0, start + steps).round().long()
        step = torch.arange(start, start + steps, device=x.device).view(-1, *([1] * value.dim()))
        return (step == t.unsqueeze(0)).to(x.dtype)


class Periodic(Encoder):
    """Replays a [B, P, *shape] spike pattern: step t emits pattern[:, t mod P]."""

    def forward(self, x: torch.Tensor, steps: int, batch: int, like: torch.Tensor,
                start: int = 0):
        pattern = x[0]
        period = pattern.shape[1]
        index = torch.arange(start, start + steps, device=x.device) % period
        return pattern[:, index].transpose(0, 1)
