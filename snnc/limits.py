"""Every limit snnc enforces on untrusted input, in one place (docs/SECURITY.md lists them).

A `.snn` file (and later a `.nir` file) may come from anyone: these bounds make sure
that building one takes bounded time and memory and that an absurd size is refused
with a message before anything is allocated.
"""
from __future__ import annotations

import os

MAX_FILE_BYTES = 16 * 2**20          # one source file
MAX_TOTAL_SOURCE_BYTES = 64 * 2**20  # all files of one build, imports included
MAX_FILES = 1_000                    # files one build may read (imports included)
MAX_NESTING = 64                     # brackets ( [ { open at once, anywhere in a file
MAX_EXPR_DEPTH = 200                 # operators and calls nested in one expression
MAX_ELEMENTS = 2**31 - 1             # elements of one tensor, per sample
MAX_RANK = 16                        # axes of one shape (torch: 64 for [T, B, *shape])
MAX_MAGNITUDE = 1e30                 # any number; beyond it float32 state overflows
MAX_INT = 2**31 - 1                  # a whole-number parameter (sizes, strides, k, ...)
MAX_SEED = 2**63 - 1                 # `seed`
MAX_STEPS = 10_000_000               # `steps`
MAX_DELAY = 100_000                  # a delay, in steps
MAX_DELAY_WORK = 10**12              # operations per sample per-synapse delays may cost
MAX_POPULATIONS = 10_000             # nodes (inputs, encoders, populations) per network
MAX_CONNECTIONS = 100_000            # connections per network
# A neuron step longer than this (operations on its tape, snnc.kernels.tape) gets no
# fused kernel, and the reference step runs: the C compiler's time grows faster than the
# code (400 operations take cc -O3 about 10 s, 800 nearly a minute); the stdlib's models
# have 10 to 40.
MAX_TAPE_ENTRIES = 500


def delay_bytes(low: int, high: int) -> int:
    """Bytes per synapse of per-synapse delays in [low, high]: the smallest signed integer
    of 1, 2 or 4 bytes that holds them, else 8 (the budget counts what the runtime stores:
    runtime.layers.SynapseDelays.dtype_for)."""
    for size in (1, 2, 4):
        if -(2 ** (8 * size - 1)) <= low and high < 2 ** (8 * size - 1):
            return size
    return 8


def max_memory_bytes() -> int:
    """The most memory one network may need for its weights, masks and one sample's run
    (the build refuses more, with the estimate): SNNC_MAX_MEMORY bytes, with an optional
    K/M/G/T suffix (binary), default 16 GiB."""
    return parse_bytes(os.environ.get("SNNC_MAX_MEMORY", "16G"))


_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    number, suffix = (text[:-1], text[-1]) if text[-1:] in _SUFFIXES else (text, "")
    try:
        value = float(number) * _SUFFIXES[suffix]
    except ValueError:
        raise ValueError(f"SNNC_MAX_MEMORY: not a size: {text!r} (write e.g. 4G)") from None
    return int(value)


def format_bytes(n: float) -> str:
    """1.5 GiB, 320 MiB, 12 KiB."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"
