"""Readouts: what forward() returns, from the readout population's [T, B, ...] record."""
from __future__ import annotations

import torch


def rate(spikes: torch.Tensor) -> torch.Tensor:
    return spikes.mean(0)


def count(spikes: torch.Tensor) -> torch.Tensor:
    return spikes.sum(0)


def voting(spikes: torch.Tensor, k: int) -> torch.Tensor:
    """SpikingJelly's VotingLayer over the firing rate: mean of each group of k neurons."""
    return vote(rate(spikes), k)


def vote(x: torch.Tensor, k: int) -> torch.Tensor:
    """The mean of each group of k along the last axis (snnc.layers.VotingLayer)."""
    return x.unflatten(-1, (x.shape[-1] // k, k)).mean(-1)


def first_spike(spikes: torch.Tensor) -> torch.Tensor:
    """The step of each neuron's first spike; T where it never fires."""
    steps = spikes.shape[0]
    index = torch.arange(steps, device=spikes.device).view(-1, *([1] * (spikes.dim() - 1)))
    fired = spikes > 0
    return torch.where(fired, index, steps).amin(0).to(spikes.dtype)


def v(potentials: torch.Tensor) -> torch.Tensor:
    """The membrane potential at the last step."""
    return potentials[-1]


def trace(potentials: torch.Tensor) -> torch.Tensor:
    """The membrane potential at every step, [B, *shape, T] (the event backend's `v`)."""
    return potentials.movedim(0, -1)


def v_max(potentials: torch.Tensor) -> torch.Tensor:
    """The highest membrane potential over the steps; its gradient goes to one step, the
    first of equal maxima, as the event backend's v_max and SpikingFlow's Tempotron
    (torch.max) give it, not shared among them (amax)."""
    return potentials.max(0).values
