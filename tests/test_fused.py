"""Fused CPU kernels against the reference step (the oracle): identical spikes, gradients
within 1e-5, gradcheck in float64."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import net
from snnc.compiler import compile as snnc_compile
from snnc.compiler import generate
from snnc.kernels.abi import KERNEL_ABI
from snnc.runtime import fused, native

pytestmark = [pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                 reason="no C compiler on this machine"),
              # a kernel that fails to build warns and falls back: here that is a failure
              pytest.mark.filterwarnings("error:snnc:UserWarning")]

T, B, N = 16, 3, 10
MODELS = ["IF", "LIF(tau = 2.0)", "LIF(tau = 3.0, decay_input = false, v_reset = -0.1)",
          "LIF(reset = soft, surrogate = atan(alpha = 2.0))", "LIF(detach_reset = true)",
          "PLIF(init_tau = 2.5)", "RIF(init_w = -0.1)", "CubaLIF(surrogate = rect(width = 1.0))",
          "Izhikevich(d = 6, surrogate = piecewise(1.0, 0.01, 0.5))",
          "LIF(surrogate = sign_swish(beta = 3.0))", "LIF(refractory = 2)",
          "PLIF(init_tau = 2.5, refractory = 3, reset = soft)", "SFIF", "SFLIF(tau = 2.0)",
          "AdaptiveLIF", "ILCIF(dec_pop_dim = 2)", "ILCLIF(dec_pop_dim = 5, v_decay = 0.6)",
          "ILCCubaLIF(dec_pop_dim = 2, refractory = 2)"]

# A model of the user's own: two states, a threshold that moves, a blended reset.
USER_MODEL = """
neuron AdaptiveLIF(tau = 2.0, tau_a = 5.0, beta = 0.3) {
    state v = 0
    state a = 0
    charge { v = v + (x - v) / tau;  a = a - a / tau_a }
    fire   v >= 1.0 + a
    reset  { v = 0;  a = a + beta }
}
"""


@pytest.fixture(autouse=True)
def kernels_on(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNC_CACHE", str(tmp_path / "cache"))
    fused.load.cache_clear()
    native.build.cache_clear()
    was_on = fused.enabled()
    fused.use_fused(True)
    yield
    fused.use_fused(was_on)


def population(tmp_path, model: str) -> torch.nn.Module:
    path = tmp_path / "k.snn"
    path.write_text(USER_MODEL + net(f"steps = {T}\ninput i[{N}]\n"
                                     f"population p[{N}] = {model}\nconnect i -> p", "k"))
    return snnc_compile(path)()


def run(module, x, use_kernels: bool, weighted: bool = True):
    """Spikes, the input's and the parameters' gradients and the final states, of a loss
    weighted per element (a contiguous gradient) or a plain sum (one value expanded)."""
    fused.use_fused(use_kernels)
    module.reset()
    xx = x.detach().clone().requires_grad_()
    spikes = module(xx)
    weights = torch.linspace(0.5, 1.5, spikes.numel(), dtype=x.dtype, device=x.device)
    if spikes.requires_grad:  # SFIF and SFLIF carry no gradient in the reference step
        (spikes * weights.view_as(spikes) if weighted else spikes).sum().backward()
    grads = [p.grad.clone() for p in module.parameters() if p.grad is not None]
    for p in module.parameters():
        p.grad = None
    pop = module.populations["p"]
    final = [*pop.states.values(), *([pop.countdown] if pop.refractory else [])]
    return spikes.detach(), xx.grad, grads, final


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("model", MODELS)
def test_fused_matches_the_reference_step(tmp_path, model, dtype):
    """Identical spikes and final states in both precisions (ILC states to rounding: the
    kernels sum the feedback in their own order, PyTorch's conv1d in another); gradients
    (input, learnable parameters, the feedback's conv) within 1e-5 in float64, where the
    order of summation cannot flip a spike."""
    module = population(tmp_path, model).to(dtype)
    scale = 40.0 if model.startswith("Izhikevich") else 1.5
    x = (torch.rand(T, B, N, generator=torch.Generator().manual_seed(0)) * scale).to(dtype)
    ref_spikes, ref_grad, ref_params, ref_final = run(module, x, False)
    spikes, grad, params, final = run(module, x, True)
    assert module.populations["p"].kernel is not None
    assert ref_spikes.sum() > 0
    assert torch.equal(spikes, ref_spikes)
    for got, want in zip(final, ref_final, strict=True):  # states (and countdown) exactly
        if model.startswith("ILC"):  # the feedback's sums run in PyTorch's conv1d order
            torch.testing.assert_close(got.detach(), want.detach())
        else:
            assert torch.equal(got.detach(), want.detach())
    if ref_grad is None:  # no gradient in the reference: none, or zeros, from the kernels
        assert grad is None or not grad.any()
    elif dtype == torch.float64:
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-9)
        for got, want in zip(params, ref_params, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("model", ["LIF(detach_reset = true)", "CubaLIF(detach_reset = true)",
                                   "PLIF(init_tau = 2.5, reset = soft, detach_reset = true)",
                                   "AdaptiveLIF(detach_reset = true)",
                                   "RIF(init_w = -0.1, refractory = 2, detach_reset = true)"])
def test_gradcheck_of_the_final_state(tmp_path, model):
    """torch.autograd.gradcheck in float64: the kernels' backward against finite
    differences. Spikes are a step function (their finite differences are zero; the
    surrogate is a choice, not a derivative), so the check follows the final state, with
    detach_reset so that the reset's derivative is exact too: it covers the reverse
    recurrence through charge, reset and refractory, into x and the learnable params."""
    module = population(tmp_path, model).double()
    pop = module.populations["p"]
    lib = fused.load(pop.kernel, "double")
    steps, batch, n = 6, 2, N
    x = (torch.rand(steps, batch, n, generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64) * 3.0).requires_grad_()
    params = [p.detach().clone().requires_grad_() for p in pop.learnable.values()]
    pop._init_states(x[0])
    slots = [*pop.states.values(), *([pop.countdown] if pop.refractory else [])]
    state0 = torch.stack([s.reshape(-1) for s in slots]).double()

    def final_state(x, *params):
        vector = torch.stack(params) if params else x.new_zeros(0)
        spikes, state = fused.FusedNeuron.apply(lib, True, x.reshape(steps, -1), state0,
                                                vector, x.new_zeros(0), 0, True)
        assert spikes.sum() > 0  # resets happen on the way
        return state[: len(pop.state_names)]

    assert torch.autograd.gradcheck(final_state, (x, *params), eps=1e-6, atol=1e-7)


def test_only_the_input_is_saved_for_the_backward(tmp_path):
    """4 bytes per neuron-step in float32: the kernels recompute states and spikes."""
    module = population(tmp_path, "LIF")
    x = torch.rand(T, B, N, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        module(x)
    big = [t for t in saved if t.numel() >= T * B * N]
    assert sum(t.numel() * t.element_size() for t in big) == T * B * N * 4


def assert_reference_after_one_warning(module, x, reference, warning: str) -> None:
    """Two runs with the kernels asked for: one warning, the reference step's spikes."""
    with pytest.warns(UserWarning, match=warning) as warned:
        first, *_ = run(module, x, True)
        second, *_ = run(module, x, True)
    assert len(warned) == 1
    assert torch.equal(first, reference) and torch.equal(second, reference)


def test_without_a_compiler_the_reference_step_runs_after_one_warning(tmp_path, monkeypatch):
    module = population(tmp_path, "LIF")
    x = torch.rand(T, B, N, generator=torch.Generator().manual_seed(1)) * 1.5
    reference, *_ = run(module, x, False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-folder"))
    monkeypatch.delenv("CC", raising=False)
    assert_reference_after_one_warning(module, x, reference, "no C compiler")


def test_kernels_of_another_snnc_version_are_not_called(tmp_path):
    """A module generated before a change of the kernels' arguments: one warning, then the
    reference step (calling them would pass the wrong arguments)."""
    module = population(tmp_path, "LIF")
    x = torch.rand(T, B, N, generator=torch.Generator().manual_seed(1)) * 1.5
    reference, *_ = run(module, x, False)
    pop = module.populations["p"]
    pop.kernel = pop.kernel.replace(f"snnc_kernel_abi = {KERNEL_ABI};", "snnc_kernel_abi = 1;")
    assert_reference_after_one_warning(module, x, reference, "another snnc version")


def test_processes_building_the_same_kernels_at_once_both_get_them(tmp_path):
    """As the ranks of a torchrun job do. Each writes its own files until its library is
    complete; the race this guards against is narrow, so the test shows that concurrent
    builds succeed and leave no failure behind, not that the race would be caught."""
    source = population(tmp_path, "CubaLIF").populations["p"].kernel
    (tmp_path / "k.c").write_text(source)
    script = ("import sys; from pathlib import Path; from snnc.runtime import fused; "
              "sys.exit(fused.load(Path(sys.argv[1]).read_text(), 'double') is None)")
    env = {**os.environ, "SNNC_CACHE": str(tmp_path / "shared")}
    ranks = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "k.c")], env=env)
             for _ in range(3)]
    assert [rank.wait() for rank in ranks] == [0, 0, 0]
    assert not list((tmp_path / "shared").rglob("*.failed"))


def test_kernels_are_cached_on_disk(tmp_path):
    module = population(tmp_path, "LIF")
    source = module.populations["p"].kernel
    first = fused.load(source, "float")
    fused.load.cache_clear()
    native.build.cache_clear()
    cached = list((tmp_path / "cache" / "kernels").glob("*.so"))
    assert first is not None and len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    assert fused.load(source, "float") is not None
    assert cached[0].stat().st_mtime_ns == mtime  # loaded, not rebuilt


def test_populations_of_one_model_share_one_kernel():
    """samples/mnist_mlp.snn: its two LIF populations, of different sizes, are built and
    loaded as one library (the kernels' source does not depend on the population)."""
    ((_, source),) = generate(Path(__file__).parents[1] / "samples" / "mnist_mlp.snn")
    kernels = re.findall(r'^(KERNEL_\w+) = r"""', source, re.MULTILINE)
    users = dict(re.findall(r"rt\.Population\('(\w+)'.*?\bkernel=(\w+)", source, re.DOTALL))
    assert len(kernels) == 1
    assert users == {"hidden": kernels[0], "out": kernels[0]}
