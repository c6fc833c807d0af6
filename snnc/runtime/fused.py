"""Running a population's fused CPU kernels: compile (once, cached on disk by the source's
hash), then call them through ctypes from an autograd Function.

Experimental: used when SNNC_FUSED=1 (or `use_fused(True)`); otherwise, and whenever
the kernels cannot run (no C compiler, refractory, ILC feedback, recordings, GPU
tensors), the population runs its reference step.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import warnings
from functools import cache
from pathlib import Path

import torch

_REAL = {torch.float32: "float", torch.float64: "double"}
_enabled = os.environ.get("SNNC_FUSED") == "1"


def use_fused(on: bool = True) -> None:
    global _enabled
    _enabled = on


def enabled() -> bool:
    return _enabled


def cache_dir() -> Path:
    root = os.environ.get("SNNC_CACHE") or Path.home() / ".cache" / "snnc"
    return Path(root) / "kernels"


@cache
def load(source: str, real: str) -> ctypes.CDLL | None:
    """The compiled kernels, built once per source and type; None without a C compiler."""
    digest = hashlib.sha256(f"{real}\n{source}".encode()).hexdigest()[:24]
    folder = cache_dir()
    library = folder / f"{digest}.so"
    if not library.exists():
        compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        if compiler is None:
            warnings.warn("snnc: no C compiler found; populations run their reference step",
                          stacklevel=3)
            return None
        folder.mkdir(parents=True, exist_ok=True)
        c_file = folder / f"{digest}.c"
        c_file.write_text(source)
        partial = folder / f"{digest}.{os.getpid()}.so"
        # -ffp-contract=off: no fused multiply-add, so results match PyTorch op by op.
        subprocess.run([compiler, "-O3", "-fopenmp", "-ffp-contract=off", f"-DREAL={real}",
                        "-shared", "-fPIC", "-o", str(partial), str(c_file), "-lm"],
                       check=True, capture_output=True)
        os.replace(partial, library)  # atomic: a concurrent build never sees half a file
    lib = ctypes.CDLL(str(library))
    pointer, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.snnc_forward.argtypes = [pointer] * 4 + [i64, i64]
    lib.snnc_backward.argtypes = [pointer] * 6 + [i64, i64, ctypes.c_int]
    return lib


def _ptr(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


class FusedNeuron(torch.autograd.Function):
    """x [T, M], initial states [S, M], learnable params [P] -> spikes [T, M], final states.
    Only x is saved for the backward (4 bytes per neuron-step): the kernel recomputes the
    rest."""

    @staticmethod
    def forward(ctx, lib, detach_reset: bool, x, state0, params):
        spikes = torch.empty_like(x)
        state = state0.clone()
        lib.snnc_forward(_ptr(x), _ptr(spikes), _ptr(state), _ptr(params), x.shape[0],
                         x.shape[1])
        ctx.lib, ctx.detach_reset = lib, detach_reset
        ctx.save_for_backward(x, state0, params)
        ctx.mark_non_differentiable(state)
        return spikes, state

    @staticmethod
    def backward(ctx, grad_spikes, grad_state):
        x, state0, params = ctx.saved_tensors
        grad_x = torch.empty_like(x)
        partial = torch.zeros(x.shape[1], max(params.numel(), 1), dtype=x.dtype)
        ctx.lib.snnc_backward(_ptr(x), _ptr(grad_spikes.contiguous()), _ptr(state0),
                              _ptr(params), _ptr(grad_x), _ptr(partial), x.shape[0],
                              x.shape[1], int(ctx.detach_reset))
        grad_params = partial.sum(0)[: params.numel()]
        return None, None, grad_x, None, grad_params


def run(source: str, detach_reset: bool, x_seq: torch.Tensor, states: list[torch.Tensor],
        params: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
    """Spikes [T, B, *shape] and the final states, or None when the kernels cannot run."""
    if x_seq.device.type != "cpu" or x_seq.dtype not in _REAL:
        return None
    lib = load(source, _REAL[x_seq.dtype])
    if lib is None:
        return None
    steps = x_seq.shape[0]
    flat = x_seq.reshape(steps, -1).contiguous()
    state0 = torch.stack([s.reshape(-1) for s in states]).to(x_seq.dtype).contiguous()
    vector = (torch.stack([p.reshape(()) for p in params]).to(x_seq.dtype) if params
              else torch.zeros(0, dtype=x_seq.dtype))
    spikes, final = FusedNeuron.apply(lib, detach_reset, flat, state0, vector.contiguous())
    return spikes.view_as(x_seq), [f.view_as(s) for f, s in zip(final, states, strict=True)]
