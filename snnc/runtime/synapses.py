"""Synapses: how a connection's weighted spikes become the target's current, step by step.

A synapse runs its generated step function (printed from snnc.registry.synapses:
`step(x, *states, *learnable) -> (current, states)`) and keeps its states from step to
step until reset(), as a population does.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn


class Synapse(nn.Module):
    """`presynaptic`: it acts on the source's spikes before the connection's ops (STP);
    else on the current after the ops and the delay. Learnable parameters are attributes
    (`synapse.w` in a state_dict)."""

    def __init__(self, step: Callable, states: Mapping[str, float],
                 learnable: Mapping[str, float] | None = None, presynaptic: bool = False):
        super().__init__()
        self.step, self.initial, self.presynaptic = step, dict(states), presynaptic
        self.learnable = tuple(learnable or {})
        for name, value in (learnable or {}).items():
            self.register_parameter(name, nn.Parameter(torch.tensor(float(value))))
        self.reset()

    def reset(self) -> None:
        self.states: tuple[torch.Tensor, ...] | None = None

    def named_memories(self):
        """(name, tensor) of its states, as a run carries them."""
        if self.states is not None:
            yield from zip(self.initial, self.states, strict=True)

    def detach(self) -> None:
        """Cut its states from the graph (truncated BPTT)."""
        if self.states is not None:
            self.states = tuple(value.detach() for value in self.states)

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        """This step's current; the states carry over to the next call until reset()."""
        if self.states is None:
            self.states = tuple(torch.full_like(x, v) for v in self.initial.values())
        current, self.states = self.step(x, *self.states,
                                         *(getattr(self, n) for n in self.learnable))
        return current

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """[T, B, ...] in, [T, B, ...] out, one step after the other."""
        return torch.stack([self.single_step(x) for x in seq])

    def extra_repr(self) -> str:
        return ", ".join(self.initial) or "stateless"
