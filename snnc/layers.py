"""SpikingJelly's and SpikingFlow's layers, for networks written in PyTorch beside the
generated ones (seeds 001 and 003).

Each takes SpikingJelly's `step_mode`: "s" (the default) runs one step, input [B, ...],
and a stateful layer keeps its states from call to call until `reset()`; "m" runs a
sequence [T, B, ...]. Stateful layers (Dropout, Dropout2d, SynapseFilter, NeuNorm, Delay)
carry their states in both modes, offer a generated network's `named_memories()`,
`memories()` and `detach()`, and `snnc.functional.reset_net` resets them.

The layers that are also ops of the language are the classes a built network holds:
`dropout(p)` is a Dropout, `channel_maxpool(k)` a ChannelsMaxPool, `dct(k)` a DCT and
`axat` an AXAT (snnc/runtime/layers.py). SynapseFilter runs the step the softbp backend
prints for `via filter(tau, learnable)`, and VotingLayer is the `voting(k)` readout's
grouping.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch
from torch import nn

from snnc import runtime
from snnc.ir.values import Spec
from snnc.runtime.layers import (
    AXAT,
    DCT,
    ChannelsMaxPool,
    Dropout,
    Memories,
    Stateful,
    StepModule,
    checked_step_mode,
)
from snnc.runtime.readouts import vote
from snnc.runtime.synapses import Synapse

__all__ = ["AXAT", "DCT", "ChannelsMaxPool", "Delay", "Dropout", "Dropout2d",
           "LowPassSynapse", "NeuNorm", "PrintShape", "PrintShapeModule", "SynapseFilter",
           "VotingLayer"]


class Dropout2d(Dropout):
    """Dropout of whole channels of [N, C, *spatial] (SpikingFlow's Dropout2d): one draw
    per sample and channel, held over the run until reset() as Dropout's."""

    def __init__(self, p: float = 0.2, step_mode: str = "s"):
        super().__init__(p, step_mode)

    def mask_shape(self, step: torch.Tensor) -> torch.Size:
        return torch.Size((*step.shape[:2], *[1] * (step.dim() - 2)))


@lru_cache(maxsize=64)
def printed_synapse(kind: str, **params) -> tuple[Callable, object]:
    """Synapse `kind`'s step function, and its folded equations, as the softbp backend
    writes them into a generated module: the registry's equations with `params` folded in
    (snnc.plan.lower), printed line by line (snnc.backends.steps) and laid out by the
    template generated modules use (torch/function.py.j2). The compiler's stages are
    imported here, by the first SynapseFilter made, so `import snnc.layers` stays light."""
    from snnc.backends.steps import synapse_function
    from snnc.plan.lower import folded_synapse
    from snnc.templating import templates
    folded = folded_synapse(Spec(kind, params))
    fn = {**synapse_function(folded), "name": f"synapse_{kind}",
          "doc": f"One step of the {kind} synapse (snnc.layers)."}
    source = templates().get_template("torch/function.py.j2").module.step(fn)
    namespace = {"torch": torch, "rt": runtime}  # what a generated module's step reads
    exec(compile(str(source), f"<snnc synapse {kind}>", "exec"), namespace)
    return namespace[fn["name"]], folded


class SynapseFilter(Memories, Synapse):
    """SpikingJelly's SynapseFilter (SpikingFlow's LowPassSynapse): the current
    I[t] = I[t-1] - (1 - S[t]) I[t-1] / tau + S[t], from 0 at reset(). With `learnable`,
    1/tau is learnt as sigmoid(w), w starting at -log(tau - 1) (so tau must exceed 1).
    Its step is the one `via filter(tau, learnable)` runs in a built network, printed
    from the same registry entry (snnc.registry.synapses)."""

    def __init__(self, tau: float = 100.0, learnable: bool = False, step_mode: str = "s"):
        if not tau > 1:
            raise ValueError(f"tau must exceed 1 step, got {tau}")
        step, folded = printed_synapse("filter", tau=float(tau), learnable=bool(learnable))
        super().__init__(step, dict(folded.states), dict(folded.learnable))
        self.tau, self.step_mode = float(tau), checked_step_mode(step_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.single_step(x) if self.step_mode == "s" else super().forward(x)

    def extra_repr(self) -> str:
        tau = 1.0 / torch.sigmoid(self.w.detach()).item() if self.learnable else self.tau
        return f"tau={tau:g}, learnable={bool(self.learnable)}, step_mode={self.step_mode}"


LowPassSynapse = SynapseFilter


class NeuNorm(Stateful):
    """NeuNorm (Wu et al., AAAI 2019, as SpikingJelly's), after the spiking neurons of a
    2-d convolution, on [N, C, H, W]: an auxiliary neuron per position integrates the
    spikes of all C channels, aux[t] = k aux[t-1] + (1 - k) / C² Σ_c X[t] (the paper's
    v/F from k + vF = 1), and the output is X[t] - w aux[t], with a learnable w per
    channel and position ([C, H, W], or [1, H, W] shared across channels)."""

    MEMORIES = ("aux",)

    def __init__(self, in_channels: int, height: int, width: int, k: float = 0.9,
                 shared_across_channels: bool = False, step_mode: str = "s"):
        super().__init__(step_mode)
        self.k, self.input_scale = k, (1.0 - k) / in_channels ** 2
        channels = 1 if shared_across_channels else in_channels
        self.w = nn.Parameter(torch.empty(channels, height, width))
        nn.init.kaiming_uniform_(self.w, a=5 ** 0.5)

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        aux = self.aux if self.aux is not None else x.new_zeros(x.shape[0], 1, *x.shape[2:])
        self.aux = self.k * aux + self.input_scale * x.sum(1, keepdim=True)
        return x - self.w * self.aux

    def multi_step(self, seq: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.single_step(x) for x in seq])

    def extra_repr(self) -> str:
        return f"k={self.k}, w={list(self.w.shape)}, step_mode={self.step_mode}"


class Delay(Stateful):
    """y[t] = x[t - delay_steps], zeros before the first steps (SpikingJelly's Delay). It
    keeps the last delay_steps inputs, so a run in chunks (or step by step) gives what
    one call gives."""

    MEMORIES = ("queue",)

    def __init__(self, delay_steps: int, step_mode: str = "s"):
        if isinstance(delay_steps, bool) or not isinstance(delay_steps, int) \
                or delay_steps < 0:
            raise ValueError(f"delay_steps must be an integer >= 0, got {delay_steps!r}")
        super().__init__(step_mode)
        self.delay_steps = delay_steps

    def multi_step(self, seq: torch.Tensor) -> torch.Tensor:
        if self.delay_steps == 0:
            return seq
        queue = self.queue if self.queue is not None \
            else seq.new_zeros(self.delay_steps, *seq.shape[1:])
        whole = torch.cat([queue, seq])
        self.queue = whole[-self.delay_steps:]
        return whole[:len(seq)]

    def extra_repr(self) -> str:
        return f"delay_steps={self.delay_steps}, step_mode={self.step_mode}"


class VotingLayer(StepModule):
    """The mean of each group of voting_size along the last axis, [..., C·voting_size]
    to [..., C] (SpikingJelly's VotingLayer), by the function the `voting(k)` readout
    applies to the firing rate. It maps any leading axes alike, so both step modes are
    the same map."""

    def __init__(self, voting_size: int = 10, step_mode: str = "s"):
        super().__init__(step_mode)
        self.voting_size = voting_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return vote(x, self.voting_size)

    def extra_repr(self) -> str:
        return f"voting_size={self.voting_size}, step_mode={self.step_mode}"


class PrintShape(StepModule):
    """Prints `ext_str` and the input's shape, and returns the input (SpikingJelly's
    PrintShapeModule, for debugging a model's shapes)."""

    def __init__(self, ext_str: str = "PrintShape", step_mode: str = "s"):
        super().__init__(step_mode)
        self.ext_str = ext_str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print(self.ext_str, x.shape)
        return x


PrintShapeModule = PrintShape
