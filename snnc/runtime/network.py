"""What every generated network class inherits: inputs, reset, monitors, connections."""
from __future__ import annotations

from contextvars import ContextVar

import torch
from torch import nn

from snnc.runtime.init import DrawsAtRunTime, stream

#: The seed of the network being built (set by runtime.seeded), None outside one or
#: without a seed: the tables built inside give their modules' run-time streams from it.
BUILDING_SEED: ContextVar[int | None] = ContextVar("BUILDING_SEED", default=None)


class _ByName(nn.Module):
    """Children of one kind (`_table`: the Module's own dict of them) stored past
    Module.__setattr__, so any name goes (nn.ModuleDict and nn.ParameterDict refuse
    `forward`, `train` or `state_dict`, names a user may well give a population) and the
    state_dict keys are those of the dict classes: `populations.hidden.learnable.w`."""

    _table = ""  # "_modules" or "_parameters"

    def __init__(self, children: dict):
        super().__init__()
        getattr(self, self._table).update(children)

    def __getitem__(self, name: str):
        return getattr(self, self._table)[name]

    def __contains__(self, name: str) -> bool:
        return name in getattr(self, self._table)

    def __iter__(self):
        return iter(getattr(self, self._table))

    def __len__(self) -> int:
        return len(getattr(self, self._table))

    def keys(self):
        return getattr(self, self._table).keys()

    def items(self):
        return getattr(self, self._table).items()

    def values(self):
        return getattr(self, self._table).values()


class Named(_ByName):
    """Submodules by the names the network gives them (populations, encoders, connections).
    Built inside a seeded network, it gives each of them that draws at run time its stream."""

    _table = "_modules"

    def __init__(self, children: dict):
        super().__init__(children)
        seed = BUILDING_SEED.get()
        if seed is not None:
            seed_streams(self, seed)


def seed_streams(table: Named, seed: int) -> None:
    """A fresh generator for each module of `table` that draws at run time, from `seed`
    and the module's path in the table (the same in every backend and build)."""
    for path, module in table.named_modules():
        if isinstance(module, DrawsAtRunTime):
            module.generator = stream(seed, path)


class NamedParameters(_ByName):
    """Parameters by the names a model gives them (`param w = ... learnable`)."""

    _table = "_parameters"


def _compact(spikes: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype not in (torch.bool, torch.uint8):
        raise ValueError(f"spike_out must be torch.bool or torch.uint8, not {dtype}")
    return spikes.to(dtype)


def total(currents: list[torch.Tensor]) -> torch.Tensor:
    """The sum of a population's input currents (generated code passes them as a list)."""
    result = currents[0]
    for current in currents[1:]:
        result = result + current
    return result


class Network(nn.Module):
    """A generated network; subclasses define the modules and forward()."""

    #: name -> shape (without batch and time) of each input, set by the subclass
    input_shapes: dict[str, tuple[int, ...]] = {}
    steps: int = 1
    #: the `seed` setting; None draws from PyTorch's global generator
    seed: int | None = None
    #: snngrow's spike_out: torch.bool or torch.uint8 keeps spikes in one byte each (spike
    #: monitors always, returned spikes where no gradient flows through them); None: the
    #: run's float dtype
    spike_out: torch.dtype | None = None
    #: the C of the compiled step-by-step run (runtime.bptt), set by a generated module
    #: that has one
    bptt_source: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.monitors: dict[str, torch.Tensor] = {}

    def spike_record(self, spikes: torch.Tensor) -> torch.Tensor:
        """A spike monitor's recording: in spike_out's dtype where one is set."""
        return spikes if self.spike_out is None else _compact(spikes.detach(), self.spike_out)

    def spike_output(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spikes forward() returns: in spike_out's dtype unless a gradient flows through
        them (a bool or uint8 tensor carries none), so training is unchanged."""
        if self.spike_out is None or (spikes.requires_grad and torch.is_grad_enabled()):
            return spikes
        return _compact(spikes, self.spike_out)

    def reset(self) -> None:
        """Back to the initial state of every population: the next forward is a new run."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset"):
                module.reset()
        self.monitors = {}

    def named_memories(self):
        """(name, tensor) of every state a run carries from one call to the next, by the
        module that keeps it (`populations.hidden.v`, `connections.a->b.synapse.i`):
        snngrow's memories. Empty after reset() until the next call."""
        for path, module in self.named_modules():
            if module is not self and hasattr(module, "named_memories"):
                for name, value in module.named_memories():
                    yield f"{path}.{name}", value

    def memories(self):
        """Every state a run carries (named_memories' tensors)."""
        for _, value in self.named_memories():
            yield value

    def detach(self) -> None:
        """Cut every carried state from the graph, for truncated BPTT: call forward on one
        chunk of a sequence, backward, detach(), then the next chunk goes on from the same
        states without the earlier chunks in its graph."""
        for module in self.modules():
            if module is not self and hasattr(module, "named_memories"):
                module.detach()

    def reseed(self, seed: int | None = None) -> None:
        """Restart the run-time random streams (Poisson spikes, random initial states,
        dropout masks, noise) from `seed`, by default the network's own: the next run
        draws what the first run after construction drew. Weights stay as they are.
        reset() does not restart them: each run draws afresh, as training needs."""
        seed = self.seed if seed is None else seed
        if seed is None:
            raise ValueError(f"{type(self).__name__} has no seed: give reseed() one")
        for table in self.children():
            if isinstance(table, Named):
                seed_streams(table, seed)

    def connection(self, name: str) -> nn.Module:
        """The connection called `name` (`SRC->DST` unless named with `as`)."""
        try:
            return self.connections[name]
        except KeyError:
            known = ", ".join(self.connections.keys())
            raise KeyError(f"no connection '{name}' (known: {known})") from None

    def sequence(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """An input as [T, B, *shape]: given as [B, *shape] it is repeated over T steps."""
        shape = self.input_shapes[name]
        if tuple(x.shape[1:]) == shape:
            return x.unsqueeze(0).expand(self.steps, *x.shape)
        if x.dim() == len(shape) + 2 and tuple(x.shape[2:]) == shape:
            return x
        raise ValueError(f"input '{name}' expects [B, {', '.join(map(str, shape))}] or "
                         f"[T, B, {', '.join(map(str, shape))}], got {list(x.shape)}")
