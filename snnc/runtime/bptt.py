"""softbp's compiled step-by-step run, on the Python side: a generated network that runs
step by step (it has a cycle) gives its whole forward to one native call and its backward
to another (templates/kernels/bptt.c.j2; snnc.kernels.bptt says what the arrays hold),
wrapped in one autograd Function, in place of a dozen autograd nodes per step.

The forward gives the PyTorch step path's spikes (its statements, in its order); the
backward gives what autograd gives through that path, to float tolerance (sums in another
order): to the weights, biases and learnable parameters, to the inputs, and to the states
a run starts from (so truncated BPTT and a call that goes on from the last one work as
on the PyTorch path). It runs on the CPU in float32 and float64 with the fused kernels on
(SNNC_FUSED; SNNC_BPTT=0 turns it alone off), where no population records a state (a
monitor of `v`, a readout that reads it); elsewhere the PyTorch path runs.
"""
from __future__ import annotations

import ctypes
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import torch
from torch.autograd.function import once_differentiable

from snnc.kernels.abi import BPTT_ABI
from snnc.runtime import fused, native
from snnc.runtime.compiled import index_type, weighted_op
from snnc.runtime.fused import REAL
from snnc.runtime.sparse import SparseLinear

_ARGS = [ctypes.c_int64] * 3 + [ctypes.c_int, ctypes.c_void_p]
_FUNCTIONS = {"snnc_bptt_forward": (ctypes.c_int, _ARGS),
              "snnc_bptt_backward": (ctypes.c_int, _ARGS),
              "snnc_bptt_layout": (ctypes.c_char_p, [])}
_FALLBACK = "the PyTorch step path runs instead (the same spikes, slower)"
# What the run's tensors are, by the layout's kinds: inputs a gradient can reach, and the
# states it carries to the next call.
_INPUTS = ("values", "state", "params", "weight", "bias", "synapse_state", "synapse_params")
_CARRIED = ("state", "countdown", "synapse_state")
# Gradients the backward adds per simulation ([B, ...]; the caller sums them).
_PER_SIMULATION = ("weight", "bias", "params", "synapse_params")
# What one segment's tape holds at most: the backward records and reverses the run a
# segment at a time, so its memory stays bounded however long the run (and fresh pages,
# which the kernel zeroes on first touch, stay few).
TAPE_BYTES = 1 << 23


def enabled() -> bool:
    return fused.enabled() and os.environ.get("SNNC_BPTT", "1") != "0"


@dataclass(frozen=True)
class Entry:
    """One argument of the compiled run (snnc.kernels.loop.Arguments)."""

    kind: str
    owner: str
    detail: str                # a state's name; a weight's connectivity
    shape: list[int] | None    # what a weight, bias or offsets must hold (None: any)


def run(net, external: Mapping[str, torch.Tensor], like: torch.Tensor
        ) -> dict[str, torch.Tensor] | None:
    """The spikes [T, B, *shape] of every population of `net` over the run of `external`
    (each input's and encoder's values, [T, B, *shape]), its states carried into the
    modules as single_step leaves them; None where the PyTorch path must run it."""
    source = getattr(type(net), "bptt_source", None)
    if source is None or not enabled() or like.device.type != "cpu" or like.dtype not in REAL:
        return None
    if any(pop.record or pop.carried is not None for pop in net.populations.values()):
        return None
    library = _library(source, REAL[like.dtype], index_type(net))
    if library is None:
        return None
    compiled = _Run(net, library, external, like)
    if not compiled.fits():
        return None
    outputs = _Function.apply(compiled, *compiled.inputs)
    spikes = compiled.put_back(outputs)
    compiled.release()
    return spikes


@cache
def _library(source: str, real: str, index: str) -> tuple | None:
    library = native.load_current(source, f"snnc_bptt_abi = {BPTT_ABI};",
                                  functions=_FUNCTIONS,
                                  flags=(f"-DREAL={real}", f"-DINDEX={index}"),
                                  what="softbp's compiled step-by-step run", fallback=_FALLBACK)
    if library is None:
        return None
    dtype = torch.int64 if index == "int64_t" else torch.int32
    layout = [Entry(kind, owner, detail, shape)
              for kind, owner, detail, shape, _ in json.loads(library.snnc_bptt_layout())]
    return library, layout, dtype


