"""The spike-aware dense op against nn.Linear: the same outputs and gradients, the same
parameters, and the GEMM wherever the input is not sparse enough."""
from __future__ import annotations

import shutil

import pytest
import torch

from conftest import net
from snnc.compiler import compile as snnc_compile
from snnc.runtime import fused, spike_dense
from snnc.runtime.spike_dense import SpikeLinear

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler on this machine")


def both_ways(layer: SpikeLinear, x: torch.Tensor):
    """Output and gradients (input, weight, bias) through the layer and through the plain
    F.linear on the same parameters."""
    results = []
    for forward in (layer, lambda v: torch.nn.functional.linear(v, layer.weight, layer.bias)):
        xx = x.detach().clone().requires_grad_()
        out = forward(xx)
        out.backward(torch.linspace(-1, 1, out.numel(), dtype=x.dtype).view_as(out))
        results.append((out.detach(), xx.grad, layer.weight.grad, layer.bias.grad))
        layer.zero_grad(set_to_none=True)
    return results


def spikes(shape, density: float, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < density).to(dtype)


@pytest.mark.parametrize("shape", [(40, 37), (5, 8, 37), (1, 37)])
def test_matches_linear_in_float64(shape):
    """Odd sizes: the output tiles do not divide 53 columns."""
    layer = SpikeLinear(37, 53).double()
    x = spikes(shape, 0.15)
    assert layer._nonzeros(x.reshape(-1, 37)) is not None  # the sparse path runs
    got, want = both_ways(layer, x)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_graded_values_and_float32():
    """Not only 0/1: any mostly-zero input; float32 within its precision."""
    layer = SpikeLinear(100, 70)
    x = spikes((64, 100), 0.2, torch.float32) * torch.rand(64, 100)
    got, want = both_ways(layer, x)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_dense_input_takes_the_gemm():
    layer = SpikeLinear(30, 20).double()
    x = spikes((50, 30), 0.9)
    assert layer._nonzeros(x) is None
    assert torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))


def test_an_all_zero_input_gives_the_bias():
    layer = SpikeLinear(30, 20).double()
    torch.testing.assert_close(layer(torch.zeros(7, 30, dtype=torch.float64)),
                               layer.bias.detach().expand(7, 20))


def test_only_the_nonzeros_and_the_weight_are_saved():
    """The backward keeps the nonzeros (12 bytes each, on the autograd context) and the
    weight, never the input."""
    layer = SpikeLinear(200, 100, bias=False)
    x = spikes((400, 200), 0.1, torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        layer(x.requires_grad_())
    assert [tuple(t.shape) for t in saved] == [(100, 200)]  # the weight; no input


def test_kernels_off_means_plain_linear():
    layer = SpikeLinear(30, 20).double()
    fused.use_fused(False)
    try:
        assert layer._nonzeros(spikes((50, 30), 0.1)) is None
    finally:
        fused.use_fused(True)


def test_generated_dense_layers_use_it(tmp_path, monkeypatch):
    """Same parameters (and state_dict) as nn.Linear, and the same spikes as the GEMM."""
    path = tmp_path / "mlp.snn"
    path.write_text(net("steps = 6\ninput x[40]\npopulation h[30] = LIF(tau = 2.0)\n"
                        "population o[5] = LIF\nconnect x -> h : dense\n"
                        "connect h -> o : dense(bias = true)", "mlp"))
    model = snnc_compile(path)().double()
    layers = [m for m in model.modules() if isinstance(m, SpikeLinear)]
    assert len(layers) == 2
    assert {k.rsplit(".", 1)[-1] for k in model.state_dict()} >= {"weight", "bias"}
    for layer in layers:  # excitatory, so that the output layer fires too
        layer.weight.data.uniform_(0.0, 0.3, generator=torch.Generator().manual_seed(3))
    x = spikes((6, 4, 40), 0.2) * 3
    sparse_out = model(x)
    model.reset()
    monkeypatch.setattr(spike_dense, "DENSITY_LIMIT", 0.0)  # every input takes the GEMM
    dense_out = model(x)
    assert 0 < sparse_out.sum() < sparse_out.numel()
    assert torch.equal(sparse_out, dense_out)
