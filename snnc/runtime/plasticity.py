"""Plasticity on the clock backend: trace STDP on one connection's weighted op, run from
the rule's generated step functions (printed from snnc.registry.rules).

Each synapse keeps its own presynaptic trace, as Brian2's `apre` is per synapse: with
per-synapse delays a source's spike reaches each of its synapses at its own step. The
postsynaptic trace is per target neuron (spikes reach it without delay). Every step, after
the network's spikes: the traces decay, then where a spike reached a synapse its trace
jumps and its weight changes (the pre pathway), then where the target fired its trace
jumps and the weights of its synapses change (the post pathway), as Brian2 orders a pre
and a post spike of the same step.

A rule may instead (registry.rules: `every_step`, `pre_spike`) jump the pre trace where the
source sends a spike, before any delay (SpikingFlow's pre_spike), and apply each pathway's
weight change to every synapse at every step, after its trace's jump (SpikingFlow's
STDPModule and STDPUpdater).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from snnc.runtime.batched import give_each_simulation
from snnc.runtime.layers import OneToOne, SynapseDelays
from snnc.runtime.simulator import History
from snnc.runtime.sparse import SparseLinear


class STDP(nn.Module):
    """`decay(x_pre, x_post)`, then per pathway `(trace, weight)`: `trace(x)` the jump of
    its side's trace, `weight(w, x_pre, x_post)` the new weight of each synapse, x_post
    seen per synapse. `before` maps the source's output to the weighted op's input (the
    ops before it: flatten). Holds no parameters of its own: the weights are the
    connection's (its state_dict keys stay the softbp module's). `every_step`: the weight
    changes apply to every synapse at every step; `pre_spike` "sent": the pre trace jumps
    where the source sends a spike, not where it reaches the synapse (plan.RuleStep).
    With `batch_size` B > 1 each simulation learns its own weights: the connection's become
    [B, *shape] (runtime.batched), and so do the traces."""

    def __init__(self, decay: Callable, pre: tuple[Callable, Callable],
                 post: tuple[Callable, Callable], connection: nn.Module, weighted: int,
                 every_step: bool = False, pre_spike: str = "arrived", batch_size: int = 1):
        super().__init__()
        if pre_spike not in ("arrived", "sent"):
            raise ValueError(f"pre_spike must be 'arrived' or 'sent', got {pre_spike!r}")
        self.decay, self.pre, self.post = decay, pre, post
        self.every_step, self.pre_spike = bool(every_step), pre_spike
        ops = list(connection.ops)
        # kept outside the module tree, so that the weights appear once in a state_dict
        self.__dict__["layer"] = ops[weighted]
        self.__dict__["before"] = ops[:weighted]
        self.delay = connection.delay
        # B simulations that learn learn each their own weights (runtime.batched)
        self.batched = batch_size > 1
        if self.batched:
            give_each_simulation(self._inner(), batch_size)
        self.reset()

    def reset(self) -> None:
        self.x_pre: torch.Tensor | None = None   # [B, *weight shape]
        self.x_post: torch.Tensor | None = None  # [B, *target shape]

    def weights(self) -> torch.Tensor:
        """The connection's weights as [B, *shape], a view: the weights of each simulation
        (one simulation: its connection's own [*shape] weights, with a batch axis)."""
        w = self.layer.weight
        return w if self.batched else w.unsqueeze(0)

    def update(self, source: History, post: torch.Tensor) -> None:
        """One step of learning: `source` the source's history (its last entry this
        step's), `post` the target's spikes [B, *out] this step."""
        w = self.weights()
        arrived = self._sent(source) if self.pre_spike == "sent" else self._arrived(source)
        if self.x_pre is None:
            self.x_pre, self.x_post = torch.zeros_like(w), torch.zeros_like(post)
        self.x_pre, self.x_post = self.decay(self.x_pre, self.x_post)
        trace, weight = self.pre
        self.x_pre = torch.where(arrived, trace(self.x_pre), self.x_pre)
        new = self._where(arrived, weight(w, self.x_pre, self._per_synapse(self.x_post)), w)
        fired = post != 0
        trace, weight = self.post
        self.x_post = torch.where(fired, trace(self.x_post), self.x_post)
        new = self._where(self._per_synapse(fired),
                          weight(new, self.x_pre, self._per_synapse(self.x_post)), new)
        w.copy_(new)

    def _where(self, at: torch.Tensor, changed: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """A pathway's new weights: where its spike is, or everywhere (`every_step`)."""
        return changed if self.every_step else torch.where(at, changed, w)

    # ------------------------------------------------------------------ per synapse
    # Every value below is per simulation: [B, ...], the weights' shape after B.
    def _arrived(self, source: History) -> torch.Tensor:
        """Where a presynaptic spike reaches each synapse this step."""
        inner = self._inner()
        if isinstance(self.layer, SynapseDelays):
            # the connection's delay is the least of them (SynapseDelays.low): sent[k] is
            # what the source sent delay + k steps ago
            lags = self.layer.high - self.layer.low + 1
            sent = source.stacked(self.delay + lags)[self.delay:]
            sent = torch.stack([self._input(s) for s in sent])         # [lags, B, in...]
            return self._by_delay(inner, sent, self.layer.delays - self.delay) != 0
        sent = source.stacked(self.delay + 1)[self.delay]
        return self._per_source(inner, self._input(sent)) != 0

    def _sent(self, source: History) -> torch.Tensor:
        """Where the source sends a spike this step, seen by each of its synapses."""
        sent = self._input(source.stacked(1)[0])
        return self._per_source(self._inner(), sent) != 0

    def _inner(self) -> nn.Module:
        return self.layer.inner if isinstance(self.layer, SynapseDelays) else self.layer

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.before:
            x = op(x)
        return x

    @staticmethod
    def _per_source(inner: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A value per source neuron [B, in], seen by each of its synapses."""
        if isinstance(inner, SparseLinear):
            return x[:, inner.sources().long()]
        if isinstance(inner, OneToOne):
            return x
        return x[:, None, :].expand(-1, inner.out_features, -1)       # dense [B, out, in]

    @staticmethod
    def _by_delay(inner: nn.Module, sent: torch.Tensor, delays: torch.Tensor) -> torch.Tensor:
        """What each synapse's source sent `delays` steps ago (sent: [lags, B, in...])."""
        if isinstance(inner, SparseLinear):
            at = sent[delays.long(), :, inner.sources().long()]
        elif isinstance(inner, OneToOne):
            flat = sent.reshape(*sent.shape[:2], -1)
            index = torch.arange(flat.shape[2], device=flat.device)
            at = flat[delays.reshape(-1).long(), :, index].view(*delays.shape, -1)
        else:
            columns = torch.arange(sent.shape[2], device=sent.device).expand(delays.shape)
            at = sent[delays.long(), :, columns]
        return at.movedim(-1, 0)  # indexing puts the synapses' axes before the batch's

    def _per_synapse(self, x: torch.Tensor) -> torch.Tensor:
        """A value per target neuron [B, *out], seen by each of its synapses."""
        inner = self._inner()
        if isinstance(inner, SparseLinear):
            return x[:, inner.targets.long()]
        if isinstance(inner, OneToOne):
            return x
        return x[:, :, None].expand(-1, -1, inner.in_features)


def synapse_sum(x: torch.Tensor) -> torch.Tensor:
    """The sum of `x` [B, ...] over a connection's synapses in each simulation (registry
    function `synapse_sum`, in a rule's f_w), shaped to broadcast against x, as the
    compiled loop sums (kernels.loop): in float64, one synapse after the other in the
    weights' order, rounded to x's dtype. (torch.sum adds in another order; cumsum adds
    in this one, for a float64 copy of x.)"""
    shape = (len(x), *[1] * (x.dim() - 1))
    if x[0].numel() == 0:
        return x.new_zeros(shape)
    flat = x.reshape(len(x), -1)
    return torch.cumsum(flat, 1, dtype=torch.float64)[:, -1].to(x.dtype).view(shape)
