"""The event backend's runtime (snnc/runtime/event.py) and snnc.functional's Tempotron helpers:
against SpikingJelly 2.0's timing_based package, the seed's formulas (SpikingFlow's
event_driven docs, seed 003) and a step-by-step LIF simulation of the same kernel."""
from __future__ import annotations

import math

import pytest
import torch

from snnc.functional import first_spike_time, tempotron_mse_loss
from snnc.runtime import encoders
from snnc.runtime.event import (
    NO_SPIKE,
    GaussianTuning,
    Latency,
    chunk_steps,
    latency_times,
    psp_kernel,
    psp_kernel_peak,
    psp_map,
    psp_traces,
    spiked,
    tempotron_readout,
)

timing = pytest.importorskip("spikingjelly.timing_based.encoding")
sj_neuron = pytest.importorskip("spikingjelly.timing_based.neuron")

KERNELS = [(15.0, 3.75), (3.75, 15.0), (10.0, 9.5), (2.0, 0.5)]


def seed_v0(tau: float, tau_s: float) -> float:
    """V0 as the seed defines it: 1 / K's peak value at
    t_peak = tau tau_s ln(tau / tau_s) / (tau - tau_s)."""
    t_peak = tau * tau_s * math.log(tau / tau_s) / (tau - tau_s)
    return 1 / (math.exp(-t_peak / tau) - math.exp(-t_peak / tau_s))


def seed_kernel(s: torch.Tensor, tau: float, tau_s: float) -> torch.Tensor:
    """The seed's K(t - t_i): V0 (exp(-s/tau) - exp(-s/tau_s)) for s >= 0, else 0."""
    return torch.where(s >= 0, seed_v0(tau, tau_s) * (torch.exp(-s / tau) - torch.exp(-s / tau_s)),
                       torch.zeros_like(s))


# ------------------------------------------------------------------ Gaussian tuning


def sj_spike_times(x, lower, upper, m, t_max):
    """SpikingJelly 2.0's GaussianTuning (x [B, n, k], ranges [n]) as a dense [B, n, k, m]
    tensor of its continuous times, NaN where it emits no event."""
    sj = timing.GaussianTuning(x.shape[1], m, lower, upper)
    times, columns, offsets = sj(x, float(t_max))
    dense = torch.full((x.shape[0], x[0].numel() * m), math.nan, dtype=x.dtype)
    rows = torch.repeat_interleave(torch.arange(x.shape[0]), offsets.diff())
    dense[rows, columns] = times
    return dense.view(*x.shape, m)


def seed_rule(continuous: torch.Tensor, t_max: float) -> torch.Tensor:
    """The seed's t = round((1 - g) T), a time of T or later being 'no spike'."""
    t = torch.round(continuous)
    return torch.where(torch.isnan(t) | (t >= t_max), torch.full_like(t, NO_SPIKE), t)


def random_ranges(n, dtype):
    lower = torch.rand(n, dtype=dtype) * 2 - 1
    return lower, lower + 0.1 + torch.rand(n, dtype=dtype) * 3


def edge_values(lower, upper, m):
    """Per feature: x_min, x_max, just inside and outside, far outside, every centre."""
    width = upper - lower
    j = torch.arange(1, m + 1, dtype=lower.dtype)
    centres = lower[:, None] + (2 * j - 3) / 2 * width[:, None] / (m - 2)
    fixed = torch.stack([lower, upper, lower - width * 1e-3, upper + width * 1e-3,
                         lower - width, upper + 10 * width, lower - 1e3 * width], 1)
    return torch.cat([fixed, centres], 1)  # [n, k]


