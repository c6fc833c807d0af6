"""Losses and helpers for training the networks snnc builds, as plain tensor functions.

- `tempotron_mse_loss`: the seed's Tempotron loss (SpikingFlow's Tempotron.mse_loss).
- `first_spike_index`, `first_spike_time`: the first spike of each neuron in a spike
  train laid out [*, T] (time last, the seed's softbp.functional layout).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from snnc.runtime.event import NO_SPIKE

__all__ = ["first_spike_index", "first_spike_time", "tempotron_mse_loss"]


def tempotron_mse_loss(v_max: torch.Tensor, label: torch.Tensor, num_classes: int,
                       v_threshold: float | torch.Tensor = 1.0) -> torch.Tensor:
    """The seed's Tempotron loss: a neuron is wrong when it fires (v_max >= v_threshold)
    and is not the label's, or is the label's and does not; the loss is the squared
    distance of the wrong neurons' v_max to the threshold, summed over neurons and
    averaged over the batch: sum(((v_max - v_threshold) · wrong)²) / B.

    v_max [B, num_classes] (the Tempotron's "v_max" readout), label [B] (class indices),
    v_threshold a number or a tensor broadcastable to v_max. The gradient is
    2 (v_max - v_threshold) / B on the wrong neurons, 0 on the others, so through the
    "v_max" readout it is the seed's closed form scaled by the error. (The seed's code
    takes one_hot(label, 10) whatever num_classes is; this one uses num_classes.)"""
    if v_max.dim() != 2 or v_max.shape[1] != num_classes:
        raise ValueError(f"v_max must be [B, {num_classes}], got {list(v_max.shape)}")
    target = F.one_hot(label.long(), num_classes).to(torch.bool)
    wrong = (v_max >= v_threshold) != target
    error = (v_max - v_threshold) * wrong.to(v_max.dtype)
    return error.square().sum() / label.shape[0]


def first_spike_index(spikes: torch.Tensor) -> torch.Tensor:
    """spikes [*, T] (any neurons, T steps, a spike where > 0) -> bool [*, T], True at
    each neuron's first spike only (the seed's softbp.functional.first_spike_index)."""
    fired = spikes > 0
    return fired & (fired.cumsum(dim=-1) == 1)


def first_spike_time(spikes: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """The step of each neuron's first spike along `dim` (time last by default, as
    `first_spike_index`), as a float; NO_SPIKE (-1) where it never fires. The same
    times as the Tempotron's "spikes" readout gives from the voltage."""
    fired = spikes > 0
    first = fired.to(torch.uint8).argmax(dim=dim)  # the first True; 0 where none
    dtype = spikes.dtype if spikes.is_floating_point() else torch.get_default_dtype()
    return first.to(dtype).masked_fill_(~fired.any(dim=dim), NO_SPIKE)
