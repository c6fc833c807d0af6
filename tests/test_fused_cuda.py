"""Fused CUDA kernels: they build wherever nvcc is (no GPU needed), and on a GPU they match
the reference step there: identical spikes and final states, gradients within 1e-5 in
float64 (the tests of test_fused.py, on CUDA tensors)."""
from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from test_fused import MODELS, B, N, T, population, run

from snnc.kernels.abi import KERNEL_ABI
from snnc.runtime import fused, native

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc on this machine")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason="no CUDA device (or a CPU-only PyTorch)")

BUILT = ["IF", "LIF(reset = soft, surrogate = atan(alpha = 2.0))", "PLIF(init_tau = 2.5)",
         "CubaLIF(surrogate = rect(width = 1.0))",
         "Izhikevich(d = 6, surrogate = piecewise(1.0, 0.01, 0.5))",
         "LIF(tau = 3.0, refractory = 2)", "LIF(detach_reset = true)"]
EXPORTS = ("snnc_forward_cuda", "snnc_backward_cuda", "snnc_cuda_probe", "snnc_cuda_error")


@pytest.fixture(autouse=True)
def kernels_on(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNC_CACHE", str(tmp_path / "cache"))
    fused.load_cuda.cache_clear()
    native.build.cache_clear()
    was_on = fused.enabled()
    fused.use_fused(True, cuda=True)
    yield
    fused.use_fused(was_on, cuda=False)


def build(source: str, real: str):
    """The library as the runtime builds it for nvcc's default architecture (no GPU is
    needed to build one); the compiler's messages are in the cache's .failed file."""
    return native.build_and_open(shutil.which("nvcc"), source,
                                 (*native.CUDA_FLAGS, f"-DREAL={real}"), suffix="cu",
                                 machine=lambda: "")


@needs_nvcc
@pytest.mark.parametrize("model", BUILT)
def test_cuda_kernels_build_in_both_precisions(tmp_path, model):
    source = population(tmp_path, model).populations["p"].kernel_cuda
    with ThreadPoolExecutor(2) as pool:  # nvcc takes about a second a build
        libraries = list(pool.map(lambda real: build(source, real), ("float", "double")))
    errors = "\n".join(f.read_text() for f in (tmp_path / "cache").rglob("*.failed"))
    assert all(lib is not None for lib in libraries), errors
    assert all(hasattr(lib, name) for lib in libraries for name in EXPORTS)


@needs_nvcc
@pytest.mark.skipif(torch.cuda.is_available(), reason="this GPU runs the kernels")
def test_without_a_gpu_the_built_kernels_are_refused_with_one_warning(tmp_path):
    source = population(tmp_path, "LIF").populations["p"].kernel_cuda
    with pytest.warns(UserWarning, match="cannot run here") as warned:
        assert fused.load_cuda(source, "float") is None
        assert fused.load_cuda(source, "float") is None
    assert len(warned) == 1


def test_without_nvcc_the_cuda_kernels_are_off_after_one_warning(tmp_path, monkeypatch):
    source = f"const int snnc_kernel_abi = {KERNEL_ABI};"
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-folder"))
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "no-cuda"))
    monkeypatch.delenv("NVCC", raising=False)
    with pytest.warns(UserWarning, match="no CUDA compiler") as warned:
        assert fused.load_cuda(source, "float") is None
        assert fused.load_cuda(source, "float") is None
    assert len(warned) == 1


def assert_kernels_match(module, x, weighted: bool = True) -> None:
    pop = module.populations["p"]
    assert fused.load_cuda(pop.kernel_cuda, fused.REAL[x.dtype]) is not None
    ref_spikes, ref_grad, ref_params, ref_final = run(module, x, False, weighted)
    spikes, grad, params, final = run(module, x, True, weighted)
    assert ref_spikes.sum() > 0
    assert torch.equal(spikes, ref_spikes)
    for got, want in zip(final, ref_final, strict=True):  # states (and countdown) exactly
        assert torch.equal(got.detach(), want.detach())
    if x.dtype == torch.float64:
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-9)
        for got, want in zip(params, ref_params, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-9)


def cuda_input(model: str, dtype: torch.dtype) -> torch.Tensor:
    scale = 40.0 if model.startswith("Izhikevich") else 1.5
    x = torch.rand(T, B, N, generator=torch.Generator().manual_seed(0)) * scale
    return x.to("cuda", dtype)


@needs_gpu
@needs_nvcc
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("model", [m for m in MODELS if not m.startswith("ILC")])
def test_cuda_kernels_match_the_reference_step_on_the_gpu(tmp_path, model, dtype):
    module = population(tmp_path, model).to("cuda", dtype)
    assert_kernels_match(module, cuda_input(model, dtype))


@needs_gpu
@needs_nvcc
def test_cuda_kernels_read_a_gradient_expanded_over_the_sequence(tmp_path):
    """The gradient of a plain sum is one value with strides (0, 0)."""
    module = population(tmp_path, "PLIF(init_tau = 2.5)").to("cuda", torch.float64)
    assert_kernels_match(module, cuda_input("PLIF", torch.float64), weighted=False)
