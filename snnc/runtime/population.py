"""A population: a thin nn.Module around its generated step function (Norse-style).

The step function is pure: `step(x, *states, *learnable) -> (spike, states)`.
This module keeps the states between calls, initialises them, handles the
refractory period, and runs the step over all T steps of a sequence.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import nn

from snnc.runtime import fused
from snnc.runtime.init import DrawsAtRunTime, fill
from snnc.runtime.network import NamedParameters


class Population(DrawsAtRunTime, nn.Module):
    def __init__(self, name: str, step: Callable, shape: tuple[int, ...],
                 state_init: Mapping[str, object], learnable: Mapping[str, float] | None = None,
                 refractory: int = 0, feedback_group: int | None = None,
                 kernel: str | None = None, detach_reset: bool = False,
                 kernel_cuda: str | None = None, channels: tuple[str, ...] = ()):
        super().__init__()
        self.name = name
        self.step = step
        self.shape = tuple(shape)
        self.state_names = tuple(state_init)
        self.state_init = dict(state_init)
        self.refractory = int(refractory)
        # states that connections deliver into (conductances) run on while the neuron is
        # refractory, as Brian2's synaptic variables do; the others are frozen
        self.channels = tuple(channels)
        self.learnable = NamedParameters(
            {k: nn.Parameter(torch.tensor(float(v))) for k, v in (learnable or {}).items()})
        self.kernel = kernel              # C source of the fused kernels (runtime.fused)
        self.kernel_cuda = kernel_cuda    # and their CUDA source, for tensors on a GPU
        self.detach_reset = detach_reset
        self.record: tuple[str, ...] = ()           # states to keep at every step
        self.reset()
        # ILC (SpikingJelly's inter-layer connection): this step's spikes, viewed as
        # [features, group], pass through a grouped conv1d into the next step's input.
        self.feedback = None
        if feedback_group:
            features = math.prod(self.shape) // feedback_group
            self.feedback = nn.Conv1d(features, features * feedback_group, feedback_group,
                                      groups=features)

    def reset(self) -> None:
        """Back to the initial state: the next call starts a new run."""
        self.states = None
        self.countdown = None
        self.carried = None   # ILC feedback for the next step
        self.kept = {}        # recordings of this run, per step
        self.recorded = {}

    def named_memories(self):
        """(name, tensor) of what a run carries from one call to the next: the states,
        the refractory countdown, the ILC feedback (snngrow's memories)."""
        yield from (self.states or {}).items()
        for name in ("countdown", "carried"):
            if getattr(self, name) is not None:
                yield name, getattr(self, name)

    def detach(self) -> None:
        """Cut what the run carries from the graph (truncated BPTT): the next call goes on
        from the same values, and a backward stops here."""
        if self.states is not None:
            self.states = {name: value.detach() for name, value in self.states.items()}
        for name in ("countdown", "carried"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).detach())

    def _init_states(self, like: torch.Tensor) -> None:
        """The states at the first step of a run, drawn once per run in declaration order
        (from `generator` in a seeded network)."""
        batch_shape = like.shape[: like.dim() - len(self.shape)]
        self.states = {name: fill(self.state_init[name], (*batch_shape, *self.shape), like,
                                  self.generator)
                       for name in self.state_names}
        if self.refractory:
            self.countdown = torch.zeros_like(like)

    def single_step(self, x: torch.Tensor,
                    channels: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """One step: input current [B, *shape] -> spikes; states, feedback and recordings
        carry over to the next call until reset(). `channels`: what connections deliver
        into states (`via ...(channel = ge)`), added to them before the step."""
        if self.states is None:
            self._init_states(x)
        for name, value in (channels or {}).items():
            self.states[name] = self.states[name] + value
        if self.carried is not None:
            x = x + self.carried
        spike = self._fused_step(x)
        if spike is None:
            before = self.states
            spike, after = self.step(x, *before.values(), *self.learnable.values())
            if self.refractory:
                spike, after = self._refractory(spike, before, after)
            self.states = dict(zip(self.state_names, after, strict=True))
        if self.feedback is not None:
            grouped = spike.reshape(-1, self.feedback.in_channels, self.feedback.kernel_size[0])
            self.carried = self.feedback(grouped).view(spike.shape)
        for name in self.record:
            self.kept.setdefault(name, []).append(self.states[name])
        return spike

    def _fused_step(self, x: torch.Tensor) -> torch.Tensor | None:
        """One step in the fused CPU kernels (one call, its backward in C too, the initial
        states' gradient included), when they apply; None: the reference step runs."""
        if (self.kernel is None or not fused.enabled() or x.device.type != "cpu"
                or self.feedback is not None):
            return None
        spikes = self._run_kernels(self.kernel, x.unsqueeze(0), None)
        return None if spikes is None else spikes[0]

    def _refractory(self, spike, before, after):
        """Frozen states and no spikes while the countdown runs (LANGUAGE.md §4.4)."""
        resting = self.countdown <= 0
        spike = spike * resting.to(spike.dtype)
        after = tuple(new if name in self.channels else torch.where(resting, new, old)
                      for name, new, old in zip(self.state_names, after, before.values(),
                                                strict=True))
        self.countdown = torch.where(spike.detach() > 0,
                                     torch.full_like(self.countdown, self.refractory),
                                     self.countdown - 1)
        return spike, after

    def finish(self) -> None:
        """Stack this run's recordings into `recorded` ([T, B, *shape] each)."""
        self.recorded = {name: torch.stack(values) for name, values in self.kept.items()}
        self.kept = {}

    def forward(self, x_seq: torch.Tensor,
                channels: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """[T, B, *shape] input current -> [T, B, *shape] spikes; the states named in
        `record` are kept in `recorded`; `channels` [T, B, *shape] each (single_step)."""
        fused_spikes = None if channels else self._fused(x_seq)
        if fused_spikes is not None:
            return fused_spikes
        spikes = torch.stack([self.single_step(x_t, {k: v[t] for k, v in (channels or {}).items()})
                              for t, x_t in enumerate(x_seq)])
        self.finish()
        return spikes

    def _fused(self, x_seq: torch.Tensor) -> torch.Tensor | None:
        """All T steps in the fused kernels, when they apply to this run."""
        source = self.kernel_cuda if x_seq.device.type == "cuda" else self.kernel
        if source is None or not fused.enabled() or self.states is not None or self.record:
            return None
        self._init_states(x_seq[0])
        carried = torch.zeros_like(x_seq[0]) if self.feedback is not None else None
        # None: the reference step runs from the states drawn above (drawn again, a seeded
        # run would start elsewhere where the kernels do not build than where they do)
        return self._run_kernels(source, x_seq, carried)

    def _run_kernels(self, source: str, x_seq: torch.Tensor,
                     carried: torch.Tensor | None) -> torch.Tensor | None:
        """x_seq's steps in the kernels of `source` from the current states (and the ILC
        feedback's `carried`, or None): the spikes, the states left for the next call;
        None where the kernels cannot run."""
        slots = [*self.states.values(), *([carried] if carried is not None else []),
                 *([self.countdown] if self.refractory else [])]
        result = fused.run(source, self.detach_reset, x_seq, slots,
                           list(self.learnable.values()), self.feedback)
        if result is None:
            return None
        spikes, final = result
        if self.refractory:
            self.countdown = final.pop()
        if carried is not None:
            self.carried = final.pop()
        self.states = dict(zip(self.state_names, final, strict=True))
        return spikes

    def extra_repr(self) -> str:
        return f"{self.name}: {list(self.shape)}, states {', '.join(self.state_names)}"
