"""The event backend (snnc/backends/event.py, templates/event/, runtime.response): spike
times in, every time point at once; checked against the kernel summed by hand."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from conftest import net
from snnc.cli import main
from snnc.compiler import compile as snnc_compile
from snnc.errors import SnnError
from snnc.runtime import event, response
from snnc.runtime.event import NO_SPIKE

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
TAU, TAU_S = 15.0, 3.75


def kernel(s: float) -> float:
    """The Tempotron's K(s), its peak normalised to 1 (Gütig & Sompolinsky 2006), by hand."""
    if s < 0:
        return 0.0
    peak = TAU * TAU_S * math.log(TAU / TAU_S) / (TAU - TAU_S)
    v0 = 1 / (math.exp(-peak / TAU) - math.exp(-peak / TAU_S))
    return v0 * (math.exp(-s / TAU) - math.exp(-s / TAU_S))


def voltage(times: torch.Tensor, weight: torch.Tensor, steps: int, delay: int = 0
            ) -> torch.Tensor:
    """v[t, b, j] = sum_i w[j, i] K(t - delay - t_i), summed element by element."""
    batch, inputs = times.shape
    v = torch.zeros(steps, batch, weight.shape[0], dtype=torch.float64)
    for t in range(steps):
        for b in range(batch):
            for i in range(inputs):
                if times[b, i] >= 0:
                    v[t, b] += weight[:, i].double() * kernel(t - delay - float(times[b, i]))
    return v


def build(tmp_path, body: str, name: str = "e.snn"):
    path = tmp_path / name
    path.write_text(net("backend = event\n" + body))
    return snnc_compile(path)


