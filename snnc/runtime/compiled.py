"""The clock backend's compiled whole-run loop, on the Python side: a Simulator's modules
gathered into the arrays of its network's loop (snnc.kernels.loop says what each holds;
templates/kernels/loop.c.j2 is the C), the loop built once per source and dtype through
runtime.native, and its results put back into the modules, so that step(), run(),
monitors, state_dict, reset() and a switch between this path and the PyTorch path in one
run all see one state.

The encoders and inputs are computed here in PyTorch, for a chunk of steps at a time
(EXTERNAL_BYTES), and passed in: Poisson spikes come from the encoder's own generator, as
on the PyTorch path (docs/RNG.md). The first step of a run from t = 0, which draws the
initial states, runs on the PyTorch path (Simulator.run). A seeded network therefore gives
the PyTorch path's spikes; an unseeded one draws from the global generator in another
order after that step where several modules draw (each encoder a chunk at a time, not
every module a step at a time).
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import torch

from snnc.kernels.abi import LOOP_ABI
from snnc.runtime import mt19937, native
from snnc.runtime.encoders import Constant, Poisson
from snnc.runtime.fused import REAL
from snnc.runtime.layers import SynapseDelays
from snnc.runtime.sparse import SparseLinear

# The encoders' and inputs' values that one call of the loop takes at most: the driver
# computes (and draws) this much at a time, so memory stays flat over a long run.
EXTERNAL_BYTES = 1 << 22
# The steps of one call at most, so that an interrupt (which Python sees between calls)
# comes soon; a call costs a pass over the synapses with per-synapse delays.
STEPS_PER_CALL = 1 << 14
# Encoders whose spikes at a step depend on that step's input alone: a chunk of steps at
# once gives what one call per step gives (latency and periodic read the first step's).
_STEPWISE = (Poisson, Constant)
# The address space one call's event buffers may take (run(sparse_spikes=True)): a call
# has at most this over 8 bytes, the batch and the widest node, steps.
EVENT_BYTES = 1 << 30
# The arguments made for each call, not gathered from the modules.
PER_CALL = ("external", "monitor", "events", "event_counts")
_FALLBACK = "the PyTorch path runs instead (the same spikes, slower)"
_FUNCTIONS = {"snnc_loop": (ctypes.c_int, [ctypes.c_int64] * 3 + [ctypes.c_int, ctypes.c_void_p,
                                                                    ctypes.c_void_p]),
              "snnc_loop_prepare": (ctypes.c_int, [ctypes.c_void_p,
                                                   ctypes.POINTER(ctypes.c_void_p)]),
              "snnc_loop_release": (None, [ctypes.c_void_p]),
              "snnc_loop_layout": (ctypes.c_char_p, [])}
# What snnc_loop_prepare makes depends on these arguments' values alone.
_PREPARED_FROM = ("delays", "offsets", "targets")


def enabled() -> bool:
    """SNNC_CLOCK_LOOP=0 keeps every Simulator on its PyTorch path."""
    return os.environ.get("SNNC_CLOCK_LOOP", "1") != "0"


def loop_for(sim) -> Loop | None:
    """The compiled loop that can run `sim` as it is now, or None where its PyTorch path
    must: no loop for its network, SNNC_CLOCK_LOOP=0, a device or dtype other than the
    CPU's float32 and float64, or a loop that does not build (one warning)."""
    source, like = type(sim).loop_source, sim.like
    if source is None or not enabled() or like.device.type != "cpu" or like.dtype not in REAL:
        return None
    return _loop(source, REAL[like.dtype], index_type(sim))


def index_type(sim) -> str:
    """The C type of the sparse ops' indices: int32_t unless one holds 2³¹ synapses or
    more (then all are passed as int64)."""
    wide = any(op.targets.dtype == torch.int64 for c in sim.connections.values()
               for op in c.modules() if isinstance(op, SparseLinear))
    return "int64_t" if wide else "int32_t"


@cache
def _loop(source: str, real: str, index: str) -> Loop | None:

    library = native.load_current(source, f"snnc_loop_abi = {LOOP_ABI};",
                                  functions=_FUNCTIONS,
                                  flags=(f"-DREAL={real}", f"-DINDEX={index}"),
                                  what="the clock backend's compiled loop", fallback=_FALLBACK)
    if library is None:
        return None
    dtype = torch.int64 if index == "int64_t" else torch.int32
    return Loop(library, [Entry(*e) for e in json.loads(library.snnc_loop_layout())], dtype)


