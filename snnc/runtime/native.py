"""Native code for snnc's runtime: a C or CUDA source text in, a loaded library out, with
the functions the caller names bound to the ctypes signatures it gives.

    library = native.load(source, language="c", flags=("-DREAL=float",),
                          functions={"add": (ctypes.c_double, [ctypes.c_double] * 2),
                                     "scale": (None, [ctypes.c_void_p, ctypes.c_int64])})
    if library is not None:          # None: it cannot be built here (one warning said why)
        library.add(1.0, 2.0)
        ctypes.c_int.in_dll(library.handle, "some_constant")  # anything else it exports

The compiler is the system's: for C $CC, cc, gcc or clang; for CUDA $NVCC, nvcc or
$CUDA_HOME/bin/nvcc. Flag variants are tried in order, from the fastest (this CPU's
instruction set, OpenMP, glibc's vector math, which the source sees as SNNC_MVEC; this
machine's GPUs) to portable code, and the first that builds and loads is kept. No build
fuses a multiply and an add: snnc's native code computes what PyTorch computes, op by op.

Libraries are cached on disk (kernels/ under $SNNC_CACHE, else ~/.cache/snnc), named by a
hash of the compiler, flags, the machine they were built for and the source, so each is
compiled once per machine; a variant that failed is remembered there too. In a process,
`build` remembers what it opened (`build.cache_clear()` forgets it, not the disk cache).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from snnc.resources import cache_root

# A function's ctypes signature: (restype, argtypes); restype None for void.
Signature = tuple[Any, Sequence[Any]]
# Why a library that loaded cannot run on this machine, or None when it can.
Check = Callable[[ctypes.CDLL], str | None]

# -ffp-contract=off: no fused multiply-add, so results match PyTorch op by op;
# -fno-trapping-math lets comparisons become vector selects (the loops vectorise).
C_FLAGS = ("-O3", "-fno-trapping-math", "-fno-math-errno", "-ffp-contract=off", "-shared",
           "-fPIC")
# Vector math from glibc, this CPU's ISA, threads; the last is plain C any compiler takes.
C_VARIANTS = (("-march=native", "-fopenmp", "-DSNNC_MVEC", "-lmvec"),
              ("-march=native", "-fopenmp"), ("-fopenmp",), ())
# nvcc: -fmad=false is -ffp-contract=off. This machine's GPUs first, then nvcc's default
# architecture, which the driver compiles for the GPU at load time.
CUDA_FLAGS = ("-O3", "-fmad=false", "-shared", "-Xcompiler", "-fPIC")
CUDA_VARIANTS = (("-arch=native",), ())


def cache_dir() -> Path:
    return cache_root() / "kernels"


@cache
def host() -> str:
    """What -march=native builds for: a cache shared by two kinds of CPU keeps both."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({line for line in info if line.startswith(("model name",
                                                                           "flags"))}))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


@cache
def gpus() -> str:
    """What -arch=native builds for, as host() for the CPU."""
    import torch  # only to name the GPUs: C code builds where PyTorch is not installed

    return "\n".join(f"{torch.cuda.get_device_name(i)} {torch.cuda.get_device_capability(i)}"
                     for i in range(torch.cuda.device_count()))


def c_compiler() -> str | None:
    return (shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
            or shutil.which("clang"))


def nvcc() -> str | None:
    cuda_home = os.environ.get("CUDA_HOME") or "/usr/local/cuda"
    return shutil.which(os.environ.get("NVCC", "nvcc")) or shutil.which(f"{cuda_home}/bin/nvcc")


@dataclass(frozen=True)
class _Language:
    compiler: Callable[[], str | None]
    missing: str  # the warning where there is no compiler
    flags: tuple[str, ...]
    variants: tuple[tuple[str, ...], ...]
    suffix: str  # nvcc tells CUDA from C by the source file's suffix
    machine: Callable[[], str]


_LANGUAGES = {
    "c": _Language(c_compiler, "no C compiler found (set CC)", C_FLAGS, C_VARIANTS, "c", host),
    "cuda": _Language(nvcc, "no CUDA compiler found (set NVCC or CUDA_HOME)", CUDA_FLAGS,
                      CUDA_VARIANTS, "cu", gpus),
}


class Library:
    """A library's functions, bound as attributes with the caller's signatures; `handle`
    (the ctypes.CDLL) for anything else it exports."""

    def __init__(self, handle: ctypes.CDLL, functions: Mapping[str, Signature]):
        self.handle = handle
        for name, (restype, argtypes) in functions.items():
            function = handle[name]  # a pointer of its own: other callers' signatures stay
            function.restype, function.argtypes = restype, list(argtypes)
            setattr(self, name, function)


