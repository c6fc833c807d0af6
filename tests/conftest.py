"""Shared helpers: compile .snn text from a temporary file."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

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


# Learning on every connectivity (per-synapse delays, a synapse, f_w multiplicative) and
# SpikingFlow's every-step rule with f_w = normalized (a sum over the synapses), from
# given spikes: a batch's simulations can each be run alone.
LEARNING = """seed = 6
steps = 50
input pre[10]
input drive[5]
population mid[10] = IF(v_threshold = 0.5)
population post[5] = LIF(tau = 5.0, v_threshold = 0.5)
population side[3] = IF(v_threshold = 0.6)
connect pre -> mid : one_to_one(w = 0.6) delay uniform(0, 2)
    learn stdp(tau_pre = 3, tau_post = 3, a_pre = 0.01, a_post = -0.02, w_max = 1)
connect drive -> post as push
connect mid -> post as wide : dense(w = uniform(0, 0.3)) delay uniform(1, 4)
    learn stdp(tau_pre = 5, tau_post = 6, a_pre = 0.05, a_post = -0.04, w_max = 0.4)
connect pre -> post as thin : sparse(p = 0.5, w = 0.2) delay uniform(0, 2)
    via exp_current(tau = 2)
    learn stdp(tau_pre = 4, tau_post = 4, a_pre = 0.03, a_post = -0.03, w_max = 0.5,
               f_w = multiplicative)
connect pre -> side : sparse(p = 0.6, w = uniform(0.1, 0.5)) delay 1
    learn spikingflow_stdp(tau_pre = 5, tau_post = 8, learning_rate = 0.05,
                           f_w = normalized)
monitor post.spikes, mid.spikes, side.spikes"""


def learning_inputs(batch: int, steps: int = 50) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(9)
    return {"pre": (torch.rand(steps, batch, 10, generator=g) < 0.3).double(),
            "drive": torch.rand(steps, batch, 5, generator=g, dtype=torch.float64)}