@pytest.mark.parametrize("m, t_max", [(16, 100), (3, 20), (7, 37.5)])
def test_gaussian_tuning_equals_spikingjelly_rounded_float64(m, t_max):
    torch.manual_seed(m)
    n = 4
    lower, upper = random_ranges(n, torch.float64)
    width = (upper - lower)[None, :, None]
    random = lower[None, :, None] + (torch.rand(6, n, 9, dtype=torch.float64) * 1.6 - 0.3) * width
    edges = edge_values(lower, upper, m)[None].expand(2, -1, -1)
    for x in (random, edges):
        ours = GaussianTuning((n, x.shape[2]), m, lower[:, None], upper[:, None], t_max)(x)
        continuous = sj_spike_times(x, lower, upper, m, t_max)
        assert ours.shape == (x.shape[0], n, x.shape[2], m)
        assert torch.equal(ours, seed_rule(continuous, t_max))
    # the edges hit both ends: spikes at t = 0 (x on a centre) and none (far outside)
    assert (ours == 0).any() and (ours == NO_SPIKE).any()


def test_gaussian_tuning_equals_spikingjelly_rounded_float32_mnist_layout():
    # the sample's encoder: [784] values in [0, 1], scalar x_min = 0, x_max = 1, m = 16
    torch.manual_seed(1)
    x = torch.rand(5, 784)
    x[0, :4] = torch.tensor([0.0, 1.0, -0.5, 2.0])
    ours = GaussianTuning((784,), 16, 0.0, 1.0, 100)(x)
    continuous = sj_spike_times(x[:, None, :], torch.zeros(1), torch.ones(1), 16, 100)[:, 0]
    expected = seed_rule(continuous, 100)
    # float32: a time within rounding noise of a .5 may round either way in either library
    tie = (continuous - continuous.floor() - 0.5).abs() < 1e-4
    assert torch.equal(ours[~tie], expected[~tie])
    assert tie.float().mean() < 1e-3
    assert ours.dtype == torch.float32 and not ours.requires_grad


def test_gaussian_tuning_is_the_seeds_formula():
    # mu_j = x_min + (2j - 3)/2 (x_max - x_min)/(m - 2), sigma = (x_max - x_min)/(1.5 (m - 2))
    m, t_max, lo, hi = 5, 50, -1.0, 2.0
    enc = GaussianTuning((3,), m, lo, hi, t_max)
    mu, sigma = enc.centres_and_width()
    assert torch.allclose(mu, torch.tensor([-1.5, -0.5, 0.5, 1.5, 2.5], dtype=torch.float64))
    assert torch.allclose(sigma, torch.tensor([1 / 1.5], dtype=torch.float64))
    x = torch.tensor([[0.5, 0.0, 3.0]], dtype=torch.float64)
    g = torch.exp(-(x[..., None] - mu) ** 2 / (2 * sigma ** 2))
    t = torch.round((1 - g) * t_max)
    t[t >= t_max] = -1
    assert torch.equal(enc(x), t)
    assert enc(x)[0, 0, 2] == 0  # x on the third centre fires at once


def test_spikingjelly_keeps_spikes_the_seed_drops_as_too_late():
    # The one difference: SpikingJelly 2.0 neither rounds nor drops a time in (T - 0.5, T);
    # the seed rounds it to T, which is "no spike". snnc follows the seed.
    m, t_max = 16, 100
    lower, upper = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    x = torch.linspace(0, 1, 2001, dtype=torch.float64)[None, None]
    continuous = sj_spike_times(x, lower, upper, m, t_max)
    late = (continuous > t_max - 0.5) & (continuous < t_max)
    assert late.any()
    ours = GaussianTuning((1, x.shape[2]), m, 0.0, 1.0, t_max)(x)
    assert (ours[late] == NO_SPIKE).all()


def test_gaussian_tuning_rejects_what_has_no_curves():
    with pytest.raises(ValueError, match="m > 2"):
        GaussianTuning((3,), 2, 0.0, 1.0, 10)
    with pytest.raises(ValueError, match="x_min < x_max"):
        GaussianTuning((3,), 4, 1.0, 1.0, 10)
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        GaussianTuning((3,), 4, 0.0, 1.0, 10)(torch.zeros(2, 4))


def test_gaussian_tuning_has_no_state_dict_and_moves_with_the_module():
    enc = GaussianTuning((2,), 4, torch.tensor([0.0, 1.0]), torch.tensor([1.0, 3.0]), 10)
    assert enc.state_dict() == {}
    assert enc.float()(torch.zeros(1, 2)).dtype == torch.float32


