"""What every network the clock backend generates inherits: a step-by-step simulation of B
independent copies side by side, with bounded histories for delays, spike counts and
monitors (Brian2's Network and SpikingFlow's Simulator).

A generated subclass defines `advance(inputs)`, one step of the network (encoders,
populations in schedule order, plasticity), and the class attributes below. `run()` runs
the network's compiled whole-run loop (runtime.compiled) where it has one that runs here,
else `advance` step by step (the PyTorch path; SNNC_CLOCK_LOOP=0 forces it): both give
the same spikes and leave the same state.
"""
from __future__ import annotations

import abc
import math
from collections import deque
from collections.abc import Mapping

import torch

from snnc.limits import format_bytes, max_memory_bytes
from snnc.runtime import compiled
from snnc.runtime.batched import broadcast_loaded
from snnc.runtime.network import Network

BYTES_PER_VALUE = 4  # monitors are kept in the network's dtype, float32 unless changed
# How often run() samples a monitored connection's weights, in steps, unless told: 0.1 s
# at Brian2's default dt, a thousand samples over Song-Miller-Abbott's 100 s.
WEIGHT_EVERY = 1000


class History:
    """The last `depth` steps a node sent, by step index since reset: what its outgoing
    connections may still deliver (a delay of d reads step t - d)."""

    def __init__(self, depth: int):
        self.steps: deque[torch.Tensor] = deque(maxlen=max(1, depth))
        self.first = 0  # the step index of steps[0]

    def append(self, x: torch.Tensor) -> None:
        if len(self.steps) == self.steps.maxlen:
            self.first += 1
        self.steps.append(x)

    def __getitem__(self, t: int) -> torch.Tensor:
        return self.steps[t - self.first]

    def stacked(self, lags: int) -> torch.Tensor:
        """[lags, ...]: what was sent 0, 1, ..., lags - 1 steps before the last step
        (zeros before the first); called after a step was sent."""
        recent = list(self.steps)[::-1][:lags]
        zeros = [torch.zeros_like(recent[0])] * (lags - len(recent))
        return torch.stack([*recent, *zeros])


