"""State_dict files a network loads (`weights "FILE"`): read without running code from them.

`torch.load(weights_only=True)` unpickles tensors and plain containers only, so a file
from anyone cannot execute code; what it holds must be a mapping of names to tensors.
"""
from __future__ import annotations

import stat
from pathlib import Path

import torch
from torch import nn

from snnc.limits import max_memory_bytes


class WeightsError(ValueError):
    """A weights file that cannot be read as a state_dict, or does not fit the network."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a state_dict file, on the CPU, or WeightsError saying why not. Only a
    regular file within SNNC_MAX_MEMORY is opened (a FIFO would block, a device never end)."""
    check_regular_file(Path(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch's unpickler of untrusted bytes raises any kind
        # torch's own message may advise weights_only=False: never for a file from anyone
        raise WeightsError(f"{path} is not a PyTorch state_dict file "
                           f"(torch.load: {type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise WeightsError(f"{path} holds {type(state).__name__}, not a state_dict "
                           "(a dict of names to tensors)")
    return state


def check_regular_file(path: Path) -> None:
    """WeightsError unless `path` is a regular file within SNNC_MAX_MEMORY."""
    try:
        info = path.stat()
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise WeightsError(f"{path} is not a regular file")
    if info.st_size > max_memory_bytes():
        raise WeightsError(f"{path} is larger than the memory limit "
                           f"({info.st_size} > {max_memory_bytes()} bytes)")


def load_weights(module: nn.Module, path: str) -> None:
    """Load the network's own weights file into `module` (every key, every shape)."""
    state = read_state_dict(path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # the file changed since the network was built
        raise WeightsError(f"{path} does not fit network {type(module).__name__}: "
                           f"{exc}") from None
