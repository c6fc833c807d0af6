"""Running a population's fused kernels, C on the CPU and CUDA on NVIDIA GPUs: compile
(once, cached on disk by the source's hash), then call them through ctypes from one
autograd Function that dispatches on the tensors' device.

Used by default on the CPU; SNNC_FUSED=0 (or `use_fused(False)`) turns them off. On the
GPU they are opt-in (SNNC_FUSED_CUDA=1, or `use_fused(True, cuda=True)`) until they have
run on one. Whenever they cannot run (no C compiler or nvcc, ILC feedback, recordings,
other devices, a run continued step by step), the population runs its reference step:
the same spikes, more slowly.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch

REAL = {torch.float32: "float", torch.float64: "double"}
_enabled = os.environ.get("SNNC_FUSED", "1") != "0"
# The CUDA kernels build and were checked against the reference step in an emulation on
# the CPU, but have not yet run on a GPU: until they have, they are opt-in.
_cuda_enabled = os.environ.get("SNNC_FUSED_CUDA") == "1"

# -ffp-contract=off: no fused multiply-add, so the forward matches PyTorch op by op;
# -fno-trapping-math lets comparisons become vector selects (the loops vectorise).
_FLAGS = ("-O3", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=off", "-shared",
          "-fPIC")
# Tried in order until one builds and loads: vector math from glibc, this CPU's ISA,
# threads; the last is plain C that any compiler takes.
_VARIANTS = (("-march=native", "-fopenmp", "-DSNNC_MVEC", "-lmvec"),
             ("-march=native", "-fopenmp"), ("-fopenmp",), ())
# nvcc: -fmad=false is -ffp-contract=off. This machine's GPUs first, then nvcc's default
# architecture, which the driver compiles for the GPU at load time.
_CUDA_FLAGS = ("-O3", "-fmad=false", "-shared", "-Xcompiler", "-fPIC")
_CUDA_VARIANTS = (("-arch=native",), ())
_REFERENCE_RUNS = "the reference PyTorch code runs instead (same results, slower)"


def use_fused(on: bool = True, cuda: bool | None = None) -> None:
    """Kernels on or off (SNNC_FUSED); `cuda` also sets the GPU kernels (SNNC_FUSED_CUDA)."""
    global _enabled, _cuda_enabled
    _enabled = on
    if cuda is not None:
        _cuda_enabled = cuda


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


@cache
def _gpus() -> str:
    """What -arch=native builds for, as _host() for the CPU."""
    return "\n".join(f"{torch.cuda.get_device_name(i)} {torch.cuda.get_device_capability(i)}"
                     for i in range(torch.cuda.device_count()))


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


def _nvcc() -> str | None:
    cuda_home = os.environ.get("CUDA_HOME") or "/usr/local/cuda"
    return shutil.which(os.environ.get("NVCC", "nvcc")) or shutil.which(f"{cuda_home}/bin/nvcc")


@cache
def load(source: str, real: str) -> ctypes.CDLL | None:
    """A population's compiled kernels (see `library`), ready to call."""
    lib = library(source, real)
    if lib is not None:
        pointer, i64 = ctypes.c_void_p, ctypes.c_int64
        lib.snnc_forward.argtypes = [pointer] * 4 + [i64, i64, ctypes.c_int]
        lib.snnc_backward.argtypes = [pointer, pointer, i64, i64, *[pointer] * 5, i64, i64,
                                      ctypes.c_int, ctypes.c_int]
    return lib


@cache
def library(source: str, real: str) -> ctypes.CDLL | None:
    """C source built once per source, type and machine, then loaded from the disk cache;
    None (with one warning) where no variant builds."""
    compiler = _compiler()
    if compiler is None:
        warnings.warn(f"snnc: no C compiler found (set CC); the fused kernels are off and "
                      f"{_REFERENCE_RUNS}", stacklevel=4)
        return None
    for variant in _VARIANTS:
        lib = _build_and_open(compiler, source, (*_FLAGS, *variant, f"-DREAL={real}"))
        if lib is not None:
            return lib
    warnings.warn(f"snnc: {compiler} could not build the fused kernels; {_REFERENCE_RUNS}",
                  stacklevel=4)
    return None


@cache
def load_cuda(source: str, real: str) -> ctypes.CDLL | None:
    """The CUDA kernels, built by nvcc once per source, type and set of GPUs, then loaded
    from the disk cache; None (with one warning) where nvcc is missing, no variant builds,
    or what it builds cannot run on this GPU and driver."""
    nvcc = _nvcc()
    if nvcc is None:
        warnings.warn(f"snnc: no CUDA compiler found (set NVCC or CUDA_HOME); the fused "
                      f"kernels are off on the GPU and {_REFERENCE_RUNS}", stacklevel=3)
        return None
    problem = f"{nvcc} could not build the fused CUDA kernels"
    for variant in _CUDA_VARIANTS:
        lib = _build_and_open(nvcc, source, (*_CUDA_FLAGS, *variant, f"-DREAL={real}"),
                              suffix="cu", machine=_gpus)
        if lib is None:
            continue
        lib.snnc_cuda_error.restype = ctypes.c_char_p
        error = lib.snnc_cuda_probe()  # not cached on disk: a new driver may fix it
        if error == 0:
            pointer, i64 = ctypes.c_void_p, ctypes.c_int64
            lib.snnc_forward_cuda.argtypes = [pointer] * 4 + [i64, i64, pointer]
            lib.snnc_backward_cuda.argtypes = [pointer, pointer, i64, i64, *[pointer] * 5, i64,
                                               i64, ctypes.c_int, pointer, pointer]
            return lib
        problem = f"the fused CUDA kernels cannot run here ({_cuda_error(lib, error)})"
    warnings.warn(f"snnc: {problem}; {_REFERENCE_RUNS}", stacklevel=3)
    return None


