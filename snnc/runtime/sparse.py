"""`sparse(p)`: a linear map that stores only the synapses that exist.

Layout: compressed rows by source (CSR of Wᵀ, W being the [out, in] matrix of nn.Linear).
The synapses of source i are offsets[i]:offsets[i + 1], their targets ascending;
targets[s] is the target of synapse s and weight[s] its weight, so a state_dict holds
4 bytes of index and one value per synapse (plus in + 1 offsets). By source, because a
spike is an event at its source: what it reaches is one contiguous slice, which is how
the forward on spikes runs here and how an event-driven simulator propagates; and the
gradient to the input (per source, a sum over its targets) is a CSR product as stored.
Only the forward on a dense input wants the other order (per target, its sources): that
index (`by_target`, `target_offsets`, `target_sources`) is derived from the stored one at
its first use, kept beside it and never saved; a simulation that only propagates spikes
(the clock backend without STDP) never makes it, and keeps 8 bytes less per synapse.

On spikes, the forward and the weight gradient visit only the synapses that the input's
nonzeros reach (events); on denser input they, and always the gradient to the input, are
PyTorch's sparse CSR products (MKL on the CPU, cuSPARSE on CUDA). Either way they cost in
proportion to the synapses (times the rows, at most), and no dense out × in matrix is
ever made, not even while drawing which synapses exist.
"""
from __future__ import annotations

import ctypes
import math
import warnings
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from snnc.resources import data_dir
from snnc.runtime import fused, native
from snnc.runtime.batched import per_simulation
from snnc.runtime.fused import ptr

# The forward and the weight gradient go through the synapses that the input's nonzeros
# reach (events: spikes) while those are few: up to this fraction of all rows × synapses,
# past which the compressed products over every synapse are faster (about 0.5–1 % where
# there are many rows, more for one; benchmarks/sparse.py), and up to this many at once,
# about 56 bytes each while they are listed.
EVENT_DENSITY = 0.005
MAX_EVENT_SYNAPSES = 2**20


