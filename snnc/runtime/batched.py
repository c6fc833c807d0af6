"""Weights per simulation. A clock network of B simulations side by side that learns gives
each plastic connection one weight tensor per simulation, [B, *shape] (each simulation
learns its own), where every other weight is shared by the batch ([*shape], softbp's).
The weighted ops run such a weight one simulation at a time; a state_dict of the shared
shape (softbp's, a network of one simulation) loads into every simulation.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def per_simulation(apply: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """apply(x_b, weight[b]) of each simulation b: x [..., B, in] -> [..., B, out]."""
    return torch.stack([apply(x.select(-2, b), w) for b, w in enumerate(weight.unbind(0))],
                       dim=-2)


def give_each_simulation(owner: nn.Module, batch: int) -> None:
    """Make `owner.weight` [batch, *shape]: a copy of the weights for each simulation
    (the Parameter stays the same object)."""
    weight = owner.weight
    weight.data = weight.data.expand(batch, *weight.shape).clone()


def broadcast_loaded(state_dict: dict, key: str, weight: torch.Tensor) -> None:
    """Where `state_dict` holds the shared shape of a weight per simulation under `key`,
    give it to every simulation (a copy each: learning changes them in place)."""
    incoming = state_dict.get(key)
    if isinstance(incoming, torch.Tensor) and incoming.shape == weight.shape[1:]:
        state_dict[key] = incoming.expand(len(weight), *incoming.shape).clone()
