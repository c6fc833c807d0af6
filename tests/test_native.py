"""snnc.runtime.native with signatures that are not the neuron kernels': functions bound as
asked, the disk cache (a second load does not run the compiler), a source that does not
compile (None after one warning), a cached library cut short (rebuilt), and processes
building one source at once."""
from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from snnc.runtime import native

pytestmark = pytest.mark.skipif(native.c_compiler() is None,
                                reason="no C compiler on this machine")

SOURCE = """
#include <stdint.h>
const int answer = ANSWER;
double add(double a, double b) { return a + b; }
void scale(float *x, int64_t n, float by) { for (int64_t i = 0; i < n; ++i) x[i] *= by; }
"""
FUNCTIONS = {"add": (ctypes.c_double, [ctypes.c_double, ctypes.c_double]),
             "scale": (None, [ctypes.POINTER(ctypes.c_float), ctypes.c_int64, ctypes.c_float])}


@pytest.fixture(autouse=True)
def compilations(tmp_path, monkeypatch):
    """The compiler as a script that logs each run; a function counting the runs so far."""
    log = tmp_path / "compilations.log"
    wrapper = tmp_path / "cc"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{native.c_compiler()}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    monkeypatch.setenv("SNNC_CACHE", str(tmp_path / "cache"))
    native.build.cache_clear()
    return lambda: len(log.read_text().splitlines()) if log.exists() else 0


def load(source: str = SOURCE) -> native.Library | None:
    return native.load(source, functions=FUNCTIONS, flags=("-DANSWER=42",))


def assert_works(library: native.Library | None) -> None:
    assert library is not None
    assert library.add(1.5, 2.25) == 3.75
    values = (ctypes.c_float * 4)(1.0, 2.0, 3.0, 4.0)
    library.scale(values, len(values), 0.5)
    assert list(values) == [0.5, 1.0, 1.5, 2.0]
    assert ctypes.c_int.in_dll(library.handle, "answer").value == 42  # flags reach the source


def test_functions_are_bound_with_the_signatures_given():
    assert_works(load())


def test_a_second_load_reads_the_library_from_the_disk_cache(compilations):
    assert_works(load())
    built = compilations()
    assert built >= 1
    native.build.cache_clear()  # as a new process would
    assert_works(load())
    assert compilations() == built


def test_a_source_that_does_not_compile_gives_none_after_one_warning(compilations):
    with pytest.warns(UserWarning, match="could not build the native code") as warned:
        assert load("this is not C") is None
        assert load("this is not C") is None
    assert len(warned) == 1
    assert compilations() == len(native.C_VARIANTS)  # every variant tried, once
    native.build.cache_clear()
    with pytest.warns(UserWarning, match="could not build"):
        assert load("this is not C") is None
    assert compilations() == len(native.C_VARIANTS)  # the failures are remembered on disk


def test_without_a_compiler_load_gives_none_after_one_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-folder"))
    monkeypatch.delenv("CC")
    with pytest.warns(UserWarning, match="no C compiler found") as warned:
        assert load() is None
        assert load() is None
    assert len(warned) == 1
    assert warned[0].filename == __file__  # the caller's line, not snnc's


def test_a_cached_library_cut_short_is_built_again(tmp_path, monkeypatch, compilations):
    """The same library in a second cache, truncated there (a full disk, a killed copy):
    a second folder, since a process never reopens a path it has loaded."""
    assert_works(load())
    (built,) = (tmp_path / "cache" / "kernels").glob("*.so")
    second = tmp_path / "second" / "kernels"
    second.mkdir(parents=True)
    (second / built.name).write_bytes(built.read_bytes()[:100])
    monkeypatch.setenv("SNNC_CACHE", str(tmp_path / "second"))
    native.build.cache_clear()
    before = compilations()
    assert_works(load())
    assert compilations() == before + 1
    assert not list(second.glob("*.failed"))


def test_processes_building_one_source_at_once_both_get_it(tmp_path):
    """Each builds in a folder of its own and moves complete files into place: both load
    a library, and neither leaves a failure or a half-built file behind."""
    folder = str(Path(native.__file__).parent)  # native alone: no torch to import, fast
    script = (f"import sys; sys.path.insert(0, {folder!r}); import native; "
              f"sys.exit(native.load({SOURCE!r}, functions={{}}, flags=('-DANSWER=1',)) is None)")
    processes = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    assert [process.wait() for process in processes] == [0, 0]
    files = sorted(Path(p).name for p in (tmp_path / "cache" / "kernels").iterdir())
    assert len(files) == 2 and files[0].endswith(".c") and files[1].endswith(".so"), files
