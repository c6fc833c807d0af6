"""Initial values (a number, uniform(a, b) or normal(mu, sigma), filled into a tensor) and
the random streams a seeded network draws from while it runs (docs/RNG.md)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch

from snnc.ir.values import Normal, Uniform

#: fills a tensor in place from a generator (None: PyTorch's global one) and returns it
Sample = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


class DrawsAtRunTime:
    """A module that draws random numbers while it runs. In a seeded network it gets a
    generator of its own (`generator`, set by runtime.network.seed_streams); None draws
    from PyTorch's global generator, as a network without a seed does."""

    generator: torch.Generator | None = None


def stream(seed: int, path: str) -> torch.Generator:
    """The generator of the module at `path` (its name in the network's populations,
    encoders or connections: `spk`, `hidden`, `h->o.ops.1`) in a network seeded `seed`.
    Each module has a stream of its own so that what it draws does not depend on the
    order in which modules run (layer by layer, or step by step)."""
    digest = hashlib.sha256(f"{seed}:{path}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def draw(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None,
         sample: Sample) -> torch.Tensor:
    """A new tensor of `shape` filled by `sample`. From the global generator it is made
    where `like` lives, in its dtype. From a seeded network's `generator` it is made on
    the CPU in float64 and moved to `like`'s device (still float64: a caller rounds it
    where it becomes a value, and compares it unrounded where it decides a spike), so one
    seed gives the same numbers on any device and at any precision."""
    if generator is None:
        return sample(torch.empty(shape, dtype=like.dtype, device=like.device), None)
    return sample(torch.empty(shape, dtype=torch.float64), generator).to(like.device)


def fill(value: float | Uniform | Normal, shape: tuple[int, ...], like: torch.Tensor,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """A tensor of `shape` on `like`'s device and dtype, drawn or filled from `value`."""
    if isinstance(value, Uniform):
        return draw(shape, like, generator,
                    lambda t, g: t.uniform_(value.low, value.high, generator=g)).to(like.dtype)
    if isinstance(value, Normal):
        return draw(shape, like, generator,
                    lambda t, g: t.normal_(value.mean, value.std, generator=g)).to(like.dtype)
    return torch.full(shape, float(value), dtype=like.dtype, device=like.device)


def init_weight(weight: torch.Tensor, value: float | Uniform | Normal | None) -> None:
    """Overwrite `weight` in place; None keeps PyTorch's default initialisation."""
    if value is None:
        return
    with torch.no_grad():
        weight.copy_(fill(value, tuple(weight.shape), weight))