def draw_synapses(sources: int, targets: int, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of the sources × targets potential synapses exist, each independently with
    probability p: (offsets [sources + 1], targets [count]), by source, targets ascending.
    Indices are int32 below 2³¹ synapses (a target always fits), int64 from there.

    The draw, for the random-number contract: number the potential synapses source-major,
    k = source · targets + target, for n = sources · targets. Whether each exists is a
    Bernoulli(p) sequence over k, whose gaps from one existing synapse to the next (the
    first counted from k = -1) are independent Geometric(p) numbers on {1, 2, ...}. They
    come from PyTorch's global CPU generator (seeded by the network's `seed`) in rounds of
    `_round_size(n, p)` values, each round one call
    `torch.empty(size, dtype=torch.float64).geometric_(p)`, until the gaps drawn add up
    to n or more; the existing synapses are at the running sums less one that lie below
    n, and the rest of the last round is discarded. p = 0 and p = 1 draw nothing. It costs
    time and memory in proportion to the synapses that exist, not to n."""
    n = sources * targets
    if p <= 0 or n == 0:
        positions = torch.zeros(0, dtype=torch.int64)
    elif p >= 1:
        positions = torch.arange(n)
    else:
        positions = _bernoulli_positions(n, p)
    index = torch.int32 if len(positions) < 2**31 else torch.int64
    offsets = torch.zeros(sources + 1, dtype=torch.int64)
    offsets[1:] = torch.bincount(positions // targets, minlength=sources).cumsum(0)
    return offsets.to(index), (positions % targets).to(index)


def _bernoulli_positions(n: int, p: float) -> torch.Tensor:
    """The successes, ascending, of n Bernoulli(p) trials drawn as geometric gaps."""
    size, rounds, last = _round_size(n, p), [], -1
    while last < n - 1:
        gaps = torch.empty(size, dtype=torch.float64).geometric_(p).to(torch.int64)
        rounds.append(gaps.cumsum_(0).add_(last))  # in place: memory is the limit here
        last = int(rounds[-1][-1])
    positions = rounds[0] if len(rounds) == 1 else torch.cat(rounds)
    return positions[positions < n]


def _round_size(n: int, p: float) -> int:
    """Gaps per round: six standard deviations past the expected count, so one round
    nearly always suffices; never more than n + 1, which always does (each gap is >= 1)."""
    return min(n + 1, math.ceil(n * p + 6 * math.sqrt(n * p * (1 - p))) + 16)


@dataclass(frozen=True)
class Synapses:
    """The synapses of a SparseLinear, and the products of a weight vector over them.
    It is the interface by which SynapseDelays runs an op once per delay (out_shape,
    apply, transpose, weight_grad, as its _Linear for dense): inputs are [..., in]."""

    in_features: int
    out_features: int
    offsets: torch.Tensor         # [in + 1]: by source, where its synapses begin
    targets: torch.Tensor         # [S]
    target_offsets: torch.Tensor  # [out + 1]: by target, where its synapses begin
    by_target: torch.Tensor       # [S]: the synapses in target order (a permutation)
    target_sources: torch.Tensor  # [S]: their sources, in that order

    def out_shape(self, x: torch.Tensor, weight: torch.Tensor) -> tuple[int, ...]:
        return (*x.shape[:-1], self.out_features)

    def apply(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """x Wᵀ: from spikes through the synapses of the sources that spiked."""
        rows = x.reshape(-1, self.in_features).contiguous()
        if self._few_events(rows):
            out = rows.new_zeros(rows.shape[0] * self.out_features)
            kernels = _kernels(rows, weight, self.offsets)
            if kernels is not None:
                weight = weight.contiguous()
                kernels.sparse_events_forward(*self._native(rows), ptr(weight),
                                              self.out_features, ptr(out))
            else:
                synapse, element, value = self._events(rows)
                out.index_add_(0, element, value * weight[synapse])
        else:
            out = (self._by_target(weight) @ rows.t()).t()
        return out.reshape(self.out_shape(x, weight))

    def transpose(self, grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """grad W: the gradient to the input (grad is dense: the surrogate's, everywhere)."""
        rows = grad.reshape(-1, self.out_features)
        return (self._by_source(weight) @ rows.t()).t().reshape(*grad.shape[:-1],
                                                                self.in_features)

    def weight_grad(self, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per synapse (i -> j), the sum over rows of x[:, i] · grad[:, j]."""
        rows = x.reshape(-1, self.in_features).contiguous()
        grad = grad.reshape(-1, self.out_features).contiguous()
        if self._few_events(rows):
            out = grad.new_zeros(len(self.targets))
            kernels = _kernels(rows, grad, self.offsets)
            if kernels is not None:
                kernels.sparse_events_weight_grad(*self._native(rows), ptr(grad),
                                                  self.out_features, ptr(out))
                return out
            synapse, element, value = self._events(rows)
            picked = grad.reshape(-1)[element]
            return out.index_add_(0, synapse, value * picked)
        # (xᵀ grad) sampled where synapses exist; the term it adds is zeros, not the
        # weights: beta = 0 still multiplies them, and a NaN weight would leak through
        zeros = self._by_source(grad.new_zeros(len(self.targets)))
        return torch.sparse.sampled_addmm(zeros, rows.t(), grad).values()

    def _few_events(self, rows: torch.Tensor) -> bool:
        """Whether the nonzeros of `rows` reach few synapses (see EVENT_DENSITY)."""
        reached = int(torch.count_nonzero(rows)) * len(self.targets) / self.in_features
        return reached <= min(EVENT_DENSITY * rows.shape[0] * len(self.targets),
                              MAX_EVENT_SYNAPSES)

    def _native(self, rows: torch.Tensor) -> tuple:
        """The leading arguments of both kernels: the input's rows (contiguous, held by
        the caller across the call) and the synapses."""
        return (ptr(rows), rows.shape[0], self.in_features, ptr(self.offsets),
                ptr(self.targets))

    def _events(self, rows: torch.Tensor):
        """Each synapse that a nonzero of `rows` [N, in] reaches, with the element of the
        flattened [N, out] output it adds to and the nonzero's value."""
        row, source = rows.nonzero(as_tuple=True)
        first = self.offsets[source].long()
        count = self.offsets[source + 1].long() - first
        # the nonzeros × the largest fan-out among them, cut to each one's own: a few ops
        # that stay on one thread at these sizes (repeat_interleave wakes every thread
        # even for three events, which costs milliseconds on a busy machine)
        width = int(count.max()) if len(count) else 0
        reach = torch.arange(width, device=rows.device) < count[:, None]
        event, step = reach.nonzero(as_tuple=True)
        synapse = first[event] + step
        return (synapse, row[event] * self.out_features + self.targets[synapse],
                rows[row, source][event])

    def _by_source(self, values: torch.Tensor) -> torch.Tensor:
        """Wᵀ [in, out] with one value per synapse, in stored order."""
        return torch.sparse_csr_tensor(self.offsets, self.targets, values,
                                       (self.in_features, self.out_features),
                                       check_invariants=False)

    def _by_target(self, weight: torch.Tensor) -> torch.Tensor:
        """W [out, in]: the weights gathered into target order."""
        return torch.sparse_csr_tensor(self.target_offsets, self.target_sources,
                                       weight.index_select(0, self.by_target),
                                       (self.out_features, self.in_features),
                                       check_invariants=False)


_POINTER, _I64 = ctypes.c_void_p, ctypes.c_int64
_FUNCTIONS = {  # templates/kernels/sparse_events.c
    name: (None, [_POINTER, _I64, _I64, _POINTER, _POINTER, _POINTER, _I64, _POINTER])
    for name in ("sparse_events_forward", "sparse_events_weight_grad")}


@cache
def _library(real: torch.dtype, index: torch.dtype) -> native.Library | None:
    source = (data_dir("templates") / "kernels" / "sparse_events.c").read_text()
    flags = (f"-DREAL={fused.REAL[real]}",
             f"-DINDEX={'int32_t' if index == torch.int32 else 'int64_t'}")
    return native.load(source, functions=_FUNCTIONS, flags=flags,
                       what="the spike kernels of sparse",
                       fallback="PyTorch's operations run instead (same results, slower)")


def _kernels(rows: torch.Tensor, other: torch.Tensor, offsets: torch.Tensor
             ) -> native.Library | None:
    """The event kernels for these tensors, where they apply (CPU, one float dtype, the
    fused kernels not switched off), else None: the PyTorch path."""
    if (not fused.enabled() or rows.device.type != "cpu" or rows.dtype not in fused.REAL
            or other.dtype != rows.dtype or offsets.dtype not in (torch.int32, torch.int64)):
        return None
    return _library(rows.dtype, offsets.dtype)


class _SparseProduct(torch.autograd.Function):
    """x Wᵀ over the synapses; saves x (in a network, a population's spikes, which are
    kept anyway) and the weight vector, never a product."""

    @staticmethod
    def forward(ctx, synapses: Synapses, x, weight):
        ctx.synapses = synapses
        ctx.save_for_backward(x, weight)
        return synapses.apply(x, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        synapses, (_, need_x, need_weight) = ctx.synapses, ctx.needs_input_grad
        return (None, synapses.transpose(grad, weight) if need_x else None,
                synapses.weight_grad(grad, x) if need_weight else None)


class SparseLinear(nn.Module):
    """x Wᵀ for x [..., in], where each synapse of W [out, in] exists with probability p
    and only those that exist are stored (see the module's docstring for the layout).

    `weight` is the learnable vector of their weights, one per synapse in stored order;
    `dense_weight()` gives W. The synapses are fixed: load_state_dict takes another
    draw's whole (weight, offsets, targets), resizing them, and derives its by-target
    index again.

    Draws, from PyTorch's global CPU generator, in this order: the synapses
    (draw_synapses), then their S weights as nn.Linear's default, one call
    `torch.empty(S).uniform_(-1 / √in, 1 / √in)` in stored order. (The factory then
    applies `w`, as for dense: a number draws nothing, uniform or normal one call of S
    values in stored order; per-synapse delays come after, one randint of S values.)"""

    def __init__(self, in_features: int, out_features: int, p: float):
        super().__init__()
        self.in_features, self.out_features, self.p = in_features, out_features, p
        offsets, targets = draw_synapses(in_features, out_features, p)
        self.register_buffer("offsets", offsets)
        self.register_buffer("targets", targets)
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(len(targets)).uniform_(-bound, bound))

    @property
    def synapse_count(self) -> int:
        return len(self.targets)

    def sources(self) -> torch.Tensor:
        """The source of each synapse, in stored order (int64)."""
        return torch.repeat_interleave(torch.arange(self.in_features, device=self.offsets.device),
                                       self.offsets.diff().long())

    def dense_weight(self, values: torch.Tensor | None = None) -> torch.Tensor:
        """W [out, in] of `values` (one per synapse in stored order; the weights by
        default), zeros where no synapse exists; differentiable in `values`. For
        inspecting and comparing: the forward never makes it."""
        values = self.weight if values is None else values
        dense = values.new_zeros(self.out_features, self.in_features)
        return dense.index_put((self.targets.long(), self.sources()), values)

    def synapses(self) -> Synapses:
        target_offsets, by_target, target_sources = self.target_index()
        return Synapses(self.in_features, self.out_features, self.offsets, self.targets,
                        target_offsets, by_target, target_sources)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.dim() == 2:  # a weight vector per simulation [B, S] (runtime.batched)
            return per_simulation(self._product, x, self.weight)
        return self._product(x, self.weight)

    def _product(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return _SparseProduct.apply(self.synapses(), x, weight)

    def target_index(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(target_offsets, by_target, target_sources): the synapses in target order,
        made at the first call after building or loading (buffers that are not saved, so
        they follow the module's device)."""
        if getattr(self, "by_target", None) is None:
            self._index_by_target()
        return self.target_offsets, self.by_target, self.target_sources

    def _index_by_target(self) -> None:
        """The synapses in target order (sources ascending within a target, as the stored
        order is), for the forward on dense input."""
        index = self.targets.dtype
        order = torch.argsort(self.targets, stable=True).to(index)
        counts = torch.bincount(self.targets, minlength=self.out_features)
        target_offsets = torch.zeros(self.out_features + 1, dtype=torch.int64,
                                     device=counts.device)
        target_offsets[1:] = counts.cumsum(0)
        self.register_buffer("by_target", order, persistent=False)
        self.register_buffer("target_offsets", target_offsets.to(index), persistent=False)
        self.register_buffer("target_sources", self.sources().to(index)[order],
                             persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        resize_for_loading(self, state_dict, prefix, ("weight", "offsets", "targets"))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        for name in ("by_target", "target_offsets", "target_sources"):
            self._buffers.pop(name, None)  # made again from what was loaded, when used

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"p={self.p:g}, synapses={self.synapse_count}")


def resize_for_loading(module: nn.Module, state_dict: dict, prefix: str,
                       names: tuple[str, ...]) -> None:
    """Give the tensors `names` of `module` the shapes they have in `state_dict`, so
    that another draw of synapses (a different count) loads in place of this one. The
    Parameter stays the same object (an optimiser made before still holds it)."""
    for name in names:
        incoming, own = state_dict.get(prefix + name), getattr(module, name)
        # an [out, in] weight of another layout keeps its size mismatch (and its error)
        if incoming is not None and incoming.dim() == own.dim() and incoming.shape != own.shape:
            own.data = torch.empty(incoming.shape, dtype=own.dtype, device=own.device)


def _spend_beta_warning() -> None:
    """PyTorch warns once per process that its sparse CSR tensors are in beta: spent
    here, where nobody sees it, rather than in the middle of a user's run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.zeros(1, 1).to_sparse_csr()


_spend_beta_warning()
