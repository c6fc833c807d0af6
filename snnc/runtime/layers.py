"""Ops of a connection's pipeline that PyTorch lacks, and the connection itself.

A connection applies its ops to [T·B, ...] at once (so a convolution runs once
for all steps), then shifts the result by its delay along T.

The ops that are also SpikingJelly / SpikingFlow layers (Dropout, ChannelsMaxPool, AXAT,
DCT) are the classes snnc.layers offers: run alone they take SpikingJelly's `step_mode`
("s": one step [B, ...], "m": a sequence [T, B, ...]).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from snnc.limits import delay_bytes
from snnc.runtime.init import DrawsAtRunTime, draw, fill
from snnc.runtime.sparse import SparseLinear, resize_for_loading

STEP_MODES = ("s", "m")


def checked_step_mode(step_mode: str) -> str:
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be 's' (one step) or 'm' (a sequence), "
                         f"got {step_mode!r}")
    return step_mode


class StepAware(nn.Module):
    """Marks an op whose forward takes (x, steps): it needs T of the [T·B, ...] tensor."""


class StepModule(nn.Module):
    """A layer with SpikingJelly's step modes: "s" takes one step [B, ...], "m" a
    sequence [T, B, ...]."""

    def __init__(self, step_mode: str = "s"):
        super().__init__()
        self.step_mode = checked_step_mode(step_mode)


class PerSample(StepModule):
    """A stateless layer that maps each sample alone (`per_sample`, on [N, ...]): "m"
    flattens T into the batch, as SpikingJelly's seq_to_ann_forward does, so that a
    connection calls it on its [T·B, ...] at once."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "m":
            return self.per_sample(x.flatten(0, 1)).unflatten(0, x.shape[:2])
        return self.per_sample(x)


class Memories:
    """memories(): named_memories()'s tensors, as a generated network offers them."""

    def memories(self):
        for _, value in self.named_memories():
            yield value


