"""A torch.Generator's (CPU) MT19937 state as the words C draws from, and back.

The compiled loop draws with templates/kernels/mt19937.h.j2, which reproduces PyTorch's
engine bit for bit; this module moves the engine's state between the two, so that draws
made in C and draws made by PyTorch form one stream (docs/RNG.md).

`Generator.get_state()` is a uint8 tensor of 5056 bytes holding PyTorch's
CPUGeneratorImplState (aten/src/ATen/CPUGeneratorImpl.cpp), in the machine's byte order:

    offset  size         field
         0  uint64       the seed manual_seed was given
         8  int32        left: draws until the next regeneration (1..624)
        12  int32        seeded (1)
        16  uint64       next: the index of the next word to temper (0..624)
        24  uint64[624]  the state words, each < 2³² (the engine keeps uint32: the blob
                         widens them for old checkpoints' sake)
      5016  float64 ×3   the double normal cache: x (unused), y (the cached value), rho
      5040  int32        whether y is valid, then 4 bytes of padding
      5048  float32      the float normal cache, then its bool valid flag, then padding

`state_words` gives the C struct `mt19937_t`: 626 32-bit words, the 624 state words,
then left, then next, as one int32 tensor (C reads the words as uint32). `put_state`
writes such words back into the generator's blob and leaves every other byte (the seed,
the normal caches) as it is; `set_state` checks what it is given (left in 1..624, next at
most 624), so a corrupted state is refused there.
"""
from __future__ import annotations

import sys

import torch

from snnc.kernels.abi import MT19937_WORDS

STATE_N = 624
BLOB_SIZE = 5056
LEFT, NEXT, STATE = 8, 16, 24  # byte offsets in the blob
WORDS = MT19937_WORDS  # an mt19937_t: the state, left, next

# Which half of a uint64, seen as two int32, holds its value below 2³².
_LOW = 0 if sys.byteorder == "little" else 1


def state_words(generator: torch.Generator) -> torch.Tensor:
    """The generator's state as an mt19937_t: a new contiguous int32 tensor of 626 words."""
    blob = _blob(generator)
    words = torch.empty(WORDS, dtype=torch.int32)
    words[:STATE_N] = _halves(blob, STATE, STATE_N)[:, _LOW]
    words[STATE_N] = _int32(blob, LEFT)
    words[STATE_N + 1] = _halves(blob, NEXT, 1)[0, _LOW]
    return words


def put_state(generator: torch.Generator, words: torch.Tensor) -> None:
    """Sets the generator to the mt19937_t `words` (as state_words gives them, advanced by
    C): its next draws continue from there."""
    if words.dtype != torch.int32 or words.shape != (WORDS,):
        raise ValueError(f"expected {WORDS} int32 words, got {words.dtype} {tuple(words.shape)}")
    blob = _blob(generator)
    # the upper halves stay zero, as each word is below 2³²
    _halves(blob, STATE, STATE_N)[:, _LOW] = words[:STATE_N]
    _int32(blob, LEFT)[0] = words[STATE_N]
    _halves(blob, NEXT, 1)[0, _LOW] = words[STATE_N + 1]
    generator.set_state(blob)


def _blob(generator: torch.Generator) -> torch.Tensor:
    """A copy of the generator's state blob, checked to be the layout this module reads."""
    if generator.device.type != "cpu":
        raise ValueError(f"expected a CPU generator (MT19937), got {generator.device}")
    blob = generator.get_state().clone()
    if blob.dtype != torch.uint8 or blob.numel() != BLOB_SIZE:
        raise RuntimeError(f"this PyTorch's CPU generator state is {blob.numel()} bytes of "
                           f"{blob.dtype}, not the {BLOB_SIZE} uint8 snnc reads")
    return blob


def _halves(blob: torch.Tensor, offset: int, count: int) -> torch.Tensor:
    """`count` uint64 fields at byte `offset` of `blob` as a [count, 2] int32 view (writes
    reach the blob): each field's two 32-bit halves."""
    return blob[offset:offset + 8 * count].view(torch.int32).view(count, 2)


def _int32(blob: torch.Tensor, offset: int) -> torch.Tensor:
    """The int32 field at byte `offset` of `blob`, as a one-element view."""
    return blob[offset:offset + 4].view(torch.int32)