# ------------------------------------------------------------------------- latency


@pytest.mark.parametrize("mode, t_max, steps", [("linear", 20, 20), ("linear", 30, 12),
                                                  ("log", 20, 20), ("log", 8, 5)])
def test_latency_times_is_the_step_the_latency_encoder_fires(mode, t_max, steps):
    torch.manual_seed(0)
    x = torch.rand(4, 3, 50)
    x[0, 0, :6] = torch.tensor([0.0, 1.0, -1.0, 2.0, 0.5, 1e-6])
    train = encoders.Latency((3, 50), t_max, mode)(x[None], steps, 4, x)  # [T, B, 3, 50]
    expected = first_spike_time(train, dim=0)
    assert torch.equal(latency_times(x, t_max, mode, steps=steps), expected)
    if steps >= t_max:  # every element fires within the run
        assert torch.equal(latency_times(x, t_max, mode), expected)
        assert torch.equal(Latency((3, 50), t_max, mode)(x), expected)
        assert spiked(expected).all()


# ---------------------------------------------------------------------- PSP kernel


@pytest.mark.parametrize("tau, tau_s", KERNELS)
def test_kernel_peaks_at_one_with_the_seeds_v0(tau, tau_s):
    assert psp_kernel_peak(tau, tau_s) == pytest.approx(seed_v0(tau, tau_s), rel=1e-12)
    s = torch.linspace(-5, 200, 400_001, dtype=torch.float64)
    k = psp_kernel(s, tau, tau_s)
    t_peak = tau * tau_s * math.log(tau / tau_s) / (tau - tau_s)
    assert psp_kernel(torch.tensor(t_peak, dtype=torch.float64), tau, tau_s).item() == \
        pytest.approx(1.0, abs=1e-12)
    assert 1 - 1e-6 < k.max().item() <= 1 + 1e-12
    assert torch.allclose(k, seed_kernel(s, tau, tau_s), rtol=1e-9, atol=1e-12)
    assert (k[s <= 0] == 0).all()


def test_kernel_rejects_equal_or_bad_time_constants():
    for tau, tau_s in [(4.0, 4.0), (0.0, 1.0), (math.inf, 1.0), (-2.0, 1.0)]:
        with pytest.raises(ValueError):
            psp_kernel_peak(tau, tau_s)


@pytest.mark.parametrize("tau, tau_s", KERNELS)
def test_psp_traces_are_the_seeds_kernel_at_every_step(tau, tau_s):
    torch.manual_seed(2)
    T = 60
    # before 0 (none), in the run and past it
    times = torch.rand(3, 4, 5, dtype=torch.float64) * 70 - 5
    times[0, 0, :3] = torch.tensor([0.0, 10.0, T - 1.0])
    traces = psp_traces(times, T, tau, tau_s)
    t = torch.arange(T, dtype=torch.float64).view(T, 1, 1, 1)
    expected = torch.where(times >= 0, seed_kernel(t - times, tau, tau_s), torch.zeros(()))
    assert traces.shape == (T, 3, 4, 5)
    assert torch.allclose(traces, expected, rtol=1e-10, atol=1e-13)
    assert (traces[:, times < 0] == 0).all()
    assert (traces[10, 0, 0, 1] == 0) and traces[11, 0, 0, 1] > 0  # K(0) = 0 at t = t_i


