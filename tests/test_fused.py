"""Fused CPU kernels against the reference step (the oracle): identical spikes, gradients
within 1e-5, gradcheck in float64."""
from __future__ import annotations

import shutil

import pytest
import torch

from conftest import net
from snnc.compiler import compile as snnc_compile
from snnc.runtime import fused

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler on this machine")

T, B, N = 16, 3, 10
MODELS = ["IF", "LIF(tau = 2.0)", "LIF(tau = 3.0, decay_input = false, v_reset = -0.1)",
          "LIF(reset = soft, surrogate = atan(alpha = 2.0))", "LIF(detach_reset = true)",
          "PLIF(init_tau = 2.5)", "RIF(init_w = -0.1)", "CubaLIF(surrogate = rect(width = 1.0))",
          "Izhikevich(d = 6, surrogate = piecewise(1.0, 0.01, 0.5))",
          "LIF(surrogate = sign_swish(beta = 3.0))"]


@pytest.fixture(autouse=True)
def kernels_on(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNC_CACHE", str(tmp_path / "cache"))
    fused.load.cache_clear()
    fused.use_fused(True)
    yield
    fused.use_fused(False)


def population(tmp_path, model: str) -> torch.nn.Module:
    path = tmp_path / "k.snn"
    path.write_text(net(f"steps = {T}\ninput i[{N}]\npopulation p[{N}] = {model}\n"
                        "connect i -> p", "k"))
    return snnc_compile(path)()


def run(module, x, use_kernels: bool):
    fused.use_fused(use_kernels)
    module.reset()
    xx = x.detach().clone().requires_grad_()
    spikes = module(xx)
    weights = torch.linspace(0.5, 1.5, spikes.numel(), dtype=x.dtype).view_as(spikes)
    (spikes * weights).sum().backward()
    grads = [p.grad.clone() for p in module.parameters() if p.grad is not None]
    for p in module.parameters():
        p.grad = None
    return spikes.detach(), xx.grad, grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("model", MODELS)
def test_fused_matches_the_reference_step(tmp_path, model, dtype):
    """Identical spikes in both precisions; gradients (input and learnable parameters)
    within 1e-5 in float64, where the order of summation cannot flip a spike."""
    module = population(tmp_path, model).to(dtype)
    scale = 40.0 if model.startswith("Izhikevich") else 1.5
    x = (torch.rand(T, B, N, generator=torch.Generator().manual_seed(0)) * scale).to(dtype)
    ref_spikes, ref_grad, ref_params = run(module, x, False)
    spikes, grad, params = run(module, x, True)
    assert module.populations["p"].kernel is not None
    assert ref_spikes.sum() > 0
    assert torch.equal(spikes, ref_spikes)
    if dtype == torch.float64:
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-9)
        for got, want in zip(params, ref_params, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-9)


def test_only_the_input_is_saved_for_the_backward(tmp_path):
    """4 bytes per neuron-step in float32: the kernels recompute states and spikes."""
    module = population(tmp_path, "LIF")
    x = torch.rand(T, B, N, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        module(x)
    big = [t for t in saved if t.numel() >= T * B * N]
    assert sum(t.numel() * t.element_size() for t in big) == T * B * N * 4


def test_kernels_are_cached_on_disk(tmp_path):
    module = population(tmp_path, "LIF")
    source = module.populations["p"].kernel
    first = fused.load(source, "float")
    fused.load.cache_clear()
    cached = list((tmp_path / "cache" / "kernels").glob("*.so"))
    assert first is not None and len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    assert fused.load(source, "float") is not None
    assert cached[0].stat().st_mtime_ns == mtime  # loaded, not rebuilt
