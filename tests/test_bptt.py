"""softbp's compiled step-by-step run (snnc.runtime.bptt): a recurrent network's whole
forward in one native call and its backward (BPTT) in another. The spikes must be the
PyTorch step path's, bit for bit, and the gradients those of autograd through that path
(the fused kernels per step) and through the reference step (kernels off), to float
tolerance: weights, biases, learnable parameters of neurons and synapses, the input, and
the states a call starts from."""
from __future__ import annotations

import pytest
import torch

import snnc
from snnc.runtime import bptt, fused

NET = """network rec {
    dt = 1 ms
    seed = 4
    input x[5]
    population a[8] = LIF(tau = 4 ms, refractory = 2 ms, v_init = uniform(0, 0.5))
    population b[6] = CubaLIF(c_decay = 0.6, v_decay = 0.8, v_threshold = 0.4, reset = soft)
    population o[6] = PLIF(init_tau = 3.0, detach_reset = true)
    connect x -> a : dense(w = uniform(0, 1), bias = true) | scale(1.5)
    connect a -> b : sparse(p = 0.6, w = uniform(0, 1)) delay 2 via exp_current(tau = 3 ms)
    connect b -> a : dense(w = uniform(-0.5, 0.5)) delay 1 via filter(tau = 4 ms, learnable = true)
    connect b -> o : one_to_one(w = uniform(0.5, 1.5)) delay 1
    connect a -> o : flatten | scale(0.5) | sparse(p = 0.5, w = uniform(0, 1))
    monitor a.spikes, b.spikes
}
"""
PATHS = ("compiled", "steps", "reference")


def run(path, which: str, x: torch.Tensor, monkeypatch, calls: int = 1):
    """Spikes, gradients and the input's gradient on one of the three paths; `calls`
    forwards over parts of x, one loss over all (states carried between calls)."""
    monkeypatch.setenv("SNNC_BPTT", "1" if which == "compiled" else "0")
    used = []
    real_run = bptt.run
    monkeypatch.setattr(bptt, "run", lambda *a: used.append(real_run(*a)) or used[-1])
    was_on = fused.enabled()
    fused.use_fused(which != "reference")
    try:
        net = snnc.compile(path)()
        x = x.clone().requires_grad_()
        outs, spikes, loss = [], [], 0
        for part in x.chunk(calls):
            out = net(part)
            outs.append(out.detach())
            spikes.append(torch.cat([net.monitors["a.spikes"], net.monitors["b.spikes"]], -1))
            loss = loss + (out * torch.linspace(0.5, 1.5, out.shape[-1])).sum() \
                + (spikes[-1] * torch.linspace(-1, 1, spikes[-1].shape[-1])).sum()
        loss.backward()
        assert all(r is not None for r in used) == (which == "compiled") and len(used) == calls
        grads = {name: p.grad.clone() for name, p in net.named_parameters()}
        return torch.cat(outs), torch.cat(spikes).detach(), grads, x.grad
    finally:
        fused.use_fused(was_on)


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "rec.snn"
    path.write_text(NET)
    return path


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("calls", [1, 3])
def test_compiled_run_gives_the_step_paths_spikes_and_gradients(net_file, dtype, calls,
                                                                monkeypatch):
    torch.manual_seed(0)
    x = (torch.rand(45, 3, 5) < 0.4).to(dtype)
    torch.set_default_dtype(dtype)
    try:
        results = {which: run(net_file, which, x, monkeypatch, calls) for which in PATHS}
    finally:
        torch.set_default_dtype(torch.float32)
    out, spikes, grads, grad_x = results["compiled"]
    assert 0.05 < spikes.mean() < 0.9 and out.sum() > 0
    tolerance = {"rtol": 1e-9, "atol": 1e-9} if dtype == torch.float64 else \
        {"rtol": 2e-4, "atol": 2e-5}
    for which in ("steps", "reference"):
        ref_out, ref_spikes, ref_grads, ref_x = results[which]
        assert torch.equal(out, ref_out) and torch.equal(spikes, ref_spikes), which
        assert grads.keys() == ref_grads.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], ref_grads[name], **tolerance,
                                       msg=f"{which}: {name}")
        torch.testing.assert_close(grad_x, ref_x, **tolerance)
    # every kind of gradient is there and not zero
    assert len(grads) >= 8 and all(g.abs().sum() > 0 for g in grads.values())
    assert grad_x.abs().sum() > 0