def load(source: str, *, language: str = "c", functions: Mapping[str, Signature],
         flags: Sequence[str] = (), check: Check | None = None,
         what: str = "the native code", fallback: str = "the Python code runs instead"
         ) -> Library | None:
    """`source` built and loaded (see `build`), its `functions` bound; None where it
    cannot be."""
    handle = build(source, language, tuple(flags), check, what, fallback)
    return None if handle is None else Library(handle, functions)


def load_current(source: str, abi: str, *, functions: Mapping[str, Signature],
                 flags: Sequence[str] = (), what: str, fallback: str) -> Library | None:
    """`load` for native code that a generated module embeds: None, with one warning to
    rebuild the module, where the source does not declare `abi` (the calling convention
    of this runtime, e.g. `snnc_loop_abi = 3;`)."""
    if abi not in source:
        _warn(f"snnc: {what} of this module was generated by another snnc version; "
              f"rebuild the module with `snnc build` to use it ({fallback})")
        return None
    return load(source, functions=functions, flags=flags, what=what, fallback=fallback)


@cache
def build(source: str, language: str = "c", flags: tuple[str, ...] = (),
          check: Check | None = None, what: str = "the native code",
          fallback: str = "the Python code runs instead") -> ctypes.CDLL | None:
    """The library of the first variant that builds, loads and passes `check`, with
    `flags` after the variant's (e.g. -D definitions); None where none does, after one
    warning that says why, naming `what` (what was to be built) and `fallback` (what the
    caller does instead)."""
    toolchain = _LANGUAGES[language]
    compiler = toolchain.compiler()
    if compiler is None:
        _warn(f"snnc: {toolchain.missing} to build {what}; {fallback}")
        return None
    problem = f"{compiler} could not build {what}"
    for variant in toolchain.variants:
        handle = build_and_open(compiler, source, (*toolchain.flags, *variant, *flags),
                                toolchain.suffix, toolchain.machine)
        if handle is None:
            continue
        # asked in each process, not remembered on disk: a new driver may fix it
        reason = None if check is None else check(handle)
        if reason is None:
            return handle
        problem = f"{what} cannot run here ({reason})"
    _warn(f"snnc: {problem}; {fallback}")
    return None


def build_and_open(compiler: str, source: str, flags: tuple[str, ...], suffix: str = "c",
                   machine: Callable[[], str] = host) -> ctypes.CDLL | None:
    """One variant: the library from the disk cache, built first if it is not there (or is
    there but does not load); None where it does not build or load, remembered on disk so
    that later processes skip it at once (the `.failed` file holds the reason)."""
    digest = hashlib.sha256("\n".join((compiler, *flags, machine(), source)).encode())
    library = cache_dir() / f"{digest.hexdigest()[:24]}.so"
    failed = library.with_suffix(".failed")
    if failed.exists():
        return None
    if library.exists():
        try:
            return ctypes.CDLL(str(library))
        except OSError:
            pass  # cut short (a full disk, a killed copy): built again below
    errors = _compile(compiler, source, flags, library.with_suffix(f".{suffix}"), library)
    if errors is None:
        try:
            return ctypes.CDLL(str(library))
        except OSError as error:  # e.g. a vector math function this libmvec lacks
            errors = str(error)
    _write_whole(failed, errors)
    return None


def _compile(compiler: str, source: str, flags: tuple[str, ...], source_file: Path,
             library: Path) -> str | None:
    """Builds `library` (with `source_file` beside it, to read); the compiler's messages
    where it fails. Both are written in a folder of this build's own and moved into place
    whole: processes building the same source at once (the ranks of one training job)
    never see each other's half-written files."""
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent, prefix=".build-") as scratch:
        own_source, own_library = Path(scratch) / source_file.name, Path(scratch) / library.name
        own_source.write_text(source)
        built = subprocess.run([compiler, *flags, "-o", str(own_library), str(own_source),
                                "-lm"], capture_output=True, text=True)
        if built.returncode != 0:
            return built.stderr or f"{compiler} exited with status {built.returncode}"
        os.replace(own_source, source_file)
        os.replace(own_library, library)
    return None


def _write_whole(path: Path, text: str) -> None:
    """`text` into `path`, which readers see absent or complete."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".", delete=False) as file:
        file.write(text)
    os.replace(file.name, path)


def _warn(message: str) -> None:
    """A warning attributed to the first caller outside snnc (the user's program), however
    deep in snnc native code is asked for."""
    package, frame, level = Path(__file__).parents[1], sys._getframe(), 1
    while frame is not None and Path(frame.f_code.co_filename).is_relative_to(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, stacklevel=level)