class Stateful(Memories, StepModule):
    """A layer that carries states from call to call until reset(): the attributes named
    in MEMORIES, None until the first call. Both step modes carry them, so one "m" call
    of T steps gives what T "s" calls give, and a run may go on in chunks. It offers a
    generated network's memory API (named_memories, memories, detach), and
    snnc.functional.reset_net resets it."""

    MEMORIES: tuple[str, ...] = ()

    def __init__(self, step_mode: str = "s"):
        super().__init__(step_mode)
        self.reset()

    def reset(self) -> None:
        for name in self.MEMORIES:
            setattr(self, name, None)

    def named_memories(self):
        """(name, tensor) of the states it carries; empty after reset()."""
        for name in self.MEMORIES:
            value = getattr(self, name)
            if value is not None:
                yield name, value

    def detach(self) -> None:
        """Cut its states from the graph (truncated BPTT)."""
        for name, value in list(self.named_memories()):
            setattr(self, name, value.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.single_step(x) if self.step_mode == "s" else self.multi_step(x)

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        return self.multi_step(x.unsqueeze(0)).squeeze(0)


class Dropout(DrawsAtRunTime, StepAware, Stateful):
    """SNN dropout (SpikingFlow's and SpikingJelly's Dropout): the mask is drawn at a run's
    first step and held over all its steps until reset(), so that a dropped unit stays
    dropped for the whole run (a new mask each step would average dropout out over the
    run); what is kept is scaled by 1 / (1 - p). The identity in eval mode. A connection
    calls it on its [T·B, ...] with `steps` = T; a batch of another size draws anew."""

    MEMORIES = ("keep",)  # SpikingJelly's `mask`: what is kept, scaled

    def __init__(self, p: float = 0.5, step_mode: str = "s"):
        if not 0 <= p < 1:
            raise ValueError(f"p must lie in [0, 1), got {p}")
        super().__init__(step_mode)
        self.p = p

    def forward(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        if steps is None:
            return super().forward(x)
        return self.multi_step(x.view(steps, -1, *x.shape[1:])).view_as(x)

    def multi_step(self, seq: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return seq
        shape = self.mask_shape(seq[0])
        if self.keep is None or self.keep.shape != shape:
            kept = draw(shape, seq, self.generator,
                        lambda t, g: t.bernoulli_(1 - self.p, generator=g))
            self.keep = (kept / (1 - self.p)).to(seq.dtype)
        return seq * self.keep

    def mask_shape(self, step: torch.Tensor) -> torch.Size:
        """One draw per element of a step."""
        return step.shape

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Scale(nn.Module):
    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.c

    def extra_repr(self) -> str:
        return f"c={self.c}"


class Noise(DrawsAtRunTime, StepAware):
    """Gaussian noise on the current (SpikingFlow's GaussianLinear). A seeded network draws
    it step by step: normal_ draws in blocks of 16, so one draw for all T steps would differ
    from T draws of one step (a network run step by step)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        if self.generator is None:
            return x + torch.randn_like(x) * self.std
        per_step = x.view(steps, -1, *x.shape[1:])
        noise = torch.stack([draw(per_step.shape[1:], x, self.generator,
                                  lambda t, g: t.normal_(generator=g)) for _ in range(steps)])
        return x + noise.view_as(x).to(x.dtype) * self.std

    def extra_repr(self) -> str:
        return f"std={self.std}"


class OneToOne(nn.Module):
    """One weight per element: current = w * x."""

    def __init__(self, shape: tuple[int, ...], w=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(shape))
        if w is not None:
            with torch.no_grad():
                self.weight.copy_(fill(w, shape, self.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class ChannelsMaxPool(PerSample):
    """Max-pooling over the channel axis 1 of [N, C, *] (SpikingFlow's ChannelsMaxPool):
    `pool` is its nn.MaxPool1d, or k for kernel = stride = k."""

    def __init__(self, pool: int | nn.MaxPool1d, step_mode: str = "s"):
        super().__init__(step_mode)
        self.pool = pool if isinstance(pool, nn.MaxPool1d) else nn.MaxPool1d(pool, pool)

    def per_sample(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        moved = x.reshape(n, c, -1).transpose(1, 2)            # [N, L, C]
        return self.pool(moved).transpose(1, 2).reshape(n, -1, *x.shape[2:])


class AXAT(StepModule):
    """SpikingFlow's AXAT: Y = A X Aᵀ on the last two axes, A learnable [out, in]. It maps
    any leading axes alike, so both step modes are the same map."""

    def __init__(self, in_features: int, out_features: int, step_mode: str = "s"):
        super().__init__(step_mode)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight @ x @ self.weight.t()


def dct_matrix(size: int, block: int) -> torch.Tensor:
    """Block-diagonal orthonormal DCT-II of `block`×`block` blocks along an axis of
    `size`, in float64."""
    u = torch.arange(block, dtype=torch.float64).view(-1, 1)
    pos = torch.arange(block, dtype=torch.float64).view(1, -1)
    basis = torch.cos(torch.pi * (2 * pos + 1) * u / (2 * block)) * (2.0 / block) ** 0.5
    basis[0] /= 2 ** 0.5
    return torch.block_diag(*[basis] * (size // block))


class DCT(StepModule):
    """SpikingFlow's DCT: a blockwise orthonormal DCT of the last two axes, whose sizes
    must be multiples of `kernel_size` (an AXAT with fixed A on each side). Its matrices
    are built for the sizes, device and dtype it meets, once each; like AXAT, both step
    modes are the same map."""

    def __init__(self, kernel_size: int, step_mode: str = "s"):
        super().__init__(step_mode)
        self.kernel_size = kernel_size
        self._bases: dict[tuple, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._basis(x.shape[-2], x) @ x @ self._basis(x.shape[-1], x).t()

    def _basis(self, size: int, like: torch.Tensor) -> torch.Tensor:
        if size % self.kernel_size:
            raise ValueError(f"DCT of blocks of {self.kernel_size}: the last two axes must "
                             f"be multiples of it, got {list(like.shape[-2:])}")
        key = (size, like.device, like.dtype)
        if key not in self._bases:
            self._bases[key] = dct_matrix(size, self.kernel_size).to(like)
        return self._bases[key]

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


# Per-synapse delays by their width in bytes (snnc.limits.delay_bytes).
_DELAY_DTYPES = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


class SynapseDelays(Memories, StepAware):
    """A dense, sparse or one-to-one op whose synapses each have their own delay, drawn
    once from [low, high] (`delay uniform(a, b)`; the buffer `delays` holds them, shaped
    like the op's weight: [out, in] for dense, one per existing synapse for sparse).

    The part every synapse shares, `low`, delays the whole connection (Connection adds it
    to its own delay), so step mode reads a recurrent source only from steps it has sent;
    this op delays each synapse by the rest, d = delay - low. It keeps the inputs of the
    last high - low steps until reset(), which is all that can still arrive, so a run gives
    the same currents in one call of T steps (layer mode) or T calls of one step (step
    mode). A call runs the op once per delay that delivers something in it (d below the
    steps it sees, history included), over the steps it delivers to: at most
    min(distinct delays, T) ops, however wide the range.

    `delays` is of the smallest signed integer type that holds [low, high]
    (`dtype_for`: int8 up to 127 steps, int16 up to 32 767, int32 beyond), 1 to 4 bytes
    per synapse. The draw is the one of an int64 `torch.randint(low, high + 1, shape)`,
    value for value (docs/RNG.md): PyTorch's CPU kernel draws each element alike whatever
    the type (one 32-bit output of the generator below a range of 2²⁸, else 64 bits,
    `output % range + low` in int64) and only then casts it, which keeps it exact where
    it fits. A state_dict of another type (an int64 one, saved before) loads converted;
    one with a delay the type cannot hold is refused rather than wrapped."""

    def __init__(self, inner: nn.Module, low: int, high: int):
        super().__init__()
        self.inner, self.low, self.high = inner, int(low), int(high)
        self.register_buffer("delays", torch.randint(self.low, self.high + 1,
                                                     tuple(inner.weight.shape),
                                                     dtype=self.dtype_for(self.low, self.high)))
        self.reset()

    @staticmethod
    def dtype_for(low: int, high: int) -> torch.dtype:
        """The smallest of int8, int16, int32 (else int64) whose range holds [low, high]."""
        return _DELAY_DTYPES[delay_bytes(low, high)]

    def reset(self) -> None:
        self.history: list[torch.Tensor] = []  # [n, B, *in] blocks of steps, oldest first

    @property
    def weight(self) -> torch.Tensor:
        return self.inner.weight

    def named_memories(self):
        """(name, tensor) of the inputs of its last steps, which later steps deliver."""
        yield from ((f"history.{k}", block) for k, block in enumerate(self.history))

    def detach(self) -> None:
        """Cut the inputs it keeps from the graph (truncated BPTT)."""
        self.history = [block.detach() for block in self.history]

    def forward(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        blocks = [*self.history, x.view(steps, -1, *x.shape[1:])]
        timeline = _Timeline(self.delays, self.low, [len(b) for b in blocks], steps)
        out = self._delayed(timeline, blocks)
        self.history = _last_steps(blocks, self.high - self.low)
        bias = getattr(self.inner, "bias", None)
        out = out + bias if bias is not None else out
        return out.reshape(steps * out.shape[1], *out.shape[2:])

    def _delayed(self, timeline: _Timeline, blocks: list[torch.Tensor]) -> torch.Tensor:
        """The currents [steps, B, *out] of blocks [n, B, *in]."""
        weight = self.weight
        if weight.dim() == self.delays.dim():
            return _DelayedOp.apply(timeline, self._kind(), weight, *blocks)
        # a weight per simulation (runtime.batched): the op of each on its own inputs
        return torch.cat([_DelayedOp.apply(timeline, self._kind(), w,
                                           *(block[:, b:b + 1] for block in blocks))
                          for b, w in enumerate(weight.unbind(0))], dim=1)

    def _kind(self):
        """How the inner op maps inputs with a weight (see _Linear)."""
        if isinstance(self.inner, OneToOne):
            return _Elementwise
        if isinstance(self.inner, SparseLinear):
            return self.inner.synapses()
        return _Linear

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        key, dtype = prefix + "delays", self.dtype_for(self.low, self.high)
        incoming, info = state_dict.get(key), torch.iinfo(dtype)
        if isinstance(incoming, torch.Tensor) and incoming.numel() and incoming.dtype != dtype \
                and (incoming.min() < info.min or incoming.max() > info.max):
            error_msgs.append(f'While copying the buffer named "{key}": per-synapse delays in '
                              f"[{self.low}, {self.high}] are stored as {dtype}, which cannot "
                              f"hold {int(incoming.min())} .. {int(incoming.max())}")
            state_dict = {**state_dict, key: self.delays}  # left as they are
        else:  # a sparse op's state may hold another draw, with another count of synapses
            resize_for_loading(self, state_dict, prefix, ("delays",))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if self.delays.dtype != dtype:  # load_state_dict(assign=True) takes the tensor itself
            self.delays = self.delays.to(dtype)


class _Timeline:
    """Which delays deliver something in one call of SynapseDelays, and from which steps.
    The call reads `sizes` steps in blocks (the history kept, then its own `steps`)."""

    def __init__(self, delays: torch.Tensor, low: int, sizes: list[int], steps: int):
        self.delays, self.low, self.sizes, self.steps = delays, low, sizes, steps
        self.history = sum(sizes) - steps

    def groups(self):
        """(the synapses of one delay, the first step it delivers to, its pieces) for each
        delay that reaches this call: pieces are (block, start, stop, at), the rows
        start:stop of a block delivered to steps first + at onwards."""
        present = torch.bincount(self.delays.flatten())[self.low:self.low + sum(self.sizes)]
        for d in present.nonzero().flatten().tolist():
            first = max(0, d - self.history)
            source = self.history + first - d  # the step delivered to `first` was sent here
            yield self.delays == self.low + d, first, self._pieces(source, self.steps - first)

    def _pieces(self, start: int, count: int) -> list[tuple[int, int, int, int]]:
        pieces, offset = [], 0
        for block, size in enumerate(self.sizes):
            lo, hi = max(start, offset), min(start + count, offset + size)
            if lo < hi:
                pieces.append((block, lo - offset, hi - offset, lo - start))
            offset += size
        return pieces


class _Linear:
    """How a dense op maps [n, B, ..., in] to [n, B, ..., out] with weight [out, in]
    (snnc.runtime.sparse.Synapses does the same for a sparse op's weight vector)."""

    @staticmethod
    def out_shape(x: torch.Tensor, weight: torch.Tensor) -> tuple[int, ...]:
        return (*x.shape[:-1], weight.shape[0])

    apply = staticmethod(nn.functional.linear)

    @staticmethod
    def transpose(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return grad @ weight

    @staticmethod
    def weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return grad.reshape(-1, grad.shape[-1]).t() @ x.reshape(-1, x.shape[-1])


class _Elementwise:
    """How a one-to-one op maps [n, B, *shape] with one weight per element."""

    @staticmethod
    def out_shape(x: torch.Tensor, weight: torch.Tensor) -> tuple[int, ...]:
        return tuple(x.shape)

    apply = transpose = staticmethod(torch.mul)

    @staticmethod
    def weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (grad * x).sum((0, 1))


class _DelayedOp(torch.autograd.Function):
    """The currents of SynapseDelays: step t gets Σ_d op(x[t - d], weight ⊙ [delay = d]).
    Saves only its inputs, not the masked weight of each delay (a run step by step would
    keep one per delay and step): the backward masks the weight again."""

    @staticmethod
    def forward(ctx, timeline: _Timeline, kind, weight, *blocks):
        ctx.timeline, ctx.kind = timeline, kind
        ctx.save_for_backward(weight, *blocks)
        out = weight.new_zeros(timeline.steps, *kind.out_shape(blocks[-1], weight)[1:])
        for synapses, first, pieces in timeline.groups():
            masked = _masked(weight, synapses)
            for block, start, stop, at in pieces:
                rows = slice(first + at, first + at + stop - start)
                out[rows] += kind.apply(blocks[block][start:stop], masked)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        weight, *blocks = ctx.saved_tensors
        need_weight, need_blocks = ctx.needs_input_grad[2], ctx.needs_input_grad[3:]
        grad_weight = torch.zeros_like(weight) if need_weight else None
        grad_blocks = [None] * len(blocks)
        for synapses, first, pieces in ctx.timeline.groups():
            masked = _masked(weight, synapses)
            for block, start, stop, at in pieces:
                g = grad[first + at:first + at + stop - start]
                if need_blocks[block]:
                    if grad_blocks[block] is None:
                        grad_blocks[block] = torch.zeros_like(blocks[block])
                    grad_blocks[block][start:stop] += ctx.kind.transpose(g, masked)
                if need_weight:
                    grad_weight += _masked(ctx.kind.weight_grad(g, blocks[block][start:stop]),
                                           synapses)
        return None, None, grad_weight, *grad_blocks


def _masked(weight: torch.Tensor, synapses: torch.Tensor) -> torch.Tensor:
    """The weights of `synapses`, zeros elsewhere."""
    return torch.where(synapses, weight, 0.0)  # a third cheaper than weight * synapses


def _last_steps(blocks: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    """The blocks that hold the last `count` steps, the oldest one cut, oldest first."""
    kept: list[torch.Tensor] = []
    for block in reversed(blocks):
        if count <= 0:
            break
        kept.insert(0, block[-count:])
        count -= len(kept[0])
    return kept


class Connection(nn.Module):
    """SRC's output sequence -> DST's input current sequence: ops, delay, synapse."""

    def __init__(self, name: str, ops: list[nn.Module], out_shape: tuple[int, ...],
                 delay: int = 0, synapse: nn.Module | None = None):
        super().__init__()
        self.name = name
        self.ops = nn.Sequential(*ops)
        self.out_shape = tuple(out_shape)
        # The delay all synapses of a per-synapse op share is the connection's (see
        # SynapseDelays): delivered at t is what the source sent at t - delay or before.
        self.delay = int(delay) + sum(op.low for op in ops if isinstance(op, SynapseDelays))
        self.synapse = synapse

    @property
    def weight(self) -> torch.Tensor:
        """The weights of the connection's weighted op: [out, in] for dense, for sparse
        the vector of its existing synapses' (SparseLinear.dense_weight() gives [out, in])."""
        for op in self.ops:
            if hasattr(op, "weight") and not isinstance(op, nn.modules.batchnorm._BatchNorm):
                return op.weight
        raise AttributeError(f"connection '{self.name}' has no weights")

    @property
    def presynaptic(self) -> bool:
        """Whether the synapse acts on the source's spikes (STP) rather than the current."""
        return getattr(self.synapse, "presynaptic", False)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        if self.presynaptic:
            seq = self.synapse(seq)
        out = delay_sequence(self.through_ops(seq), self.delay)
        return self.synapse(out) if self.synapse is not None and not self.presynaptic else out

    def through_ops(self, seq: torch.Tensor) -> torch.Tensor:
        """[T, B, *in] through the ops alone, [T, B, *out]: no delay, no synapse."""
        steps, batch = seq.shape[:2]
        x = seq.reshape(steps * batch, *seq.shape[2:])
        for op in self.ops:
            x = op(x, steps) if isinstance(op, StepAware) else op(x)
        return x.reshape(steps, batch, *self.out_shape)

    def at(self, source, t: int, like: torch.Tensor) -> torch.Tensor:
        """Step mode: the current delivered at step t, from what the source sent at
        t - delay. `source` is a [T, B, ...] tensor or the list of the source's steps so far;
        `like` is any [T, B, ...] tensor of the run (for batch, dtype and device)."""
        index = t - self.delay
        if index < 0:
            x = like.new_zeros(like.shape[1], *self.out_shape)
        else:
            x = source[index]
            if self.presynaptic:  # called once per step, so the synapse sees every spike once
                x = self.synapse.single_step(x)
            for op in self.ops:
                x = op(x, 1) if isinstance(op, StepAware) else op(x)
        if self.presynaptic:
            return x
        return self.synapse.single_step(x) if self.synapse is not None else x


def delay_sequence(seq: torch.Tensor, delay: int) -> torch.Tensor:
    """What arrives at step t is what was sent at t - delay (zeros before)."""
    if delay == 0:
        return seq
    if delay >= seq.shape[0]:
        return torch.zeros_like(seq)
    return torch.cat([torch.zeros_like(seq[:delay]), seq[:-delay]])
