"""The wheel carries the grammar, the templates (kernels included) and the standard library;
an installed copy finds them."""
from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    (path,) = out.glob("snnc-*.whl")
    return path


def test_wheel_ships_grammar_stdlib_and_entry_point(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "snnc/grammar/snn.lark" in names
    assert "snnc/stdlib/neurons.snn" in names
    assert "snnc/templates/softbp/network.py.j2" in names
    assert "snnc/templates/torch/connection.py.j2" in names
    assert "snnc/registry/ops.py" in names and "snnc/plan/lower.py" in names
    for kernel in ("cpu.c.j2", "cuda.cu.j2", "step.h.j2", "spike_dense.c", "sparse_events.c",
                   "loop.c.j2"):
        assert f"snnc/templates/kernels/{kernel}" in names
    assert "snnc/interchange/nir_import.py" in names
    assert "snnc/interchange/nir_models.snn" in names  # what `snnc import` writes
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "snnc = snnc.cli:run" in zipfile.ZipFile(wheel).read(entry).decode()


def test_unpacked_wheel_checks_and_builds_a_sample_from_elsewhere(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    sample = tmp_path / "n.snn"
    sample.write_text("network n { input i[4]\n population p[4] = LIF\n connect i -> p }")
    result = subprocess.run([sys.executable, "-I", "-c",
                             f"import sys; sys.path.insert(0, {str(site)!r}); "
                             "import snnc, snnc.cli; print(snnc.__file__); "
                             f"assert snnc.cli.main(['check', {str(sample)!r}]) == 0; "
                             f"sys.exit(snnc.cli.main(['build', {str(sample)!r}]))"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(str(site))


@pytest.mark.slow
def test_fresh_venv_non_editable_install(tmp_path):
    """What the README promises: torch first, then `pip install .`, then `snnc check`."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, str(ROOT)], check=True)
    for sample in sorted((ROOT / "samples").glob("*.snn")):
        result = subprocess.run([str(venv / "bin" / "snnc"), "check", str(sample)],
                                capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
