"""Running a population's fused CPU kernels: compile (once, cached on disk by the source's
hash), then call them through ctypes from an autograd Function.

Used by default; SNNC_FUSED=0 (or `use_fused(False)`) turns them off. Whenever they
cannot run (no C compiler, ILC feedback, recordings, GPU tensors, a run continued step
by step), the population runs its reference step: the same spikes, more slowly.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import warnings
from functools import cache
from pathlib import Path

import torch

_REAL = {torch.float32: "float", torch.float64: "double"}
_enabled = os.environ.get("SNNC_FUSED", "1") != "0"

# -ffp-contract=off: no fused multiply-add, so the forward matches PyTorch op by op;
# -fno-trapping-math lets comparisons become vector selects (the loops vectorise).
_FLAGS = ("-O3", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=off", "-shared",
          "-fPIC")
# Tried in order until one builds and loads: vector math from glibc, this CPU's ISA,
# threads; the last is plain C that any compiler takes.
_VARIANTS = (("-march=native", "-fopenmp", "-DSNNC_MVEC", "-lmvec"),
             ("-march=native", "-fopenmp"), ("-fopenmp",), ())


def use_fused(on: bool = True) -> None:
    global _enabled
    _enabled = on


def enabled() -> bool:
    return _enabled


def cache_dir() -> Path:
    root = os.environ.get("SNNC_CACHE") or Path.home() / ".cache" / "snnc"
    return Path(root) / "kernels"


@cache
def _host() -> str:
    """What -march=native builds for: a cache shared by two kinds of CPU keeps both."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({line for line in info if line.startswith(("model name",
                                                                           "flags"))}))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


@cache
def load(source: str, real: str) -> ctypes.CDLL | None:
    """The compiled kernels, built once per source, type and machine, then loaded from the
    disk cache; None (with one warning) where no variant builds."""
    compiler = _compiler()
    if compiler is None:
        warnings.warn("snnc: no C compiler found (set CC); populations run their reference "
                      "step, correct but slower", stacklevel=3)
        return None
    for variant in _VARIANTS:
        lib = _build_and_open(compiler, source, (*_FLAGS, *variant, f"-DREAL={real}"))
        if lib is not None:
            pointer, i64 = ctypes.c_void_p, ctypes.c_int64
            lib.snnc_forward.argtypes = [pointer] * 4 + [i64, i64]
            lib.snnc_backward.argtypes = [pointer, pointer, i64, i64, *[pointer] * 4, i64, i64,
                                          ctypes.c_int]
            return lib
    warnings.warn(f"snnc: {compiler} could not build the fused kernels; populations run "
                  f"their reference step, correct but slower", stacklevel=3)
    return None


def _build_and_open(compiler: str, source: str, flags: tuple[str, ...]) -> ctypes.CDLL | None:
    key = "\n".join((compiler, *flags, _host(), source))
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    folder = cache_dir()
    library, failed = folder / f"{digest}.so", folder / f"{digest}.failed"
    if failed.exists():
        return None
    if not library.exists():
        folder.mkdir(parents=True, exist_ok=True)
        c_file = folder / f"{digest}.c"
        c_file.write_text(source)
        partial = folder / f"{digest}.{os.getpid()}.so"
        built = subprocess.run([compiler, *flags, "-o", str(partial), str(c_file), "-lm"],
                               capture_output=True, text=True)
        if built.returncode != 0:
            failed.write_text(built.stderr)  # the next process skips this variant at once
            return None
        os.replace(partial, library)  # atomic: a concurrent build never sees half a file
    try:
        return ctypes.CDLL(str(library))
    except OSError as error:  # e.g. a vector math function this libmvec lacks
        failed.write_text(str(error))
        return None


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
        if grad_spikes.stride(1) not in (0, 1):
            grad_spikes = grad_spikes.contiguous()
        ctx.lib.snnc_backward(_ptr(x), _ptr(grad_spikes), *grad_spikes.stride(), _ptr(state0),
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
