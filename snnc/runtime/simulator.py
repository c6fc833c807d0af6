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

from snnc.runtime import compiled
from snnc.runtime.network import Network

BYTES_PER_VALUE = 4  # monitors are kept in the network's dtype, float32 unless changed


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
        # batch size, dtype and device of the run for the runtime's `like` arguments
        self.register_buffer("like", torch.zeros(1, self.batch_size), persistent=False)
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
            **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """`steps` steps (default: the network's) from the current state: the monitors
        "pop.var" (the file's and `record`'s) as [steps, B, *shape]. An input is
        [steps, B, *shape], or [B, *shape] held for every step."""
        steps = self.steps if steps is None else int(steps)
        keys = self._monitored(record)
        given = self._given(inputs, steps)
        out = {key: self._monitor(key, steps) for key in keys}
        loop = compiled.loop_for(self) if steps else None
        # The first step of a run draws the initial states: on the PyTorch path, so that
        # they come from the generators in its order.
        pytorch = steps if loop is None else min(steps, 1 if self.t == 0 else 0)
        with torch.no_grad():
            for i in range(pytorch):
                sent = self._step(self._inputs_at(given, i))
                for key in keys:
                    out[key][i] = self._value(key, sent)
            if pytorch < steps:
                loop.run(self, given, pytorch, steps, out)
        return out

    def monitor_bytes(self, steps: int | None = None, record: tuple[str, ...] = ()) -> int:
        """What run(steps, record) allocates for its monitors."""
        steps = self.steps if steps is None else int(steps)
        return sum(steps * self.batch_size * math.prod(self._shape_of(key)) * BYTES_PER_VALUE
                   for key in self._monitored(record))

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

    def _monitor(self, key: str, steps: int) -> torch.Tensor:
        """What run() fills with `key`'s values, [steps, B, *shape]: a population's spikes
        start as zeros, where the compiled loop writes the spikes alone."""
        node, _, var = key.partition(".")
        shape = (steps, self.batch_size, *self._shape_of(key))
        spikes = var == "spikes" and node in self.populations
        return self.like.new_zeros(shape) if spikes else self.like.new_empty(shape)

    def _shape_of(self, key: str) -> tuple[int, ...]:
        node, _, var = key.partition(".")
        known = self._variables(node)
        if var not in known:
            raise KeyError(f"cannot monitor '{key}': " + (
                f"'{node}' has {', '.join(known)}" if known else
                f"no population or encoder '{node}' (known: {', '.join(self.shapes)})"))
        return self.shapes[node]

    def _variables(self, node: str) -> tuple[str, ...]:
        if node in self.populations:
            return ("spikes", *self.populations[node].state_names)
        return ("spikes",) if node in self.encoders else ()

    def _value(self, key: str, sent: dict[str, torch.Tensor]) -> torch.Tensor:
        node, _, var = key.partition(".")
        if var == "spikes":
            return sent[node]
        return self.populations[node].states[var]
