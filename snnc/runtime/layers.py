"""Ops of a connection's pipeline that PyTorch lacks, and the connection itself.

A connection applies its ops to [T·B, ...] at once (so a convolution runs once
for all steps), then shifts the result by its delay along T.
"""
from __future__ import annotations

import torch
from torch import nn

from snnc.runtime.init import fill


class StepAware(nn.Module):
    """Marks an op whose forward takes (x, steps): it needs T of the [T·B, ...] tensor."""


class Dropout(StepAware):
    """SNN dropout: one mask per run, held over all steps (SpikingFlow's Dropout)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.reset()

    def reset(self) -> None:
        self.keep = None  # this run's mask, drawn at its first step

    def forward(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        per_step = x.view(steps, -1, *x.shape[1:])
        if self.keep is None or self.keep.shape[1:] != per_step.shape[1:]:
            self.keep = torch.empty_like(per_step[:1]).bernoulli_(1 - self.p) / (1 - self.p)
        return (per_step * self.keep).view_as(x)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Scale(nn.Module):
    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.c

    def extra_repr(self) -> str:
        return f"c={self.c}"


class Noise(nn.Module):
    """Gaussian noise on the current (SpikingFlow's GaussianLinear)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.randn_like(x) * self.std

    def extra_repr(self) -> str:
        return f"std={self.std}"


class OneToOne(nn.Module):
    """One weight per element: current = w * x."""

    def __init__(self, shape: tuple[int, ...], w=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(shape))
        if w is not None:
            with torch.no_grad():
                self.weight.copy_(fill(w, shape, self.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class SparseLinear(nn.Linear):
    """A linear map whose synapses each exist with probability p; the mask is fixed."""

    def __init__(self, in_features: int, out_features: int, p: float, bias: bool = False):
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", (torch.rand(out_features, in_features) < p).float())
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class ChannelMaxPool(nn.Module):
    """Max-pooling over the channel axis (SpikingFlow's ChannelsMaxPool), stride = k."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        moved = x.reshape(n, c, -1).transpose(1, 2)            # [N, L, C]
        pooled = nn.functional.max_pool1d(moved, self.k, self.k)
        return pooled.transpose(1, 2).reshape(n, -1, *x.shape[2:])


class AXAT(nn.Module):
    """SpikingFlow's AXAT: Y = A X Aᵀ on the last two axes, A learnable [out, in]."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight @ x @ self.weight.t()


def dct_matrix(size: int, block: int) -> torch.Tensor:
    """Block-diagonal orthonormal DCT-II of `block`×`block` blocks along an axis of `size`."""
    u = torch.arange(block, dtype=torch.float64).view(-1, 1)
    pos = torch.arange(block, dtype=torch.float64).view(1, -1)
    basis = torch.cos(torch.pi * (2 * pos + 1) * u / (2 * block)) * (2.0 / block) ** 0.5
    basis[0] /= 2 ** 0.5
    return torch.block_diag(*[basis] * (size // block)).float()


class DCT(nn.Module):
    """SpikingFlow's DCT: a blockwise DCT of the last two axes (an AXAT with fixed A)."""

    def __init__(self, rows: int, cols: int, k: int):
        super().__init__()
        self.register_buffer("rows", dct_matrix(rows, k), persistent=False)
        self.register_buffer("cols", dct_matrix(cols, k), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows.to(x.dtype) @ x @ self.cols.to(x.dtype).t()


class SynapseDelays(StepAware):
    """A dense, sparse or one-to-one op whose synapses each have their own delay, drawn
    once from [low, high] (`delay uniform(a, b)`). The inputs of the last `high` steps
    are kept until reset(), so the op gives the same currents whether a run comes in one
    call of T steps (layer mode) or T calls of one step (step mode)."""

    def __init__(self, inner: nn.Module, low: int, high: int):
        super().__init__()
        self.inner, self.low, self.high = inner, int(low), int(high)
        self.register_buffer("delays", torch.randint(self.low, self.high + 1,
                                                     tuple(inner.weight.shape)))
        self.reset()

    def reset(self) -> None:
        self.history = None

    @property
    def weight(self) -> torch.Tensor:
        return self.inner.weight

    def _apply(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if isinstance(self.inner, OneToOne):
            return x * weight
        if isinstance(self.inner, SparseLinear):
            weight = weight * self.inner.mask
        return nn.functional.linear(x, weight)

    def forward(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        per_step = x.view(steps, -1, *x.shape[1:])
        full = per_step if self.history is None else torch.cat([self.history, per_step])
        out = 0
        for d in torch.unique(self.delays).tolist():
            current = self._apply(full, self.weight * (self.delays == d))
            out = out + delay_sequence(current, d)[-steps:]
        self.history = full[-self.high:] if self.high else None
        bias = getattr(self.inner, "bias", None)
        out = out + bias if bias is not None else out
        return out.reshape(steps * per_step.shape[1], *out.shape[2:])


class Connection(nn.Module):
    """SRC's output sequence -> DST's input current sequence: ops, delay, synapse."""

    def __init__(self, name: str, ops: list[nn.Module], out_shape: tuple[int, ...],
                 delay: int = 0, synapse: nn.Module | None = None):
        super().__init__()
        self.name = name
        self.ops = nn.Sequential(*ops)
        self.out_shape = tuple(out_shape)
        self.delay = int(delay)
        self.synapse = synapse

    @property
    def weight(self) -> torch.Tensor:
        """The weights of the connection's weighted op ([out, in] for dense)."""
        for op in self.ops:
            if hasattr(op, "weight") and not isinstance(op, nn.modules.batchnorm._BatchNorm):
                return op.weight
        raise AttributeError(f"connection '{self.name}' has no weights")

    @property
    def presynaptic(self) -> bool:
        """Whether the synapse acts on the source's spikes (STP) rather than the current."""
        return getattr(self.synapse, "presynaptic", False)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        if self.presynaptic:
            seq = self.synapse(seq)
        steps, batch = seq.shape[:2]
        x = seq.reshape(steps * batch, *seq.shape[2:])
        for op in self.ops:
            x = op(x, steps) if isinstance(op, StepAware) else op(x)
        out = delay_sequence(x.reshape(steps, batch, *self.out_shape), self.delay)
        return self.synapse(out) if self.synapse is not None and not self.presynaptic else out

    def at(self, source, t: int, like: torch.Tensor) -> torch.Tensor:
        """Step mode: the current delivered at step t, from what the source sent at
        t - delay. `source` is a [T, B, ...] tensor or the list of the source's steps so far;
        `like` is any [T, B, ...] tensor of the run (for batch, dtype and device)."""
        index = t - self.delay
        if index < 0:
            x = like.new_zeros(like.shape[1], *self.out_shape)
        else:
            x = source[index]
            if self.presynaptic:  # called once per step, so the synapse sees every spike once
                x = self.synapse.single_step(x)
            for op in self.ops:
                x = op(x, 1) if isinstance(op, StepAware) else op(x)
        if self.presynaptic:
            return x
        return self.synapse.single_step(x) if self.synapse is not None else x


def delay_sequence(seq: torch.Tensor, delay: int) -> torch.Tensor:
    """What arrives at step t is what was sent at t - delay (zeros before)."""
    if delay == 0:
        return seq
    if delay >= seq.shape[0]:
        return torch.zeros_like(seq)
    return torch.cat([torch.zeros_like(seq[:delay]), seq[:-delay]])