def lif_with_exponential_current(times, w, steps, tau, tau_s):
    """A clock simulation, step by step, of the kernel as a LIF neuron (v' = -v/tau + I)
    fed by an exponential current (I' = -I/tau_s) that jumps by w_i · a at input i's spike:
    v(s) = a (exp(-s/tau_s) - exp(-s/tau)) / (1/tau - 1/tau_s) after one unit jump, which is
    K(s) = V0 (exp(-s/tau) - exp(-s/tau_s)) for a = V0 (1/tau_s - 1/tau). Both decay
    exactly over a step of 1: I by exp(-1/tau_s), v by exp(-1/tau) plus the integral of the
    decaying current, gain = (exp(-1/tau_s) - exp(-1/tau)) / (1/tau - 1/tau_s) per unit.
    times [B, I] whole steps (negative: none), w [N, I] -> v [T, B, N] at each step."""
    jump = seed_v0(tau, tau_s) * (1 / tau_s - 1 / tau)
    decay_v, decay_i = math.exp(-1 / tau), math.exp(-1 / tau_s)
    gain = (decay_i - decay_v) / (1 / tau - 1 / tau_s)
    v = torch.zeros(times.shape[0], w.shape[0], dtype=w.dtype)
    current = torch.zeros_like(v)
    record = []
    for t in range(steps):
        record.append(v.clone())                      # v(t): a spike at t adds nothing yet
        current = current + jump * (times == t).to(w.dtype) @ w.T
        v = v * decay_v + gain * current              # to t + 1
        current = current * decay_i
    return torch.stack(record)