def _cuda_error(lib: ctypes.CDLL, error: int) -> str:
    return lib.snnc_cuda_error(error).decode()


def _build_and_open(compiler: str, source: str, flags: tuple[str, ...], suffix: str = "c",
                    machine: Callable[[], str] = _host) -> ctypes.CDLL | None:
    key = "\n".join((compiler, *flags, machine(), source))
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    folder = cache_dir()
    library, failed = folder / f"{digest}.so", folder / f"{digest}.failed"
    if failed.exists():
        return None
    if not library.exists():
        folder.mkdir(parents=True, exist_ok=True)
        source_file = folder / f"{digest}.{suffix}"  # nvcc tells CUDA from C by the suffix
        source_file.write_text(source)
        partial = folder / f"{digest}.{os.getpid()}.so"
        built = subprocess.run([compiler, *flags, "-o", str(partial), str(source_file), "-lm"],
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


def _call(lib: ctypes.CDLL, kernel: str, x: torch.Tensor, *args) -> None:
    """The kernel on x's device: the C function, or the CUDA launcher on PyTorch's current
    stream (so the kernel is ordered with the work around it, as PyTorch's own are)."""
    if x.device.type == "cpu":
        getattr(lib, f"snnc_{kernel}")(*args, torch.get_num_threads())
        return
    with torch.cuda.device(x.device):
        stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        error = getattr(lib, f"snnc_{kernel}_cuda")(*args, stream)
    if error:
        raise RuntimeError(f"snnc: the fused CUDA {kernel} kernel did not launch: "
                           f"{_cuda_error(lib, error)}")


class FusedNeuron(torch.autograd.Function):
    """x [T, M], initial states [S, M], learnable params [P] -> spikes [T, M], final states
    [S, M]. Only x is saved for the backward (4 bytes per neuron-step): the kernel
    recomputes the rest. Gradients flow from the spikes and from the final states (a run
    continued later); the initial states get none."""

    @staticmethod
    def forward(ctx, lib, detach_reset: bool, x, state0, params):
        spikes = torch.empty_like(x)
        state = state0.clone()
        _call(lib, "forward", x, _ptr(x), _ptr(spikes), _ptr(state), _ptr(params), x.shape[0],
              x.shape[1])
        ctx.lib, ctx.detach_reset = lib, detach_reset
        ctx.save_for_backward(x, state0, params)
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None, not zeros
        return spikes, state

    @staticmethod
    def backward(ctx, grad_spikes, grad_state):
        x, state0, params = ctx.saved_tensors
        grad_x = torch.empty_like(x)
        partial = torch.zeros(x.shape[1], max(params.numel(), 1), dtype=x.dtype,
                              device=x.device)
        if grad_spikes is None:
            grad_spikes = x.new_zeros(()).expand_as(x)
        elif grad_spikes.stride(1) not in (0, 1):
            grad_spikes = grad_spikes.contiguous()
        grad_state = None if grad_state is None else grad_state.contiguous()
        args = [_ptr(x), _ptr(grad_spikes), *grad_spikes.stride(), _ptr(state0),
                None if grad_state is None else _ptr(grad_state), _ptr(params), _ptr(grad_x),
                _ptr(partial), x.shape[0], x.shape[1], int(ctx.detach_reset)]
        if x.device.type == "cuda":  # each step's state, recomputed: [T, S, M] (cuda.cu.j2)
            before = torch.empty(x.shape[0], *state0.shape, dtype=x.dtype, device=x.device)
            args.append(_ptr(before))
        _call(ctx.lib, "backward", x, *args)
        grad_params = partial.sum(0)[: params.numel()]
        return None, None, grad_x, None, grad_params


# The kernels' source is C for the CPU and CUDA for the GPU (Population.kernel, kernel_cuda).
_LOADERS = {"cpu": load, "cuda": load_cuda}


def run(source: str, detach_reset: bool, x_seq: torch.Tensor, states: list[torch.Tensor],
        params: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
    """Spikes [T, B, *shape] and the final states, or None when the kernels cannot run."""
    loader = _LOADERS.get(x_seq.device.type)
    if (loader is None or x_seq.dtype not in REAL
            or (x_seq.device.type == "cuda" and not _cuda_enabled)):
        return None
    lib = loader(source, REAL[x_seq.dtype])
    if lib is None:
        return None
    if not ctypes.c_int.in_dll(lib, "snnc_spike_has_gradient").value:
        x_seq, params = x_seq.detach(), [p.detach() for p in params]
    steps = x_seq.shape[0]
    flat = x_seq.reshape(steps, -1).contiguous()
    state0 = torch.stack([s.reshape(-1) for s in states]).to(x_seq.dtype).contiguous()
    vector = (torch.stack([p.reshape(()) for p in params]).to(x_seq.dtype) if params
              else torch.zeros(0, dtype=x_seq.dtype, device=x_seq.device))
    spikes, final = FusedNeuron.apply(lib, detach_reset, flat, state0, vector.contiguous())
    return spikes.view_as(x_seq), [f.view_as(s) for f, s in zip(final, states, strict=True)]
