"""What every generated network class inherits: inputs, reset, monitors, connections."""
from __future__ import annotations

import torch
from torch import nn


class Named(nn.Module):
    """Submodules by the names the network gives them, as nn.ModuleDict holds them (the same
    state_dict keys: `populations.hidden.learnable.w`), but any name goes: ModuleDict
    refuses `forward`, `train` or `state_dict`, names a user may well give a population."""

    def __init__(self, modules: dict[str, nn.Module]):
        super().__init__()
        for name, module in modules.items():
            self._modules[name] = module  # past Module.__setattr__, which would shadow methods

    def __getitem__(self, name: str) -> nn.Module:
        return self._modules[name]

    def __contains__(self, name: str) -> bool:
        return name in self._modules

    def __iter__(self):
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()


class NamedParameters(nn.Module):
    """Parameters by the names a model gives them (`param w = ... learnable`), with the
    state_dict keys of nn.ParameterDict, but any name goes (ParameterDict refuses `train`)."""

    def __init__(self, parameters: dict[str, nn.Parameter]):
        super().__init__()
        for name, parameter in parameters.items():
            self._parameters[name] = parameter

    def __getitem__(self, name: str) -> nn.Parameter:
        return self._parameters[name]

    def __len__(self) -> int:
        return len(self._parameters)

    def keys(self):
        return self._parameters.keys()

    def values(self):
        return self._parameters.values()

    def items(self):
        return self._parameters.items()


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

    def __init__(self) -> None:
        super().__init__()
        self.monitors: dict[str, torch.Tensor] = {}

    def reset(self) -> None:
        """Back to the initial state of every population: the next forward is a new run."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset"):
                module.reset()
        self.monitors = {}

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