@pytest.mark.parametrize("tau, tau_s", KERNELS)
def test_event_voltage_equals_a_step_by_step_lif_simulation(tau, tau_s):
    torch.manual_seed(3)
    T, B, inputs, N = 80, 3, 40, 5
    times = torch.randint(-10, T + 10, (B, inputs)).to(torch.float64)  # some none, some late
    times[times < 0] = NO_SPIKE
    w = torch.randn(N, inputs, dtype=torch.float64)
    v = psp_map(lambda x: x @ w.T, times, T, tau, tau_s, chunk_bytes=B * inputs * 8 * 7)
    assert torch.allclose(v, lif_with_exponential_current(times, w, T, tau, tau_s),
                          rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------ SpikingJelly Tempotron


def events(times):
    """Dense times [B, I] (NO_SPIKE: none) -> SpikingJelly's (times, indices, offsets)."""
    rows, columns = torch.nonzero(spiked(times), as_tuple=True)
    counts = torch.bincount(rows, minlength=times.shape[0])
    return times[rows, columns], columns, torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def voltage_at(times, w, at, tau, tau_s):
    """Our voltage of neuron n of sample b at a time `at` between steps, from psp_traces:
    shifting every input by 1 - frac(at) puts `at` on the step floor(at) + 1."""
    base = math.floor(at)
    shift = 1 - (at - base)
    shifted = torch.where(spiked(times), times + shift, times)
    traces = psp_traces(shifted[None], base + 2, tau, tau_s)
    return (traces[base + 1, 0] @ w).item()


def our_tempotron(times, w, T, tau, tau_s):
    """psp_traces, the dense weights over all steps, the voltage [T, B, N]."""
    traces = psp_traces(times, T, tau, tau_s)                      # [T, B, I]
    return (traces.reshape(T * times.shape[0], -1) @ w.T).view(T, times.shape[0], -1)


def encoded_input(B=4, m=6, features=5, T=40, seed=4):
    torch.manual_seed(seed)
    x = torch.rand(B, features, dtype=torch.float64)
    return GaussianTuning((features,), m, 0.0, 1.0, T)(x).view(B, -1)


@pytest.mark.parametrize("tau, tau_s", [(15.0, 3.75), (6.0, 2.0)])
def test_tempotron_voltage_is_spikingjellys_below_threshold(tau, tau_s):
    T = 40
    times = encoded_input(T=T)
    inputs, N = times.shape[1], 4
    w = torch.randn(N, inputs, dtype=torch.float64) * 0.4
    sj = sj_neuron.Tempotron(inputs, N, float(T - 1), tau, tau_s, v_threshold=1e6).double()
    with torch.no_grad():
        sj.weight.copy_(w)
    v_max, t_peak, t_spike = sj(*events(times))
    assert torch.isinf(t_spike).all()  # no spike: SpikingJelly's shunting never starts
    ours = our_tempotron(times, w, T, tau, tau_s)
    for b in range(times.shape[0]):
        for n in range(N):
            # its continuous peak is our voltage at its peak time, and no step is higher
            at = voltage_at(times[b], w[n], t_peak[b, n].item(), tau, tau_s)
            assert at == pytest.approx(v_max[b, n].item(), rel=1e-9, abs=1e-12)
    grid_max = tempotron_readout(ours, "v_max")
    assert (grid_max <= v_max + 1e-12).all()
    assert torch.allclose(grid_max, v_max, atol=0.05)  # and the steps come close to it


def test_tempotron_first_crossing_is_spikingjellys_spike_time():
    tau, tau_s, T = 15.0, 3.75, 40
    times = encoded_input(B=6, seed=5, T=T)
    inputs, N = times.shape[1], 5
    w = torch.rand(N, inputs, dtype=torch.float64) * 0.6 - 0.15
    ours = our_tempotron(times, w, T, tau, tau_s)
    threshold = tempotron_readout(ours, "v_max").median().item()
    sj = sj_neuron.Tempotron(inputs, N, float(T - 1), tau, tau_s, v_threshold=threshold).double()
    with torch.no_grad():
        sj.weight.copy_(w)
    _, _, t_spike = sj(*events(times))
    first = tempotron_readout(ours, "spikes", threshold)
    fired = torch.isfinite(t_spike)
    assert 0 < fired.sum() < fired.numel()
    for b, n in zip(*torch.nonzero(fired, as_tuple=True), strict=True):
        crossing = t_spike[b, n].item()
        # our voltage reaches the threshold at its crossing, and no step before it does
        assert voltage_at(times[b], w[n], crossing, tau, tau_s) == pytest.approx(threshold,
                                                                                  rel=1e-9)
        step = math.ceil(crossing)
        if step < T and ours[step, b, n] >= threshold:
            assert first[b, n] == step
        else:  # it came down again before the next step
            assert first[b, n] == NO_SPIKE or first[b, n] > crossing
    assert (first[~fired] == NO_SPIKE).all()  # never crossing: no step reaches it either


# ------------------------------------------------------------------- gradients


@pytest.mark.parametrize("tau, tau_s", [(15.0, 3.75), (3.0, 8.0)])
def test_v_max_gradient_is_the_seeds_closed_form(tau, tau_s):
    torch.manual_seed(6)
    T, B, inputs, N = 50, 4, 30, 3
    times = torch.randint(-5, T, (B, inputs)).to(torch.float64)
    times[times < 0] = NO_SPIKE
    w = (torch.randn(N, inputs, dtype=torch.float64) * 0.5).requires_grad_()
    v = psp_map(lambda x: x @ w.T, times, T, tau, tau_s, chunk_bytes=B * inputs * 8 * 9)
    v_max = tempotron_readout(v, "v_max")
    upstream = torch.randn(B, N, dtype=torch.float64)
    (v_max * upstream).sum().backward()
    # dv_max[b, n]/dw[n, i] = sum over t_i < t_max of K(t_max - t_i), t_max = argmax_t v
    t_max = v.detach().argmax(0)
    expected = torch.zeros(N, inputs, dtype=torch.float64)
    v0 = seed_v0(tau, tau_s)
    for b in range(B):
        for n in range(N):
            for i in range(inputs):
                s = t_max[b, n].item() - times[b, i].item()
                if times[b, i] >= 0 and s > 0:
                    k = v0 * (math.exp(-s / tau) - math.exp(-s / tau_s))
                    expected[n, i] += upstream[b, n].item() * k
    assert torch.allclose(w.grad, expected, rtol=1e-10, atol=1e-12)


def test_psp_traces_gradient_in_the_times():
    torch.manual_seed(7)
    times = (torch.rand(2, 6, dtype=torch.float64) * 20).add_(0.25).requires_grad_()
    with torch.no_grad():
        times[0, 0] = NO_SPIKE
    assert torch.autograd.gradcheck(
        lambda t: psp_traces(t, 25, 15.0, 3.75, chunk_bytes=2 * 6 * 8 * 4), (times,))
    # at t = t_i the derivative is the right one, 0 (the seed sums over t_i < t only);
    # a step later it is -K'(1)
    at = torch.tensor([[4.0]], dtype=torch.float64, requires_grad=True)
    traces = psp_traces(at, 10, 15.0, 3.75)
    (on,) = torch.autograd.grad(traces[4].sum(), at, retain_graph=True)
    (after,) = torch.autograd.grad(traces[5].sum(), at)
    s = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(seed_kernel(s, 15.0, 3.75), s)
    assert on.item() == 0 and after.item() == pytest.approx(-slope.item(), rel=1e-12)


def test_gradients_stay_finite_with_no_spike_and_long_runs():
    # exp(t_i / tau_s) would overflow for inputs far in the future; NO_SPIKE is masked
    T, tau, tau_s = 3000, 20.0, 0.5
    times = torch.tensor([[NO_SPIKE, 0.0, 2990.0, 1500.5]]).requires_grad_()
    w = torch.tensor([[0.5, 1.0, -0.25, 2.0]], requires_grad=True)
    v = psp_map(lambda x: x @ w.T, times, T, tau, tau_s)
    tempotron_readout(v, "v_max").sum().backward()
    assert torch.isfinite(v).all() and torch.isfinite(w.grad).all()
    assert torch.isfinite(times.grad).all() and times.grad[0, 0] == 0
    assert w.grad[0, 0] == 0


# ----------------------------------------------------------------------- chunking


def test_chunked_and_unchunked_traces_are_equal():
    torch.manual_seed(8)
    times = torch.randint(-3, 60, (5, 7, 3)).float()
    whole = psp_traces(times, 64, 15.0, 3.75, chunk_bytes=1 << 30)
    for budget in (1, times.numel() * 4 * 3, times.numel() * 4 * 10 + 1):
        assert torch.equal(psp_traces(times, 64, 15.0, 3.75, chunk_bytes=budget), whole)
    assert chunk_steps(times, 1) == 1 and chunk_steps(times, times.numel() * 4 * 3) == 3


@pytest.mark.parametrize("checkpoint", [True, False])
def test_psp_map_in_chunks_equals_one_pass_forward_and_backward(checkpoint):
    torch.manual_seed(9)
    T, B, shape, N = 30, 3, (4, 6), 5
    times = torch.randint(-2, T, (B, *shape)).double()
    times[times < 0] = NO_SPIKE
    w = torch.randn(N, 24, dtype=torch.float64, requires_grad=True)
    seen = []

    def dense(x):  # flatten | dense, as a connection applies them to [n·B, ...]
        seen.append(x.shape[0])
        return (x.reshape(x.shape[0] * B, -1) @ w.T).view(x.shape[0], B, N)

    full = tempotron_readout(dense(psp_traces(times, T, 15.0, 3.75)), "v_max")
    (grad_full,) = torch.autograd.grad(full.sum(), w)
    seen.clear()
    chunked = tempotron_readout(psp_map(dense, times, T, 15.0, 3.75,
                                        chunk_bytes=B * 24 * 8 * 4, checkpoint=checkpoint), "v_max")
    assert seen == [4] * 7 + [2]
    (grad_chunked,) = torch.autograd.grad(chunked.sum(), w)
    assert torch.allclose(chunked, full, rtol=1e-12) and torch.allclose(grad_chunked, grad_full)


def saved_bytes(run):
    """The bytes of distinct tensors autograd saves for the backward while `run` runs."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = run()
    return out, sum(storages.values())


def test_psp_map_backward_keeps_no_traces():
    T, B, inputs, N = 50, 8, 500, 10
    times = torch.randint(0, T, (B, inputs)).float()
    w = torch.randn(N, inputs, requires_grad=True)
    all_traces = T * B * inputs * 4
    for checkpoint, bound in ((True, times.numel() * 4), (False, all_traces)):
        v, held = saved_bytes(lambda c=checkpoint: psp_map(
            lambda x: x @ w.T, times, T, 15.0, 3.75, chunk_bytes=B * inputs * 4 * 5,
            checkpoint=c))
        assert held <= bound and (held >= all_traces) == (not checkpoint)
        v.sum().backward()
    _, held = saved_bytes(lambda: psp_traces(times.requires_grad_(), T, 15.0, 3.75))
    assert held == times.numel() * 4  # the times only


# ----------------------------------------------------------------------- readouts


def test_readouts_layout_and_first_crossing():
    v = torch.tensor([[[0.0, 0.2]], [[1.0, 0.5]], [[0.5, 0.9]], [[1.5, 0.1]]])  # [T=4, B=1, N=2]
    assert torch.equal(tempotron_readout(v, "v"), torch.tensor([[[0.0, 1.0, 0.5, 1.5],
                                                                  [0.2, 0.5, 0.9, 0.1]]]))
    assert torch.equal(tempotron_readout(v, "v_max"), torch.tensor([[1.5, 0.9]]))
    assert torch.equal(tempotron_readout(v, "spikes", 1.0), torch.tensor([[1.0, NO_SPIKE]]))
    assert torch.equal(tempotron_readout(v, "spikes", 0.9), torch.tensor([[1.0, 2.0]]))
    assert torch.equal(tempotron_readout(v, "spikes", 0.0), torch.tensor([[0.0, 0.0]]))
    with pytest.raises(ValueError, match="v_max"):
        tempotron_readout(v, "rate")


def test_v_max_gradient_goes_to_the_first_maximum_only():
    v = torch.tensor([[1.0], [3.0], [3.0], [2.0]], requires_grad=True)  # [T, B=1]
    tempotron_readout(v[:, :, None], "v_max").sum().backward()
    assert torch.equal(v.grad, torch.tensor([[0.0], [1.0], [0.0], [0.0]]))


# ------------------------------------------------------------------- functional


SEED_SPIKES = torch.tensor([[[0., 0., 0., 0., 0., 0., 0., 0.],
                             [1., 0., 0., 0., 0., 0., 1., 0.],
                             [0., 1., 0., 0., 0., 1., 0., 1.]],
                            [[0., 0., 1., 1., 0., 0., 0., 1.],
                             [1., 1., 0., 0., 1., 0., 0., 0.],
                             [0., 0., 0., 1., 0., 0., 0., 0.]]])


def test_first_spike_time_marks_silence():
    assert torch.equal(first_spike_time(SEED_SPIKES),
                       torch.tensor([[NO_SPIKE, 0.0, 1.0], [2.0, 0.0, 3.0]]))
    # time first, as the runtime's [T, B, ...] trains are
    assert torch.equal(first_spike_time(SEED_SPIKES.movedim(-1, 0), dim=0),
                       first_spike_time(SEED_SPIKES))


def test_tempotron_mse_loss_on_a_hand_computed_case():
    # sample 0, label 1: neuron 1 stays below (wrong, 0.7 - 1), neuron 2 fires (wrong, 1.3 - 1);
    # sample 1, label 2: neuron 0 fires (wrong, 1.5 - 1), neuron 2 fires at exactly 1.0 (right)
    v_max = torch.tensor([[0.5, 0.7, 1.3], [1.5, 0.2, 1.0]], requires_grad=True)
    label = torch.tensor([1, 2])
    loss = tempotron_mse_loss(v_max, label, 3, 1.0)
    assert loss.item() == pytest.approx((0.09 + 0.09 + 0.25) / 2)
    loss.backward()
    assert torch.allclose(v_max.grad, torch.tensor([[0.0, -0.3, 0.3], [0.5, 0.0, 0.0]]))
    # a threshold per sample and neuron ([B, N], as the seed allows); all right: no loss
    threshold = torch.tensor([[0.6, 0.7, 1.4], [1.6, 0.3, 1.0]])
    assert tempotron_mse_loss(v_max, label, 3, threshold).item() == 0.0
    with pytest.raises(ValueError):
        tempotron_mse_loss(v_max, label, 10)