class _Run:
    """One run's arrays: the inputs gathered from the modules and `external`, and where
    each output goes."""

    def __init__(self, net, compiled: tuple, external: Mapping[str, torch.Tensor],
                 like: torch.Tensor):
        self.net, (self.library, self.layout, self.index) = net, compiled
        self.steps, self.batch = like.shape[:2]
        self.like = like
        # the populations in the order the run steps them (it draws their initial states)
        self.order = [e.owner for e in self.layout
                      if e.kind == "values" and e.owner in net.populations]
        for name in self.order:
            pop = net.populations[name]
            if pop.states is None:  # as single_step would, at the first step
                pop._init_states(like.new_zeros(self.batch, *pop.shape))
        self.keys = [(e.kind, e.owner, e.detail) for e in self.layout if e.kind in _INPUTS
                     and not (e.kind == "values" and e.owner in net.populations)]
        self.inputs = [self._input(kind, owner, detail, external)
                       for kind, owner, detail in self.keys]
        self.sizes = {e.owner: self._size(e.owner) for e in self.layout}

    def release(self) -> None:
        """What only the forward needs let go (the autograd graph keeps this object until
        the backward: it must not keep the network, its inputs or its states alive)."""
        self.like = self.like.new_empty(0)
        self.shapes = [(t.shape, t.dtype) for t in self.inputs]
        self.net = self.inputs = None

    def _input(self, kind: str, owner: str, detail: str,
               external: Mapping[str, torch.Tensor]) -> torch.Tensor:
        net, batch = self.net, self.batch
        if kind == "values":
            return external[owner]
        if kind == "state":
            return net.populations[owner].states[detail]
        if kind == "params":
            return torch.stack(list(net.populations[owner].learnable.values()))
        connection = net.connections[owner]
        if kind == "weight":
            return connection.weight
        if kind == "bias":
            return weighted_op(connection).bias
        syn = connection.synapse
        if kind == "synapse_params":
            return torch.stack([getattr(syn, n) for n in syn.learnable])
        if syn.states is None:  # as single_step would, at the first step
            return self.like.new_full((batch, *connection.out_shape), syn.initial[detail])
        return syn.states[list(syn.initial).index(detail)]

    def fits(self) -> bool:
        """Whether the modules are what the run was built for (a weighted op swapped for
        another, weights of another size or dtype: the PyTorch path runs them)."""
        if not all(t.dtype == self.like.dtype and t.device.type == "cpu" for t in self.inputs):
            return False
        given = dict(zip(self.keys, self.inputs, strict=True))
        for e in self.layout:
            if e.kind == "weight":
                op = weighted_op(self.net.connections[e.owner])
                if (e.detail == "sparse") != isinstance(op, SparseLinear):
                    return False
                if e.detail == "sparse" and not op.weight.numel() == op.targets.numel() \
                        == int(op.offsets[-1]):
                    return False
            if e.shape is not None and e.kind in ("weight", "bias", "offsets"):
                tensor = given.get((e.kind, e.owner, e.detail))
                if tensor is None:
                    tensor = getattr(weighted_op(self.net.connections[e.owner]), e.kind, None)
                if tensor is None or tensor.numel() != math.prod(e.shape):
                    return False
        return True

    def n(self, owner: str) -> int:
        """How many values a node or a connection's target has per step and simulation."""
        return self.sizes[owner]

    def _size(self, owner: str) -> int:
        if owner in self.net.populations:
            return math.prod(self.net.populations[owner].shape)
        if owner in self.net.connections:
            return math.prod(self.net.connections[owner].out_shape)
        return math.prod(self.net.input_shapes.get(owner) or self.net.encoders[owner].shape)

    def put_back(self, outputs: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        """The outputs into the modules (final states, countdowns) and the spikes by name."""
        out = dict(zip(self._output_keys(), outputs, strict=True))
        spikes = {}
        for name in self.order:
            pop = self.net.populations[name]
            spikes[name] = out["values", name, ""].view(self.steps, self.batch, *pop.shape)
            pop.states = {s: out["state", name, s].view(self.batch, *pop.shape)
                          for s in pop.state_names}
            if pop.refractory:
                pop.countdown = out["countdown", name, ""].view(self.batch, *pop.shape)
        for name, connection in self.net.connections.items():
            syn = connection.synapse
            if syn is not None:
                syn.states = tuple(out["synapse_state", name, s].view(
                    self.batch, *connection.out_shape) for s in syn.initial)
        return spikes

    def _output_keys(self) -> list[tuple[str, str, str]]:
        """The Function's outputs: every population's values, then the states it carries."""
        return [*(("values", name, "") for name in self.order),
                *((e.kind, e.owner, e.detail) for e in self.layout
                  if e.kind in _CARRIED)]

    # ------------------------------------------------------------------ the native calls
    def forward(self, inputs: tuple[torch.Tensor, ...]) -> tuple[dict, list[dict]]:
        """The forward's arrays by layout entry (the outputs made here), and the carried
        states where each segment of the run began (the backward's checkpoints)."""
        given = dict(zip(self.keys, inputs, strict=True))
        arrays = {}
        for e in self.layout:
            key = (e.kind, e.owner, e.detail)
            arrays[key] = self._forward_array(e, given.get(key))
        checkpoints = []
        for t0, steps in self._segments():
            checkpoints.append({key: arrays[key].clone() for key in arrays
                                if key[0] in _CARRIED})
            self._call("snnc_bptt_forward", arrays, t0, steps)
        return arrays, checkpoints

    def _segments(self) -> list[tuple[int, int]]:
        """The run in segments of as many steps as one tape holds (TAPE_BYTES): the
        backward runs each segment's forward again, recording it, then its reverse."""
        per_step = self.batch * self.like.element_size() * sum(
            self.n(e.owner) for e in self.layout if e.kind.startswith("tape_"))
        length = max(1, min(self.steps, TAPE_BYTES // max(1, per_step)))
        return [(t0, min(length, self.steps - t0)) for t0 in range(0, self.steps, length)]

    def _forward_array(self, e: Entry, given: torch.Tensor | None) -> torch.Tensor | None:
        steps, batch, like = self.steps, self.batch, self.like
        if e.kind.startswith(("grad_", "tape_")):
            return None
        if e.kind in ("state", "synapse_state"):  # carried: the run overwrites a copy
            return given.detach().reshape(batch, -1).contiguous().clone()
        if given is not None:
            return given.detach().reshape(-1).contiguous() if e.kind != "values" \
                else given.detach().reshape(steps, batch, -1).contiguous()
        if e.kind == "countdown":
            return self.net.populations[e.owner].countdown.detach().reshape(batch, -1) \
                .contiguous().clone()
        if e.kind in ("offsets", "targets"):
            return getattr(weighted_op(self.net.connections[e.owner]), e.kind) \
                .to(self.index).contiguous()
        return like.new_empty(steps, batch, self.n(e.owner))  # a population's spikes

    def backward(self, arrays: dict, checkpoints: list[dict],
                 grads: Mapping[tuple, torch.Tensor | None],
                 wanted: Mapping[tuple, bool]) -> dict:
        """The gradients by layout entry, from those reaching the outputs (`grads`):
        segment by segment from the last, each run forward again from its checkpoint
        (the same code on the same values: the same steps, bit for bit) onto the tape,
        then in reverse."""
        batch, like = self.batch, self.like
        segments = self._segments()
        arrays = dict(arrays)
        for e in self.layout:
            key = (e.kind, e.owner, e.detail)
            if e.kind.startswith("tape_"):
                arrays[key] = like.new_empty(segments[0][1], batch, self.n(e.owner))
            elif e.kind.startswith("grad_"):
                arrays[key] = self._gradient_array(e, arrays, grads, wanted)
        for (t0, steps), checkpoint in zip(reversed(segments), reversed(checkpoints),
                                           strict=True):
            arrays.update({key: value.clone() for key, value in checkpoint.items()})
            self._call("snnc_bptt_forward", arrays, t0, steps)
            self._call("snnc_bptt_backward", arrays, t0, steps)
        return arrays

    def _gradient_array(self, e: Entry, arrays: dict, grads: Mapping[tuple, torch.Tensor | None],
                        wanted: Mapping[tuple, bool]) -> torch.Tensor | None:
        """Where the backward adds the gradient of what `e` names: an output's starts as
        the gradient reaching it; a weight's or a parameter's is per simulation."""
        kind = e.kind[len("grad_"):]
        key = (kind, e.owner, e.detail)
        if kind == "values" and e.owner not in self.order and not wanted[key]:
            return None  # no gradient to this input
        shape = arrays[key].shape
        if kind in _PER_SIMULATION:
            shape = (self.batch, arrays[key].numel())
        gradient = grads.get(key)
        return (self.like.new_zeros(shape) if gradient is None
                else gradient.reshape(shape).to(self.like.dtype).contiguous().clone())

    def _call(self, function: str, arrays: dict, t0: int, steps: int) -> None:
        pointers = [None if (t := arrays[(e.kind, e.owner, e.detail)]) is None else t.data_ptr()
                    for e in self.layout]
        failed = getattr(self.library, function)(
            t0, steps, self.batch, torch.get_num_threads(),
            (ctypes.c_void_p * len(pointers))(*pointers))
        if failed == 2:
            raise ValueError("snnc: a sparse op's synapses (offsets, targets) are inconsistent")
        if failed:
            raise MemoryError("snnc: softbp's compiled run ran out of memory")


class _Function(torch.autograd.Function):
    """The whole run: the inputs (_Run.keys) in, every population's values and the carried
    states (_Run._output_keys) out. What the backward reads (the arrays and the
    checkpoints) is saved as autograd saves tensors: hooks see it, and a weight changed
    in place before the backward is an error, as elsewhere."""

    @staticmethod
    def forward(ctx, compiled: _Run, *inputs):
        arrays, checkpoints = compiled.forward(inputs)
        kept = [(key, t) for key, t in arrays.items() if t is not None]
        saved = [(k, key, t) for k, checkpoint in enumerate(checkpoints)
                 for key, t in checkpoint.items()]
        ctx.save_for_backward(*(t for _, t in kept), *(t for *_, t in saved))
        ctx.compiled, ctx.kept = compiled, [key for key, _ in kept]
        ctx.checkpoints = (len(checkpoints), [(k, key) for k, key, _ in saved])
        outputs = [arrays[key] for key in compiled._output_keys()]
        ctx.mark_non_differentiable(*(arrays[key] for key in compiled._output_keys()
                                      if key[0] == "countdown"))
        return tuple(outputs)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        compiled, saved = ctx.compiled, ctx.saved_tensors
        arrays = {e: None for e in ((e.kind, e.owner, e.detail) for e in compiled.layout)}
        arrays.update(zip(ctx.kept, saved, strict=False))
        count, where = ctx.checkpoints
        checkpoints = [{} for _ in range(count)]
        for (k, key), tensor in zip(where, saved[len(ctx.kept):], strict=True):
            checkpoints[k][key] = tensor
        reaching = dict(zip(compiled._output_keys(), grads, strict=True))
        wanted = dict(zip(compiled.keys, ctx.needs_input_grad[1:], strict=True))
        result = compiled.backward(arrays, checkpoints, reaching, wanted)
        out = []
        for key, (shape, dtype), want in zip(compiled.keys, compiled.shapes,
                                             ctx.needs_input_grad[1:], strict=True):
            gradient = result.get((f"grad_{key[0]}", key[1], key[2]))
            if not want or gradient is None:
                out.append(None)
                continue
            if key[0] in _PER_SIMULATION:
                gradient = gradient.sum(0)  # over the simulations
            out.append(gradient.reshape(shape).to(dtype))
        return (None, *out)
