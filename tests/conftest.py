"""Shared helpers: compile .snn text from a temporary file."""
from __future__ import annotations

from pathlib import Path

import pytest

from snnc.compiler import frontend
from snnc.errors import SnnError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def kernel_cache(tmp_path_factory):
    """Fused kernels are built into a cache of this test run's own, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SNNC_CACHE", str(tmp_path_factory.mktemp("snnc-cache")))
        yield


@pytest.fixture
def compile_text(tmp_path):
    """compile_text(text, name='net.snn') -> list of graphs."""
    def run(text: str, name: str = "net.snn", **kwargs):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return frontend(path, **kwargs)
    return run


@pytest.fixture
def error_of(compile_text):
    """error_of(text) -> the SnnError that compiling `text` raises (fails if none)."""
    def run(text: str, **kwargs) -> SnnError:
        with pytest.raises(SnnError) as info:
            compile_text(text, **kwargs)
        return info.value
    return run


def net(body: str, name: str = "t") -> str:
    """Wrap statements in a network."""
    return f"network {name} {{\n{body}\n}}\n"


# A conductance-based model: connections deliver into ge and gi (`channel = ge`).
CONDUCTANCE = (
    "neuron Cond(v_reset = 0.0, tau = 4.0, e_exc = 2.0, e_inh = -1.0) {\n"
    "    state v = 0\n    state ge = 0\n    state gi = 0\n"
    "    charge { ge = ge * 0.5; gi = gi * 0.75; "
    "v = v + (ge * (e_exc - v) + gi * (e_inh - v) - v) / tau + x }\n"
    "    fire v >= 0.8\n    reset hard\n}\n")
