"""The data `snnc run --input NAME=FILE` feeds a network's inputs.

A file holds one array: the input's shape (held for every step), or one entry per step
([steps, *shape]); a leading batch axis of 1 may come with either. It is read without
running code from it (`.npy` without pickles, `.pt` with torch.load(weights_only=True)),
and a `.npy` file's header is checked against that shape before its values are read, so a
header that claims terabytes is refused, not allocated.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnc.errors import SnnError, printable, unknown
from snnc.limits import format_bytes, max_memory_bytes
from snnc.runtime.weights import WeightsError, check_regular_file

INPUT_SUFFIXES = (".npy", ".pt")
NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


@dataclass(frozen=True)
class GivenInput:
    """An input's values for a batch of one: [1, *shape] held for every step, or
    [steps, 1, *shape] (`per_step`)."""

    values: torch.Tensor
    per_step: bool

    def chunk(self, first: int, steps: int) -> torch.Tensor:
        """What net.run takes for the run's steps first .. first + steps - 1."""
        return self.values[first:first + steps] if self.per_step else self.values


def read_inputs(options: Iterable[str], shapes: Mapping[str, tuple[int, ...]], steps: int,
                dtype: torch.dtype) -> dict[str, GivenInput]:
    """The inputs given as NAME=FILE for a run of `steps` steps, each checked to name an
    input of the network and to have its shape."""
    given: dict[str, GivenInput] = {}
    for option in options:
        name, path = split_option(option)
        if name not in shapes:
            err = unknown("input", name, list(shapes), None)
            raise SnnError(f"--input {printable(option)}: {err.message}",
                           hint=err.hint or "this network has no inputs")
        if name in given:
            raise SnnError(f"--input {printable(name)} is given twice")
        given[name] = read_input(path, name, tuple(shapes[name]), steps, dtype)
    return given


def split_option(option: str) -> tuple[str, Path]:
    name, eq, file = option.partition("=")
    if not eq or not name or not file:
        raise SnnError(f"--input {printable(option)}: expected NAME=FILE",
                       hint="for example --input img=digit.npy")
    path = Path(file)
    if path.suffix.lower() not in INPUT_SUFFIXES:
        raise SnnError(f"--input {printable(option)}: not a file type snnc reads",
                       hint=f"give a {' or '.join(INPUT_SUFFIXES)} file")
    return name, path


def read_input(path: Path, name: str, shape: tuple[int, ...], steps: int,
               dtype: torch.dtype) -> GivenInput:
    """`path`'s array as input `name` of `shape`, held or one entry per step."""
    try:
        check_regular_file(path)
    except WeightsError as err:
        raise SnnError(f"--input {printable(name)}: {printable(err.args[0])}") from None
    if path.suffix.lower() == ".npy":
        like = torch.empty((), dtype=dtype).numpy().dtype
        values = torch.from_numpy(_read_npy(path, name, shape, steps).astype(like))
    else:
        values = _read_pt(path, name)
    per_step = _fits(tuple(values.shape), name, path, shape, steps)
    values = values.to(dtype)
    return GivenInput(values.reshape(steps, 1, *shape) if per_step
                      else values.reshape(1, *shape), per_step)


def _fits(have: tuple[int, ...], name: str, path: Path, shape: tuple[int, ...],
          steps: int) -> bool:
    """Whether an array of shape `have` is one entry per step (True) or held (False); an
    SnnError where it is neither."""
    if have in (shape, (1, *shape)):
        return False
    if have in ((steps, *shape), (steps, 1, *shape)):
        return True
    dims = ", ".join(map(str, shape))
    raise SnnError(f"--input {printable(name)}: {printable(str(path))} holds an array of "
                   f"shape [{', '.join(map(str, have))}]; {printable(name)} is [{dims}]",
                   hint=f"give [{dims}] (held for every step) or [{steps}, {dims}] (one per "
                   f"step of this run of {steps:,})")


def _read_npy(path: Path, name: str, shape: tuple[int, ...], steps: int) -> np.ndarray:
    """A .npy file's array, its header checked first: a shape that fits the input and a
    size within SNNC_MAX_MEMORY."""
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            header = NPY_HEADERS.get(version)
            if header is None:
                raise ValueError(f".npy format version {version} (snnc reads 1.0 and 2.0)")
            have, _, dtype = header(f)
    except (OSError, ValueError) as exc:
        raise SnnError(f"--input {printable(name)}: {printable(str(path))} is not a .npy "
                       f"file ({printable(str(exc))})") from None
    if dtype.kind not in "biuf":
        raise SnnError(f"--input {printable(name)}: {printable(str(path))} holds {dtype}, "
                       "not numbers", hint="save an array of floats, integers or bools")
    _fits(tuple(have), name, path, shape, steps)
    need, limit = math.prod(have) * max(dtype.itemsize, 4), max_memory_bytes()
    if need > limit:
        raise SnnError(f"--input {printable(name)}: {printable(str(path))} needs "
                       f"{format_bytes(need)}, more than the limit of {format_bytes(limit)}",
                       hint="raise SNNC_MAX_MEMORY (e.g. SNNC_MAX_MEMORY=64G)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SnnError(f"--input {printable(name)}: cannot read {printable(str(path))} "
                       f"({printable(str(exc))})") from None


def _read_pt(path: Path, name: str) -> torch.Tensor:
    try:
        values = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch's unpickler of untrusted bytes raises any kind
        raise SnnError(f"--input {printable(name)}: {printable(str(path))} is not a PyTorch "
                       f"file (torch.load: {type(exc).__name__})") from None
    if not isinstance(values, torch.Tensor) or values.is_sparse or values.is_complex():
        raise SnnError(f"--input {printable(name)}: {printable(str(path))} holds "
                       f"{type(values).__name__}, not a dense tensor of numbers",
                       hint="torch.save one tensor")
    return values