class Simulator(Network, metaclass=abc.ABCMeta):
    """`Net(batch_size=B)`; `step(**inputs)`, `run(steps, **inputs)`, `reset()`."""

    dt_ms: float = 1.0
    #: the file's monitors, "pop.var"
    monitor_keys: tuple[str, ...] = ()
    #: node -> its shape, and how many of its past steps its connections read
    shapes: Mapping[str, tuple[int, ...]] = {}
    depths: Mapping[str, int] = {}
    #: the C of the network's whole-run loop (snnc.kernels.loop), None where it has none
    loop_source: str | None = None

    def __init__(self, batch_size: int = 1):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self._check_batch_memory()
        # batch size, dtype and device of the run for the runtime's `like` arguments
        self.register_buffer("like", torch.zeros(1, self.batch_size), persistent=False)
        self.register_load_state_dict_pre_hook(_weights_for_each_simulation)
        self.restart()

    def restart(self) -> None:
        self.t = 0
        self.history = {name: History(depth) for name, depth in self.depths.items()}
        self.spike_counts: dict[str, torch.Tensor] = {}

    def reset(self) -> None:
        """Back to the initial state: t = 0, no spikes sent, states as initialised."""
        super().reset()
        self.restart()

    def step(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step: the spikes [B, *shape] of every population (and encoder)."""
        with torch.no_grad():
            return self._step(self._inputs_at(self._given(inputs, None), 0))

    def run(self, steps: int | None = None, record: tuple[str, ...] = (),
            weight_every: int = WEIGHT_EVERY, sparse_spikes: bool = False,
            spike_dtype: torch.dtype | None = None,
            **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """`steps` steps (default: the network's) from the current state: the monitors
        "pop.var" (the file's and `record`'s) as [steps, B, *shape], and a connection's
        weights "conn.weight" (in `record`) sampled whenever the network's step count
        reaches a multiple of `weight_every`, as [samples, *weight.shape] (a plastic
        connection's in a batch: [samples, B, *shape], runtime.batched). With
        `sparse_spikes`, spikes are recorded as events and returned as sparse COO tensors
        of the same shape (ones where a spike was), as Brian2's SpikeMonitor keeps them:
        memory in proportion to the spikes, not to steps x neurons. `spike_dtype`
        (torch.bool or torch.uint8, snngrow's spike_out) keeps dense spike monitors in one
        byte a value instead of the network's float. An input is
        [steps, B, *shape], or [B, *shape] held for every step. Monitors that would need
        more than SNNC_MAX_MEMORY are refused before anything runs."""
        steps = self.steps if steps is None else int(steps)
        every = _interval(weight_every)
        spike_dtype = _spike_dtype(spike_dtype)
        keys = self._monitored(record)
        sparse = {key for key in keys if sparse_spikes and self._is_spikes(key)}
        self._check_memory(steps, [k for k in keys if k not in sparse], every, spike_dtype)
        given = self._given(inputs, steps)
        out = {key: self._monitor(key, steps, spike_dtype) for key in keys
               if not self.is_weight_key(key) and key not in sparse}
        samples = WeightSamples(self, [k for k in keys if self.is_weight_key(k)], steps, every)
        events = {key: SpikeEvents(steps, self.batch_size, self._shape_of(key))
                  for key in sorted(sparse)}
        loop = compiled.loop_for(self) if steps else None
        # The first step of a run draws the initial states: on the PyTorch path, so that
        # they come from the generators in its order.
        pytorch = steps if loop is None else min(steps, 1 if self.t == 0 else 0)
        with torch.no_grad():
            for i in range(pytorch):
                sent = self._step(self._inputs_at(given, i))
                for key in out:
                    out[key][i] = self._value(key, sent)
                for key, recorded in events.items():
                    recorded.add_step(i, self._value(key, sent))
                samples.after_step()
            if pytorch < steps:
                loop.run(self, given, pytorch, steps, out, samples, events)
        results = {**out, **samples.values,
                   **{key: recorded.tensor(self.like.dtype) for key, recorded in events.items()}}
        return {key: results[key] for key in keys}

    def monitor_bytes(self, steps: int | None = None, record: tuple[str, ...] = (),
                      weight_every: int = WEIGHT_EVERY,
                      spike_dtype: torch.dtype | None = None,
                      sparse_spikes: bool = False) -> int:
        """What run(steps, record, weight_every, spike_dtype=..., sparse_spikes=...)
        allocates for its monitors before the first step (spikes recorded as events grow
        with the spikes and are not counted)."""
        steps = self.steps if steps is None else int(steps)
        keys = [key for key in self._monitored(record)
                if not (sparse_spikes and self._is_spikes(key))]
        return self._bytes(steps, keys, _interval(weight_every), _spike_dtype(spike_dtype))

    def _bytes(self, steps: int, keys: list[str], every: int,
               spike_dtype: torch.dtype | None = None) -> int:
        total = 0
        for key in keys:
            if self.is_weight_key(key):
                rows = WeightSamples.count(self.t, steps, every)
                values = rows * self.connection(key.rpartition(".")[0]).weight.numel()
            else:
                values = steps * self.batch_size * math.prod(self._shape_of(key))
            one = 1 if spike_dtype is not None and self._is_spikes(key) else BYTES_PER_VALUE
            total += values * one
        return total

    def _check_memory(self, steps: int, keys: list[str], every: int,
                      spike_dtype: torch.dtype | None = None) -> None:
        need, limit = self._bytes(steps, keys, every, spike_dtype), max_memory_bytes()
        if need > limit:
            raise MemoryError(f"the monitors of a run of {steps:,} steps need "
                              f"{format_bytes(need)}, more than the limit of "
                              f"{format_bytes(limit)} (SNNC_MAX_MEMORY): record fewer "
                              "variables, run fewer steps at a time, or raise the limit")

    def _check_batch_memory(self) -> None:
        """Refuse, before anything is allocated, a batch whose histories alone (each node's
        last `depth` steps, per simulation; states, traces and a batch's plastic weights
        come on top) would not fit."""
        values = sum(math.prod(shape) * self.depths.get(name, 1)
                     for name, shape in self.shapes.items())
        need, limit = self.batch_size * values * BYTES_PER_VALUE, max_memory_bytes()
        if need > limit:
            raise MemoryError(f"a batch of {self.batch_size:,} simulations needs more than "
                              f"{format_bytes(need)} (each node's last steps alone), more "
                              f"than the limit of {format_bytes(limit)} (SNNC_MAX_MEMORY): "
                              "run fewer simulations at a time, or raise the limit")

    # ------------------------------------------------------------------ one step
    def _step(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for name, x in inputs.items():
            self.history[name].append(x)
        sent = self.advance(inputs)
        for name, spikes in sent.items():
            if name in self.populations:
                count = self.spike_counts.get(name)
                self.spike_counts[name] = spikes.clone() if count is None else count + spikes
        self.t += 1
        return sent

    def send(self, name: str, spikes: torch.Tensor) -> torch.Tensor:
        """Called by advance(): what node `name` sent this step, kept for its connections."""
        self.history[name].append(spikes)
        return spikes

    @abc.abstractmethod
    def advance(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step of the network (the generated subclass's): every encoder and
        population in schedule order, then the rules; returns what each node sent."""

    # ------------------------------------------------------------------ inputs, monitors
    def _given(self, inputs: Mapping[str, torch.Tensor], steps: int | None
               ) -> dict[str, tuple[torch.Tensor, bool]]:
        """Each input in the run's dtype and device, and whether it is given per step
        (for a run of `steps`; None: one step, which takes [B, *shape] only)."""
        missing = set(self.input_shapes) - set(inputs)
        unknown = set(inputs) - set(self.input_shapes)
        if missing or unknown:
            raise TypeError(f"{type(self).__name__} takes the inputs "
                            f"{', '.join(self.input_shapes) or '(none)'}; "
                            + (f"missing {', '.join(sorted(missing))}" if missing else
                               f"unknown {', '.join(sorted(unknown))}"))
        return {name: self._input(name, x, steps) for name, x in inputs.items()}

    def _input(self, name: str, x: torch.Tensor, steps: int | None
               ) -> tuple[torch.Tensor, bool]:
        shape = (self.batch_size, *self.input_shapes[name])
        x = x.to(self.like)
        if tuple(x.shape) == shape:
            return x, False
        if steps is not None and tuple(x.shape[1:]) == shape and len(x) >= steps:
            return x, True
        raise ValueError(f"input '{name}' expects [B, {', '.join(map(str, shape[1:]))}]"
                         + (f" or [steps, B, ...] of {steps} steps or more"
                            if steps is not None else "")
                         + f" with B = {self.batch_size}, got {list(x.shape)}")

    @staticmethod
    def _inputs_at(given: Mapping[str, tuple[torch.Tensor, bool]], i: int
                   ) -> dict[str, torch.Tensor]:
        return {name: x[i] if per_step else x for name, (x, per_step) in given.items()}

    def _monitored(self, record: tuple[str, ...]) -> list[str]:
        keys = list(dict.fromkeys((*self.monitor_keys, *record)))
        for key in keys:
            self._shape_of(key)
        return keys

    def _monitor(self, key: str, steps: int, spike_dtype: torch.dtype | None = None
                 ) -> torch.Tensor:
        """What run() fills with `key`'s values, [steps, B, *shape]: a population's spikes
        start as zeros, where the compiled loop writes the spikes alone; spikes in
        `spike_dtype` where one is given."""
        node, _, var = key.partition(".")
        shape = (steps, self.batch_size, *self._shape_of(key))
        if spike_dtype is not None and self._is_spikes(key):
            return torch.zeros(shape, dtype=spike_dtype, device=self.like.device)
        spikes = var == "spikes" and node in self.populations
        return self.like.new_zeros(shape) if spikes else self.like.new_empty(shape)

    def _is_spikes(self, key: str) -> bool:
        return key.endswith(".spikes") and not self.is_weight_key(key)

    def _shape_of(self, key: str) -> tuple[int, ...]:
        node, _, var = key.partition(".")
        if self.is_weight_key(key):
            return tuple(self.connection(key.rpartition(".")[0]).weight.shape)
        known = self._variables(node)
        if var not in known:
            raise KeyError(f"cannot monitor '{key}': " + (
                f"'{node}' has {', '.join(known)}" if known else
                f"no population, encoder or connection '{node}' (known: "
                f"{', '.join((*self.shapes, *self.connections))})"))
        return self.shapes[node]

    def is_weight_key(self, key: str) -> bool:
        """Whether `key` is a connection's "conn.weight" (a population's own variables
        first, where a connection has a population's name)."""
        owner, _, var = key.rpartition(".")
        return var == "weight" and owner in self.connections and owner not in self.shapes

    def _variables(self, node: str) -> tuple[str, ...]:
        if node in self.populations:
            return ("spikes", *self.populations[node].state_names)
        return ("spikes",) if node in self.encoders else ()

    def _value(self, key: str, sent: dict[str, torch.Tensor]) -> torch.Tensor:
        node, _, var = key.partition(".")
        if var == "spikes":
            return sent[node]
        return self.populations[node].states[var]


def _weights_for_each_simulation(sim: Simulator, state_dict: dict, prefix: str, *_) -> None:
    """load_state_dict's pre-hook: a plastic connection's weights of the shared shape
    (softbp's, or a network of one simulation's) load into each simulation of a batch
    that learns (runtime.batched)."""
    rules = [rule for rule in getattr(sim, "rules", {}).values() if rule.batched]
    if rules:
        names = {id(p): name for name, p in sim.named_parameters()}
        for rule in rules:
            weight = rule.layer.weight
            broadcast_loaded(state_dict, prefix + names[id(weight)], weight)


def _unravel(flat: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """[len(shape), count]: the index along each axis of row-major flat indices (what
    torch.unravel_index gives, without its first call's 0.3 s of set-up)."""
    axes = []
    for size in reversed(shape):
        axes.append(flat % size)
        flat = flat // size
    return torch.stack(axes[::-1]) if axes else flat[None, :0]


def _spike_dtype(dtype: torch.dtype | None) -> torch.dtype | None:
    if dtype not in (None, torch.bool, torch.uint8):
        raise ValueError(f"spike_dtype is torch.bool or torch.uint8 (or None), not {dtype}")
    return dtype


def _interval(every: int) -> int:
    if int(every) != every or every < 1:
        raise ValueError(f"weight_every is a number of steps, 1 or more; got {every!r}")
    return int(every)


class WeightSamples:
    """The weights run() samples: "conn.weight" -> [samples, *weight.shape], filled row
    by row whenever the network's step count reaches a multiple of `every`."""

    def __init__(self, sim: Simulator, keys: list[str], steps: int, every: int):
        self.sim, self.every = sim, every
        rows = self.count(sim.t, steps, every)
        self.weights = {key: sim.connection(key.rpartition(".")[0]).weight for key in keys}
        self.values = {key: w.new_empty((rows, *w.shape)) for key, w in self.weights.items()}
        self.filled = 0

    @staticmethod
    def count(t: int, steps: int, every: int) -> int:
        """The multiples of `every` in (t, t + steps]: the samples of a run from step t."""
        return (t + steps) // every - t // every

    def due(self) -> bool:
        return bool(self.weights) and self.sim.t % self.every == 0

    def after_step(self) -> None:
        """Called after each step: a sample where one is due."""
        if self.due():
            self.take()

    def take(self) -> None:
        for key, weight in self.weights.items():
            self.values[key][self.filled] = weight.detach()
        self.filled += 1


class SpikeEvents:
    """A node's spikes in one run as events, made into a sparse COO tensor
    [steps, B, *shape] at the end: (step, b, flat neuron) per spike."""

    def __init__(self, steps: int, batch: int, shape: tuple[int, ...]):
        self.size, self.batch, self.shape = (steps, batch, *shape), batch, shape
        self.n = math.prod(shape)
        self.parts: list[torch.Tensor] = []  # [3, count] blocks, in time order

    def add_step(self, i: int, sent: torch.Tensor) -> None:
        """The spikes [B, *shape] of the run's step i (the PyTorch path)."""
        b, flat = sent.reshape(self.batch, -1).nonzero(as_tuple=True)
        self.parts.append(torch.stack([torch.full_like(b, i), b, flat]))

    def add_call(self, lo: int, steps: int, written: torch.Tensor, counts: torch.Tensor
                 ) -> None:
        """What one call of the compiled loop wrote (its steps from the run's step lo):
        per simulation b, counts[b] flat indices i * n + j at written[b * steps * n:]."""
        for b, count in enumerate(counts.tolist()):
            at = b * steps * self.n
            flat = written[at:at + count]
            self.parts.append(torch.stack([lo + flat // self.n, torch.full_like(flat, b),
                                           flat % self.n]))

    def tensor(self, dtype: torch.dtype) -> torch.Tensor:
        events = torch.cat(self.parts, dim=1) if self.parts \
            else torch.zeros(3, 0, dtype=torch.int64)
        # one order for every path and batch: by step, then simulation, then neuron
        key = (events[0] * self.batch + events[1]) * self.n + events[2]
        events = events[:, key.argsort()]
        indices = torch.cat([events[:2], _unravel(events[2], self.shape)])
        return spike_tensor(indices, self.size, dtype)


def spike_tensor(indices: torch.Tensor, size: tuple[int, ...], dtype: torch.dtype
                 ) -> torch.Tensor:
    """Spikes as a sparse COO tensor of `size`: ones at `indices` ([len(size), count],
    sorted by step, simulation, neuron, none twice: coalesced by construction)."""
    return torch.sparse_coo_tensor(indices, torch.ones(indices.shape[1], dtype=dtype), size,
                                   is_coalesced=True, check_invariants=False)