def spike_times(batch: int, inputs: int, steps: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    times = torch.randint(0, steps, (batch, inputs), generator=g).double()
    times[torch.rand(batch, inputs, generator=g) < 0.2] = NO_SPIKE
    return times


def test_the_voltage_is_the_kernel_summed_over_the_input_spikes(tmp_path):
    cls = build(tmp_path, "steps = 40\ninput t[6]\npopulation out[3] = Tempotron\n"
                          "connect t -> out : dense\nmonitor out.v, out.spikes\n"
                          "readout out = v")
    sim = cls().double()
    times = spike_times(4, 6, 40)
    trace = sim(times)
    expected = voltage(times, sim.connection("t->out").weight.detach(), 40)
    assert trace.shape == (4, 3, 40)  # the event backend's `v`: [B, N, T]
    torch.testing.assert_close(trace, expected.permute(1, 2, 0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sim.monitors["out.v"], expected, rtol=1e-12, atol=1e-12)
    spikes = sim.monitors["out.spikes"]
    crossed = expected >= 1.0
    first = crossed & (crossed.cumsum(0) == 1)
    assert torch.equal(spikes, first.double())


def test_a_delay_shifts_the_voltage_and_chained_tempotrons_read_first_spikes(tmp_path):
    cls = build(tmp_path, "seed = 4\nsteps = 50\ninput t[8]\n"
                          "population a[4] = Tempotron(v_threshold = 0.9)\n"
                          "population b[2] = Tempotron\n"
                          "connect t -> a : dense(w = uniform(0, 0.5)) delay 3\n"
                          "connect a -> b : dense(w = 1.5)\nmonitor a.v, a.spikes, b.v")
    sim = cls().double()
    times = spike_times(3, 8, 50, seed=1)
    sim(times)
    a = voltage(times, sim.connection("t->a").weight.detach(), 50, delay=3)
    torch.testing.assert_close(sim.monitors["a.v"], a, rtol=1e-12, atol=1e-12)
    crossed = a >= 0.9
    fired = crossed.any(0)
    assert fired.any() and not fired.all()  # some fire, some do not
    first = torch.where(fired, crossed.double().argmax(0).double(), torch.tensor(NO_SPIKE))
    b = voltage(first, sim.connection("a->b").weight.detach(), 50)
    torch.testing.assert_close(sim.monitors["b.v"], b, rtol=1e-12, atol=1e-12)


def test_chunks_of_steps_give_the_same_voltage_and_gradients(tmp_path, monkeypatch):
    cls = build(tmp_path, "steps = 60\ninput t[10]\npopulation out[4] = Tempotron\n"
                          "connect t -> out : dense\nreadout out = v_max")
    times = spike_times(5, 10, 60, seed=2)
    results = []
    for budget in (1 << 30, 5 * 10 * 8):  # every step at once; one step per chunk
        monkeypatch.setattr(event, "chunk_steps", lambda times, b=budget: max(
            1, b // (times.numel() * times.element_size())))
        torch.manual_seed(0)
        sim = cls().double()
        v_max = sim(times)
        v_max.sum().backward()
        results.append((v_max.detach(), sim.connection("t->out").weight.grad.clone()))
    assert torch.equal(results[0][0], results[1][0])
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-12, atol=1e-12)


def test_a_long_run_filters_by_fft_alike(tmp_path, monkeypatch):
    """Past FILTER_BYTES of [T, T] lags the kernel filters by FFT: the same voltage and
    gradients as the matrix product (to the transform's round-off)."""
    cls = build(tmp_path, "seed = 1\nsteps = 50\ninput t[7]\npopulation out[3] = Tempotron\n"
                          "connect t -> out : dense\nreadout out = v")
    times = spike_times(4, 7, 50, seed=7)
    results = []
    for budget in (1 << 30, 0):
        monkeypatch.setattr(response, "FILTER_BYTES", budget)
        sim = cls().double()
        trace = sim(times)
        trace.square().sum().backward()
        results.append((trace.detach(), sim.connection("t->out").weight.grad))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-10, atol=1e-10)


def test_v_max_gradient_is_the_kernel_at_the_peak(tmp_path):
    """d v_max_j / d w_ji = K(t_max,j - t_i): the seed's closed form."""
    cls = build(tmp_path, "steps = 30\ninput t[5]\npopulation out[2] = Tempotron\n"
                          "connect t -> out : dense\nreadout out = v_max")
    sim = cls().double()
    times = spike_times(1, 5, 30, seed=3)
    v_max = sim(times)
    v = voltage(times, sim.connection("t->out").weight.detach(), 30)
    peak = v[:, 0].argmax(0)
    for j in range(2):
        (grad,) = torch.autograd.grad(v_max[0, j], sim.connection("t->out").weight,
                                      retain_graph=True)
        expected = [kernel(float(peak[j]) - float(t)) if t >= 0 else 0.0 for t in times[0]]
        torch.testing.assert_close(grad[j], torch.tensor(expected, dtype=torch.float64))
        assert torch.all(grad[1 - j] == 0)


def test_the_mnist_sample_builds_and_encodes_every_pixel(tmp_path):
    out = tmp_path / "tempotron.py"
    assert main(["build", str(SAMPLES / "tempotron_mnist.snn"), "-o", str(out)]) == 0
    assert "rt.response.respond(" in out.read_text()
    sim = snnc_compile(SAMPLES / "tempotron_mnist.snn")()
    pixels = torch.rand(2, 784, generator=torch.Generator().manual_seed(0))
    assert sim(pixels).shape == (2, 10)
    times = sim.encoders["spk"](pixels)
    assert times.shape == (2, 784, 16) and event.spiked(times).any()


def test_gaussian_tuning_needs_three_curves(tmp_path):
    with pytest.raises(SnnError) as info:
        build(tmp_path, "input x[4]\nencoder spk = gaussian_tuning(x, m = 2)\n"
                        "population out[2] = Tempotron\nconnect spk -> out : flatten | dense")
    assert info.value.message == "gaussian_tuning(): 'm' must be at least 3 tuning curves, got 2"
    assert (info.value.pos.line, info.value.pos.col) == (4, 38)  # at the value


@pytest.mark.parametrize("body, message", [
    ("input t[3]\npopulation a[2] = Tempotron\npopulation b[2] = Tempotron\n"
     "connect t -> a : dense\nconnect a -> b : dense\nconnect b -> a : dense delay 1",
     "network t has a cycle: the event backend computes every time point at once"),
    ("input t[3]\npopulation a[2] = Tempotron\nconnect t -> a : dense delay uniform(1, 3)",
     "per-synapse delays in connection 't->a'"),
    ("input t[3]\npopulation a[2] = Tempotron\nconnect t -> a : dense | dropout(0.5)",
     "the event backend cannot run the op dropout (connection 't->a')"),
    ("input t[3]\npopulation a[3] = Izhikevich\nconnect t -> a",
     "the event backend cannot run Izhikevich (population 'a'): it is not linear in its "
     "states and input below threshold, at `0.04 * v * v`"),
    ("input t[3]\npopulation a[3] = ILCLIF\nconnect t -> a",
     "population 'a' (ILCLIF) feeds its spikes back into its input (ILC)"),
    ("input t[3]\npopulation a[3] = LIF\nconnect t -> a via exp_decay_current(tau = 2)",
     "the event backend cannot run the synapse exp_decay_current (connection 't->a')"),
    ("input t[3]\npopulation a[3] = Tempotron\nconnect t -> a via exp_current(tau = 2)",
     "`via exp_current` in connection 't->a': population 'a' (Tempotron) has a kernel"),
])
def test_what_the_event_backend_cannot_run_is_a_build_error(tmp_path, body, message):
    with pytest.raises(SnnError) as info:
        build(tmp_path, body)
    assert info.value.message.startswith(message)


@pytest.mark.parametrize("ops, factor, fraction", [
    ("dense", 1.0, 0.0),                 # spikes add weight columns (dense_of_spikes)
    ("scale(0.5) | dense", 0.5, 0.0),    # the ops on spike trains, then the kernel filter
    ("dense", 1.0, 0.25),                # times between steps: the ops on each response
], ids=["columns", "trains", "responses"])
def test_each_way_to_the_voltage_gives_the_kernel_sum(tmp_path, ops, factor, fraction):
    cls = build(tmp_path, f"steps = 30\ninput t[6]\npopulation out[3] = Tempotron\n"
                          f"connect t -> out : {ops}\nreadout out = v")
    sim = cls().double()
    times = spike_times(3, 6, 30, seed=5)
    times = torch.where(times >= 0, times + fraction, times)
    weight = sim.connection("t->out").weight
    trace = sim(times)
    expected = factor * voltage(times, weight.detach(), 30)
    torch.testing.assert_close(trace, expected.permute(1, 2, 0), rtol=1e-12, atol=1e-12)
    trace.sum().backward()
    # dv/dw_ji summed over t and b: the kernel summed over input i's spike, times factor
    sums = [sum(kernel(t - float(times[b, i])) for t in range(30) for b in range(3)
                if times[b, i] >= 0) for i in range(6)]
    expected_grad = factor * torch.tensor(sums, dtype=torch.float64).expand(3, 6)
    torch.testing.assert_close(weight.grad, expected_grad, rtol=1e-10, atol=1e-12)


LIF_SRM = """seed = 2
steps = 60
input t[6]
population out[3] = LIF(tau = 15.0, v_threshold = 1.0, v_init = uniform(-0.2, 0.2))
connect t -> out : dense(w = uniform(0, 5)) delay 2 via exp_current(tau = 3.75)
monitor out.v, out.spikes"""


def test_a_lif_with_an_exponential_current_is_a_two_exponential_kernel(tmp_path):
    """LIF + exp_current on the event backend: its derived kernel gives the clock
    simulation's voltage at every step before the first spike, from the same drawn
    initial voltage, and the same first spike; the kernel is the Tempotron's shape."""
    path = tmp_path / "srm.snn"
    path.write_text(net(LIF_SRM))
    ev = snnc_compile(path, backend="event")().double()
    clock = snnc_compile(path, backend="clock")(batch_size=2).double()
    clock.load_state_dict(ev.state_dict())  # the same keys, so the same weights
    times = spike_times(2, 6, 60, seed=6).clamp(min=0)
    trains = torch.zeros(60, 2, 6, dtype=torch.float64)
    for b in range(2):
        for i in range(6):
            trains[int(times[b, i]), b, i] = 1
    ev(times)
    stepped = clock.run(60, t=trains)
    fired = stepped["out.spikes"].amax(0) > 0
    assert fired.any() and not fired.all()
    # the clock's voltage is reset at its spike; before it (all run long where none) the
    # two are one sub-threshold trajectory
    first = torch.where(fired, stepped["out.spikes"].argmax(0), 60)
    before = torch.arange(60).view(-1, 1, 1) < first
    torch.testing.assert_close(ev.monitors["out.v"][before], stepped["out.v"][before],
                               rtol=0, atol=1e-12)
    assert torch.equal(ev.monitors["out.spikes"].argmax(0)[fired],
                       stepped["out.spikes"].argmax(0)[fired])
    k = ev.populations["out"].impulse_response(ev.connection("t->out").synapse, 40,
                                               torch.zeros(1, dtype=torch.float64))
    lags = torch.arange(40, dtype=torch.float64)
    two = torch.exp(-lags / 15.0) - torch.exp(-lags / 3.75)  # up to the Euler steps' scale
    assert abs(int(k.argmax()) - int(two.argmax())) <= 1 and k[0] > 0


def test_the_digits_sample_trains_past_its_goal():
    """samples/train_tempotron_digits.py: 10 Tempotrons on scikit-learn's digits reach
    the issue's goal of 0.85 held-out accuracy (the SpikingFlow tutorial reports about
    0.80 on MNIST)."""
    spec = importlib.util.spec_from_file_location("train_tempotron_digits",
                                                  SAMPLES / "train_tempotron_digits.py")
    sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sample)
    net, held_out = sample.train(epochs=5, show=False)
    assert held_out >= 0.85
    assert net(torch.zeros(1, 64)).shape == (1, 10)


def test_a_derived_kernel_is_kept_while_its_parameters_hold(tmp_path, monkeypatch):
    """LinearResponse derives a connection's kernel by stepping the model; it is kept from
    one forward to the next, and derived again when a parameter it depends on changes."""
    from snnc.runtime import response
    path = tmp_path / "k.snn"
    path.write_text("network k {\n backend = event\n steps = 30\n input t[4]\n"
                    " population p[3] = PLIF(init_tau = 5.0)\n"
                    " connect t -> p : dense(w = uniform(0.5, 1)) via exp_current(tau = 3)\n"
                    " readout p = v_max\n}\n")
    calls = []
    derive = response.LinearResponse.impulse_response
    monkeypatch.setattr(response.LinearResponse, "impulse_response",
                        lambda self, *a: calls.append(1) or derive(self, *a))
    net = snnc_compile(path)()
    times = torch.tensor([[0.0, 3.0, -1.0, 7.0]])
    with torch.no_grad():
        first = net(times)
        assert torch.equal(net(times), first) and len(calls) == 1
        net.populations["p"].learnable["w"].add_(0.5)  # 1/tau = sigmoid(w): another kernel
        assert not torch.equal(net(times), first) and len(calls) == 2
    out = net(times)  # a gradient is to reach w: derived in the graph, every time
    out.sum().backward()
    assert len(calls) == 3 and net.populations["p"].learnable["w"].grad is not None