def test_a_long_run_goes_segment_by_segment(net_file, monkeypatch):
    """The backward records and reverses a bounded tape at a time: with a tape of a few
    steps the gradients are those of one tape for the whole run."""
    torch.manual_seed(1)
    x = (torch.rand(60, 2, 5) < 0.4).double()
    torch.set_default_dtype(torch.float64)
    try:
        whole = run(net_file, "compiled", x, monkeypatch)
        monkeypatch.setattr(bptt, "TAPE_BYTES", 2000)  # a few steps a segment
        segmented = run(net_file, "compiled", x, monkeypatch)
    finally:
        torch.set_default_dtype(torch.float32)
    assert torch.equal(whole[1], segmented[1])
    for name in whole[2]:
        torch.testing.assert_close(whole[2][name], segmented[2][name], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(whole[3], segmented[3], rtol=1e-12, atol=1e-12)


def test_a_state_monitor_runs_the_step_path(tmp_path, monkeypatch):
    """A monitor of `v` needs every step's state: the PyTorch path records it."""
    path = tmp_path / "v.snn"
    path.write_text(NET.replace("monitor a.spikes, b.spikes", "monitor a.spikes, b.spikes, b.v"))
    net = snnc.compile(path)()
    assert type(net).bptt_source is not None
    monkeypatch.setattr(bptt, "_library", lambda *a: pytest.fail("the compiled run was tried"))
    net(torch.zeros(4, 1, 5))
    assert net.monitors["b.v"].shape == (4, 1, 6)


def test_what_the_compiled_run_does_not_cover_builds_without_it(tmp_path):
    path = tmp_path / "stp.snn"
    path.write_text(NET.replace("via exp_current(tau = 3 ms)", "via stp(v_base = 0.2)"))
    assert snnc.compile(path).bptt_source is None
    assert snnc.compile(path)()(torch.zeros(3, 1, 5)).shape == (3, 1, 6)


def test_an_encoder_feeds_the_compiled_run_its_own_draws(tmp_path, monkeypatch):
    """Poisson spikes come from the encoder's stream before the run (docs/RNG.md), so a
    seeded network gives the step path's spikes, and the gradient reaches the image the
    encoder reads only where the encoder passes one (Poisson: none)."""
    path = tmp_path / "enc.snn"
    path.write_text(NET.replace("input x[5]", "input img[5]\n    encoder x = poisson(img)"))
    torch.manual_seed(2)
    img = torch.rand(30, 2, 5)
    spikes = {}
    for which in ("compiled", "steps"):
        monkeypatch.setenv("SNNC_BPTT", "1" if which == "compiled" else "0")
        net = snnc.compile(path)()
        out = net(img)
        spikes[which] = torch.cat([out, net.monitors["a.spikes"]], -1)
        out.sum().backward()
        assert net.connection("x->a").weight.grad.abs().sum() > 0
    assert spikes["compiled"].sum() > 0
    assert torch.equal(spikes["compiled"], spikes["steps"])


def test_a_run_of_another_version_warns_once_and_takes_the_step_path(net_file, monkeypatch):
    net_class = snnc.compile(net_file)
    monkeypatch.setattr(net_class, "bptt_source",
                        net_class.bptt_source.replace("snnc_bptt_abi = ", "snnc_bptt_abi = 9"))
    x = (torch.rand(6, 1, 5) < 0.5).float()
    with pytest.warns(UserWarning, match="generated by another snnc version") as warned:
        out = net_class()(x)
        net_class()(x)
    assert len(warned) == 1
    monkeypatch.setenv("SNNC_BPTT", "0")
    assert torch.equal(out, net_class()(x))


def test_synapses_out_of_bounds_are_refused_before_the_run(net_file):
    """A loaded state_dict may hold any indices: the run checks them before it reads."""
    net = snnc.compile(net_file)()
    op = net.connection("a->b").ops[0]
    with torch.no_grad():
        op.targets[0] = 1000
    with pytest.raises(ValueError, match="inconsistent"):
        net((torch.rand(5, 1, 5) < 0.5).float())