@dataclass(frozen=True)
class Entry:
    """One argument of snnc_loop (snnc.kernels.loop.Arguments)."""

    kind: str
    owner: str                 # a node's or a connection's name
    detail: str                # a state's name, "spikes", an encoder's input, a source
    shape: list[int] | None    # per simulation (batched) or in all; None: known when it runs
    batched: bool

    def size(self, batch: int) -> int | None:
        """How many values it holds for `batch` simulations (None: known when it runs)."""
        if self.shape is None:
            return None
        return math.prod(self.shape) * (batch if self.batched else 1)


class Loop:
    """A network's loaded loop and what its arguments are."""

    def __init__(self, library: native.Library, layout: list[Entry], index: torch.dtype):
        self.library, self.layout, self.index = library, layout, index
        # per Simulator, what snnc_loop_prepare made for it, while its synapses stay
        self.prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def run(self, sim, inputs: Mapping[str, tuple[torch.Tensor, bool]], start: int,
            stop: int, out: Mapping[str, torch.Tensor], samples,
            events: Mapping[str, object]) -> None:
        """Steps start .. stop - 1 of a run() from the network's step sim.t: `inputs` as
        (values, given per step), the monitors into `out` ([steps, B, *shape] by key; a
        population's spikes zeroed before), the weights into `samples`
        (simulator.WeightSamples: a call ends wherever one is due), spikes recorded as
        events into `events` (simulator.SpikeEvents by "node.spikes")."""
        arrays = _Arrays(sim, self.layout, self.index)
        per_step = sim.batch_size * sim.like.element_size() * sum(
            math.prod(sim.shapes[e.owner]) for e in self.layout
            if e.kind == "external" and e.owner not in arrays.drawn)
        chunk = max(1, min(STEPS_PER_CALL, EXTERNAL_BYTES // max(1, per_step)))
        if events:  # a call's event buffers hold every neuron's spike at every step
            widest = max(math.prod(sim.shapes[key.partition(".")[0]]) for key in events)
            chunk = max(1, min(chunk, EVENT_BYTES // (8 * sim.batch_size * widest)))
        if samples.weights:
            chunk = min(chunk, samples.every)
        prepared = self._prepared(sim, arrays)
        t, lo = sim.t, start
        try:
            while lo < stop:
                hi = min(stop, lo + chunk)
                if samples.weights:  # up to the next sample
                    hi = min(hi, lo + samples.every - t % samples.every)
                self._call(sim, arrays, inputs, out, events, prepared, lo, hi, t)
                t, lo = t + hi - lo, hi
                if samples.weights and t % samples.every == 0:
                    arrays.put_weights()
                    samples.take()
        finally:  # what ran, even where an interrupt or an error stopped the run
            arrays.put_back(t)

    def _prepared(self, sim, arrays: _Arrays) -> int | None:
        """What the calls share (the synapses by delay), made again where the delays or
        the synapses changed since the last run (a state_dict loaded, say)."""
        key = tuple((t.data_ptr(), t._version) for e, t in zip(self.layout, arrays.tensors,
                                                               strict=True)
                    if e.kind in _PREPARED_FROM)
        held = self.prepared.get(sim)
        if held is not None and held.key == key:
            return held.handle
        self.prepared.pop(sim, None)
        handle = ctypes.c_void_p()
        pointers = [arrays.pointer(i, e, {}, {}, 0, 0, {}, {}) for i, e in enumerate(self.layout)]
        failed = self.library.snnc_loop_prepare((ctypes.c_void_p * len(pointers))(*pointers),
                                                ctypes.byref(handle))
        held = _Prepared(self.library, handle.value, key)
        _raise_for(failed)
        self.prepared[sim] = held
        return held.handle

    def _call(self, sim, arrays: _Arrays, inputs: Mapping[str, tuple[torch.Tensor, bool]],
              out: Mapping[str, torch.Tensor], events: Mapping[str, object],
              prepared: int | None, lo: int, hi: int, t: int) -> None:
        """The run's steps lo .. hi - 1 (the network's t ..) in one call of the loop."""
        external = {e.owner: _external(sim, e, inputs, lo, hi, t) for e in self.layout
                    if e.kind == "external" and e.owner not in arrays.drawn}
        buffers = {key: _event_buffers(sim.batch_size, hi - lo,
                                       math.prod(sim.shapes[key.partition(".")[0]]))
                   for key in events}
        # monitors of another dtype than the loop's (one-byte spikes): this call's steps in
        # the loop's, copied in after it
        staged = {key: sim.like.new_zeros(monitor[lo:hi].shape)
                  for key, monitor in out.items() if monitor.dtype != sim.like.dtype}
        pointers = [arrays.pointer(i, e, external, out, lo, hi, buffers, staged)
                    for i, e in enumerate(self.layout)]
        failed = self.library.snnc_loop(t, hi - lo, sim.batch_size, torch.get_num_threads(),
                                        (ctypes.c_void_p * len(pointers))(*pointers), prepared)
        _raise_for(failed)
        for key, values in staged.items():
            out[key][lo:hi] = values
        for key, (written, counts) in buffers.items():
            events[key].add_call(lo, hi - lo, written, counts)


class _Prepared:
    """What snnc_loop_prepare made, freed with its owner (a Loop's entry for one
    Simulator: a copy of the Simulator never shares it)."""

    def __init__(self, library: native.Library, handle: int | None, key: tuple):
        self.handle, self.key = handle, key
        weakref.finalize(self, library.snnc_loop_release, handle)


def _raise_for(failed: int) -> None:
    if failed == 2:
        raise ValueError("snnc: a sparse op's synapses (offsets, targets) are inconsistent")
    if failed:
        raise MemoryError("snnc: the compiled loop ran out of memory")


def _event_buffers(batch: int, steps: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Room for every spike a node could send in a call, per simulation, and their counts.
    Left uninitialised: only the pages the loop writes are ever touched, so the room costs
    address space, not memory (EVENT_BYTES bounds it)."""
    return torch.empty(batch * steps * n, dtype=torch.int64), torch.zeros(batch,
                                                                          dtype=torch.int64)


# ------------------------------------------------------------------ the arrays
class _Arrays:
    """The arrays of one Loop.run: each entry's tensor, gathered from the modules (copies
    of states, the connections' own weights), checked against the layout's sizes."""

    def __init__(self, sim, layout: list[Entry], index: torch.dtype):
        self.sim, self.layout, self.index = sim, layout, index
        self.batch, self.like = sim.batch_size, sim.like
        # the fixed-rate Poisson encoders the loop draws itself: those of one simulation
        # (a batch's draws interleave the simulations, which run side by side)
        self.drawn = {e.owner: _generator(sim.encoders[e.owner]) for e in layout
                      if e.kind == "generator" and self.batch == 1}
        self.tensors = [None if e.kind in PER_CALL else self._gather(e) for e in layout]
        # the sizes the loop relies on (it checks what the indices hold itself)
        synapses = {e.owner: int(tensor[-1]) for e, tensor in zip(layout, self.tensors,
                                                                  strict=True)
                    if e.kind == "offsets"}
        for e, tensor in zip(layout, self.tensors, strict=True):
            size = e.size(self.batch) if e.shape is not None else synapses.get(e.owner)
            if e.shape is None and e.batched and size is not None:
                size *= self.batch
            if tensor is not None and size is not None and tensor.numel() != size:
                raise ValueError(f"snnc: the {e.kind} of '{e.owner}' has {tensor.numel()} "
                                 "values, not what the compiled loop was built for")

    def pointer(self, i: int, e: Entry, external: dict, out: Mapping, lo: int, hi: int,
                events: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                staged: Mapping[str, torch.Tensor]) -> int | None:
        if e.kind == "external":
            return external[e.owner].data_ptr() if e.owner in external else None
        if e.kind == "monitor":
            key = f"{e.owner}.{e.detail}"
            if key in staged:  # this call's steps alone
                return staged[key].data_ptr()
            values = out.get(key)
            return None if values is None else values[lo:hi].data_ptr()
        if e.kind in ("events", "event_counts"):
            buffers = events.get(f"{e.owner}.{e.detail}")
            return None if buffers is None else buffers[e.kind == "event_counts"].data_ptr()
        tensor = self.tensors[i]
        return None if tensor is None else tensor.data_ptr()

    # ------------------------------------------------------------------ gathering
    def _gather(self, e: Entry) -> torch.Tensor | None:
        sim = self.sim
        if e.kind == "ring":
            return self._ring(e.owner)
        if e.kind in ("generator", "threshold"):
            return self._draws(e) if e.owner in self.drawn else None
        if e.kind in ("state", "countdown", "params", "counts"):
            return self._population(sim.populations[e.owner], e)
        connection = sim.connections[e.owner]
        op = weighted_op(connection)
        inner = op.inner if isinstance(op, SynapseDelays) else op
        if e.kind == "weight":
            return _shared(op.weight, self.like)
        if e.kind == "bias":
            return _shared(inner.bias, self.like)
        if e.kind in ("target_offsets", "by_target"):
            inner.target_index()
        if e.kind in ("offsets", "targets", "target_offsets", "by_target"):
            return getattr(inner, e.kind).to(self.index).contiguous()
        if e.kind == "delays":  # in the type the loop was rendered for (a no-op, as built)
            return op.delays.to(SynapseDelays.dtype_for(op.low, op.high)).contiguous()
        if e.kind in ("synapse_state", "synapse_params"):
            return self._synapse(connection, e)
        return self._trace(sim.rules[e.owner], e)

    def _ring(self, name: str) -> torch.Tensor:
        """[B, depth, n]: the node's History, step s in slot s % depth (zeros where it has
        sent nothing yet)."""
        history, depth = self.sim.history[name], self.sim.depths[name]
        ring = self.like.new_zeros(self.batch, depth, math.prod(self.sim.shapes[name]))
        for k, sent in enumerate(history.steps):
            ring[:, (history.first + k) % depth] = sent.reshape(self.batch, -1)
        return ring

    def _draws(self, e: Entry) -> torch.Tensor:
        """A drawn encoder's generator state, or its threshold (loop.c.j2's
        draw_poisson): Poisson.forward's u < p as an integer comparison of the draw's
        bits, u being k / 2^bits exactly (53 bits in float64, 24 in float32)."""
        generator = self.drawn[e.owner]
        if e.kind == "generator":
            return mt19937.state_words(generator)
        encoder = self.sim.encoders[e.owner]
        wide = encoder.generator is not None or self.like.dtype == torch.float64
        bits = 53 if wide else 24
        p = float(torch.tensor(encoder.rate, dtype=self.like.dtype))
        below = 0 if math.isnan(p) else min(2**bits, max(0, math.ceil(p * 2**bits)))
        return torch.tensor([below, int(wide)], dtype=torch.int64)

    def _population(self, pop, e: Entry) -> torch.Tensor:
        if pop.states is None:  # as single_step would, at its next call
            pop._init_states(self.like.new_zeros(self.batch, *pop.shape))
        if e.kind == "state":
            return _owned(pop.states[e.detail], self.like)
        if e.kind == "countdown":
            return _owned(pop.countdown, self.like)
        if e.kind == "params":
            return torch.stack([p.detach() for p in pop.learnable.values()]).to(self.like)
        counts = self.sim.spike_counts.get(pop.name)
        return (_owned(counts, self.like) if counts is not None
                else self.like.new_zeros(self.batch, *pop.shape))

    def _synapse(self, connection, e: Entry) -> torch.Tensor:
        syn = connection.synapse
        if e.kind == "synapse_params":
            return torch.stack([getattr(syn, n).detach() for n in syn.learnable]).to(self.like)
        if syn.states is None:  # as single_step would, at its first call
            return self.like.new_full((self.batch, *e.shape), syn.initial[e.detail])
        return _owned(syn.states[list(syn.initial).index(e.detail)], self.like)

    def _trace(self, rule, e: Entry) -> torch.Tensor:
        """STDP's traces (None before its first step: zeros, as update() makes them)."""
        if e.kind == "x_pre":
            weights = rule.weights()
            trace = rule.x_pre if rule.x_pre is not None else torch.zeros_like(weights)
            if trace.numel() != weights.numel():
                raise ValueError(f"snnc: the traces of '{e.owner}' do not fit its weights")
        else:
            trace = rule.x_post if rule.x_post is not None \
                else self.like.new_zeros(self.batch, *e.shape)
        return _owned(trace, self.like)

    # ------------------------------------------------------------------ putting back
    def put_weights(self) -> None:
        """The loop's weights into the connections, where it ran on copies (_shared)."""
        for e, tensor in zip(self.layout, self.tensors, strict=True):
            if e.kind == "weight":
                weight = weighted_op(self.sim.connections[e.owner]).weight
                if tensor.data_ptr() != weight.data_ptr():
                    weight.data.copy_(tensor.view_as(weight))

    def put_back(self, t: int) -> None:
        """The loop's results into the modules, the network at step t."""
        sim = self.sim
        self.put_weights()
        for e, tensor in zip(self.layout, self.tensors, strict=True):
            if e.kind == "generator" and tensor is not None:  # the stream goes on from here
                mt19937.put_state(self.drawn[e.owner], tensor)
        by_owner: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
        for e, tensor in zip(self.layout, self.tensors, strict=True):
            if e.kind == "ring":
                self._history(e.owner, tensor, t)
            elif e.kind in ("state", "synapse_state"):
                by_owner.setdefault((e.kind, e.owner), {})[e.detail] = self._shaped(e, tensor)
            elif e.kind == "countdown":
                sim.populations[e.owner].countdown = self._shaped(e, tensor)
            elif e.kind == "counts":
                sim.spike_counts[e.owner] = self._shaped(e, tensor)
            elif e.kind == "x_pre":
                sim.rules[e.owner].x_pre = tensor.view_as(sim.rules[e.owner].weights())
            elif e.kind == "x_post":
                sim.rules[e.owner].x_post = self._shaped(e, tensor)
        for e in self.layout:  # from the Histories just put back
            if e.kind == "delays":
                self._put_delayed(sim.connections[e.owner], e.detail, t)
        for (kind, owner), values in by_owner.items():
            if kind == "state":
                pop = sim.populations[owner]
                pop.states = {name: values[name] for name in pop.state_names}
            else:
                self._put_synapse(sim.connections[owner], values, t)
        sim.t = t

    def _shaped(self, e: Entry, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.view(self.batch, *e.shape) if e.batched else tensor.view(e.shape)

    def _history(self, name: str, ring: torch.Tensor, t: int) -> None:
        history, depth = self.sim.history[name], self.sim.depths[name]
        shape = (self.batch, *self.sim.shapes[name])
        first = max(0, t - depth)
        history.steps = deque((ring[:, s % depth].view(shape) for s in range(first, t)),
                              maxlen=history.steps.maxlen)
        history.first = first

    def _put_synapse(self, connection, values: dict[str, torch.Tensor], t: int) -> None:
        """A presynaptic synapse steps from the step its connection's delay first reaches
        (Connection.at): before it, its states stay unset."""
        syn = connection.synapse
        if syn.states is None and syn.presynaptic and t - 1 < connection.delay:
            return
        syn.states = tuple(values[name] for name in syn.initial)

    def _put_delayed(self, connection, source: str, t: int) -> None:
        """SynapseDelays keeps the inputs of its last high - low steps (what its op read
        from the source at s - low for the steps s before t): made again from the source's
        History, through the ops before it."""
        op = weighted_op(connection)
        before = list(connection.ops)[:list(connection.ops).index(op)]
        history = self.sim.history[source]
        steps = range(max(0, t - op.high), t - op.low)
        inputs = [_through(before, history[s]) for s in steps]
        op.history = [torch.stack(inputs)] if inputs else []


def _generator(encoder) -> torch.Generator:
    """What an encoder draws from: its own stream, or PyTorch's global one (init.draw)."""
    return encoder.generator if encoder.generator is not None else torch.default_generator


def _through(ops, x: torch.Tensor) -> torch.Tensor:
    for op in ops:
        x = op(x)
    return x


def weighted_op(connection):
    """The connection's weighted op (SynapseDelays around it, where it has one)."""
    return next(op for op in connection.ops if hasattr(op, "weight"))


def _owned(tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A contiguous copy in the run's dtype, which the loop may overwrite."""
    return tensor.detach().to(like.dtype).contiguous().clone()


def _shared(weight: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The tensor itself where the loop can use it in place (plasticity changes the
    weights in place, as on the PyTorch path), else a contiguous copy in the run's dtype,
    put back after the run."""
    data = weight.detach()
    return data if data.is_contiguous() and data.dtype == like.dtype \
        else data.to(like.dtype).contiguous()


def _external(sim, e: Entry, inputs: Mapping[str, tuple[torch.Tensor, bool]], lo: int,
              hi: int, t: int) -> torch.Tensor:
    """An input's or encoder's values for the run's steps lo .. hi - 1 (the network's
    t ..): [steps, B, *shape], contiguous."""
    if e.owner in sim.input_shapes:
        return _input_values(inputs[e.owner], lo, hi).contiguous()
    encoder = sim.encoders[e.owner]
    source = _input_values(inputs[e.detail], lo, hi) if e.detail else None
    count, batch = hi - lo, sim.batch_size
    if source is None or not inputs[e.detail][1] or isinstance(encoder, _STEPWISE):
        spikes = encoder(source, count, batch, sim.like, t)
    else:  # latency and periodic read their input's first step: one call per step
        spikes = torch.cat([encoder(source[k:k + 1], 1, batch, sim.like, t + k)
                            for k in range(count)])
    return spikes.to(sim.like.dtype).contiguous()


def _input_values(given: tuple[torch.Tensor, bool], lo: int, hi: int) -> torch.Tensor:
    values, per_step = given
    return values[lo:hi] if per_step else values.unsqueeze(0).expand(hi - lo, *values.shape)
