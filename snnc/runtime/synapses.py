"""Synapses: how a connection's weighted spikes become the target's current, over T steps.

Each takes the connection's current sequence [T, B, *shape] (after ops and delay)
and returns the synaptic current sequence.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class _Sequential(nn.Module):
    """A synapse with one state carried from step to step within a run; subclasses
    define `step(x, i) -> i`."""

    def __init__(self):
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.current = None

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        """Step mode: this step's current, the state kept until reset()."""
        previous = torch.zeros_like(x) if self.current is None else self.current
        self.current = self.step(x, previous)
        return self.current

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        current = torch.zeros_like(seq[0])
        out = []
        for x in seq:
            current = self.step(x, current)
            out.append(current)
        return torch.stack(out)


class ExpCurrent(_Sequential):
    """The current decays with tau (exactly, per step) and jumps by the weighted spikes:
    the synapse of the Vogels-Abbott CUBA benchmark."""

    def __init__(self, tau: float):
        super().__init__()
        self.decay = math.exp(-1.0 / tau)

    def step(self, x, i):
        return i * self.decay + x


class ExpDecayCurrent(_Sequential):
    """SpikingFlow's ExpDecayCurrent: set to `amplitude` where a spike arrives, else decays."""

    def __init__(self, tau: float, amplitude: float):
        super().__init__()
        self.decay, self.amplitude = math.exp(-1.0 / tau), amplitude

    def step(self, x, i):
        return torch.where(x != 0, torch.full_like(i, self.amplitude), i * self.decay)


class Filter(_Sequential):
    """SpikingJelly's SynapseFilter: I = I - (1 - S) I / tau + S, tau optionally learnable
    (as 1/tau = sigmoid(w), so it stays above 1)."""

    def __init__(self, tau: float, learnable: bool = False):
        super().__init__()
        self.tau = tau
        self.w = nn.Parameter(torch.tensor(-math.log(tau - 1.0))) if learnable else None

    def step(self, x, i):
        inv_tau = self.w.sigmoid() if self.w is not None else 1.0 / self.tau
        return i - (1.0 - x) * i * inv_tau + x


class STP(nn.Module):
    """Tsodyks-Markram short-term plasticity on the presynaptic spikes (SpikingFlow's
    STPTransformer): resources x recover with tau_d, utilisation v relaxes to v_base with
    tau_f; a spike raises v by v_base (1 - v), releases v x and uses it up. Each step:
        x += (1 - x) / tau_d;  v += (v_base - v) / tau_f;  v += v_base (1 - v) s
        out = v x s;  x -= out
    Applied to the source's spikes before the connection's ops (`presynaptic`)."""

    presynaptic = True

    def __init__(self, v_base: float, tau_f: float, tau_d: float):
        super().__init__()
        self.v_base, self.tau_f, self.tau_d = v_base, tau_f, tau_d
        self.reset()

    def reset(self) -> None:
        self.x = self.v = None

    def single_step(self, s: torch.Tensor) -> torch.Tensor:
        if self.x is None:
            self.x, self.v = torch.ones_like(s), torch.full_like(s, self.v_base)
        x = self.x + (1.0 - self.x) / self.tau_d
        v = self.v + (self.v_base - self.v) / self.tau_f
        v = v + self.v_base * (1.0 - v) * s
        out = v * x * s
        self.x, self.v = x - out, v
        return out

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.single_step(s) for s in seq])


class SpikeCurrent(nn.Module):
    """SpikingFlow's spike current: the weighted spikes times `amplitude`."""

    def __init__(self, amplitude: float):
        super().__init__()
        self.amplitude = amplitude

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return seq * self.amplitude

    single_step = forward


SYNAPSES = {"exp_current": ExpCurrent, "exp_decay_current": ExpDecayCurrent, "filter": Filter,
            "spike_current": SpikeCurrent, "stp": STP}


def synapse(kind: str, **params) -> nn.Module:
    return SYNAPSES[kind](**params)
