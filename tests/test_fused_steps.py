"""The fused CPU kernels one step at a time: a recurrent network runs step by step, each
population's step one kernel call whose backward (in C) also gives the gradient to the
states the step started from, so that it reaches the steps before. Spikes and gradients
are those of the reference step (the printed PyTorch step, autograd through it)."""
from __future__ import annotations

import pytest
import torch

import snnc
from snnc.runtime import fused

NET = """network rec {
    dt = 1 ms
    seed = 4
    input x[5]
    population a[8] = LIF(tau = 4 ms, refractory = 2 ms, v_init = uniform(0, 0.5))
    population b[6] = CubaLIF(c_decay = 0.6, v_decay = 0.8, v_threshold = 0.4, reset = soft)
    population o[3] = PLIF(init_tau = 3.0, detach_reset = true)
    connect x -> a : dense(w = uniform(0, 1))
    connect a -> b : sparse(p = 0.6, w = uniform(0, 1)) delay 2 via exp_current(tau = 3 ms)
    connect b -> a : dense(w = uniform(-0.5, 0.5)) delay 1
    connect b -> o : dense(w = uniform(0, 1))
    monitor a.spikes, b.v
}
"""


def run(path, kernels: bool, x: torch.Tensor, monkeypatch):
    calls = []
    real_run = fused.run
    def counted(*args, **kwargs):
        result = real_run(*args, **kwargs)
        calls.append(result is not None)  # the kernels ran (None: they did not build)
        return result
    monkeypatch.setattr(fused, "run", counted)
    was_on = fused.enabled()
    fused.use_fused(kernels)
    try:
        net = snnc.compile(path)()
        x = x.clone().requires_grad_()
        out = net(x)
        loss = (out * torch.linspace(0.5, 1.5, out.shape[-1])).sum() + net.monitors["b.v"].sum()
        loss.backward()
        grads = {name: p.grad.clone() for name, p in net.named_parameters()}
        # every population's every step in the kernels, or none
        assert sum(calls) == (3 * len(x) if kernels else 0)
        return out.detach(), net.monitors["a.spikes"].detach(), grads, x.grad
    finally:
        fused.use_fused(was_on)
        monkeypatch.setattr(fused, "run", real_run)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_step_by_step_kernels_give_the_reference_spikes_and_gradients(tmp_path, dtype,
                                                                      monkeypatch):
    path = tmp_path / "rec.snn"
    path.write_text(NET)
    torch.manual_seed(0)
    x = (torch.rand(40, 3, 5) * 2).to(dtype)
    with torch.autograd.set_grad_enabled(True):
        torch.set_default_dtype(dtype)
        try:
            kernel, reference = run(path, True, x, monkeypatch), run(path, False, x, monkeypatch)
        finally:
            torch.set_default_dtype(torch.float32)
    out, spikes, grads, grad_x = kernel
    ref_out, ref_spikes, ref_grads, ref_x = reference
    assert torch.equal(out, ref_out) and torch.equal(spikes, ref_spikes)
    assert 0 < spikes.mean() < 0.9 and out.sum() > 0
    tolerance = {"rtol": 1e-9, "atol": 1e-9} if dtype == torch.float64 else \
        {"rtol": 2e-4, "atol": 2e-5}
    assert grads.keys() == ref_grads.keys() and len(grads) >= 5
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], **tolerance, msg=name)
    torch.testing.assert_close(grad_x, ref_x, **tolerance)
    assert grad_x.abs().sum() > 0


def test_the_initial_states_gradient_reaches_the_step_before(tmp_path):
    """Two calls of one step each, the second's loss only: the gradient to the first
    call's input goes through the state the second started from."""
    path = tmp_path / "one.snn"
    path.write_text("network one {\n input x[4]\n population p[4] = LIF(tau = 2.0)\n"
                    " connect x -> p : one_to_one(w = 1)\n}\n")
    grads = []
    for kernels in (True, False):
        fused.use_fused(kernels)
        try:
            net = snnc.compile(path)()
            first = torch.full((1, 1, 4), 0.6, requires_grad=True)
            net(first)
            net(torch.full((1, 1, 4), 0.3)).sum().backward()
            grads.append(first.grad)
        finally:
            fused.use_fused(True)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1])
