"""The clock backend: a step-by-step simulator built like the softbp module (same
state_dict, same spikes without plasticity), with delays, synapses and STDP."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import CONDUCTANCE, LEARNING, learning_inputs, net
from snnc.compiler import analyse
from snnc.compiler import compile as snnc_compile
from snnc.errors import SnnError
from snnc.plan.lower import lower

T = 30


def build(tmp_path, body: str, backend: str, name: str = "n.snn"):
    path = tmp_path / name
    path.write_text(net(body))
    return snnc_compile(path, backend=backend)


FEED_FORWARD = ("seed = 4\nsteps = 30\ninput img[12]\nencoder spk = poisson(img)\n"
                "population a[8] = LIF(tau = 4.0, v_threshold = 0.6, v_init = uniform(0, 0.5))\n"
                "population b[6] = IF(v_threshold = 0.8)\n"
                "connect spk -> a : dense(w = uniform(0, 0.4)) delay 2 via exp_current(tau = 3)\n"
                "connect a -> b : sparse(p = 0.5, w = 0.7) delay uniform(1, 4)\n"
                "monitor a.spikes, b.spikes, a.v")
RECURRENT = FEED_FORWARD + "\nconnect b -> a as back : dense(w = -0.3) delay 1"


@pytest.mark.parametrize("body", [FEED_FORWARD, RECURRENT], ids=["feed-forward", "recurrent"])
def test_clock_gives_softbp_s_spikes_and_state_dict(tmp_path, body):
    softbp = build(tmp_path, body, "softbp", "s.snn")()
    clock = build(tmp_path, body, "clock", "c.snn")()
    assert {k: v.shape for k, v in softbp.state_dict().items()} == \
        {k: v.shape for k, v in clock.state_dict().items()}
    for key, value in softbp.state_dict().items():
        assert torch.equal(value, clock.state_dict()[key]), key
    img = torch.rand(1, 12, generator=torch.Generator().manual_seed(0))
    softbp(img)
    out = clock.run(T, img=img)
    for key in ("a.spikes", "b.spikes", "a.v"):
        torch.testing.assert_close(out[key], softbp.monitors[key].detach(), rtol=1e-6,
                                   atol=1e-6, msg=key)
    assert out["b.spikes"].sum() > 0


def test_weights_trained_in_softbp_load_into_clock_and_back(tmp_path):
    softbp = build(tmp_path, FEED_FORWARD, "softbp", "s.snn")()
    with torch.no_grad():
        for p in softbp.parameters():
            p.add_(0.01)
    clock = build(tmp_path, FEED_FORWARD, "clock", "c.snn")()
    clock.load_state_dict(softbp.state_dict())
    again = build(tmp_path, FEED_FORWARD, "softbp", "s2.snn")()
    again.load_state_dict(clock.state_dict())
    for key, value in softbp.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)


def test_a_spike_arrives_after_the_connection_s_delay(tmp_path):
    """LANGUAGE.md §4.5: sent at t, it arrives at t + D."""
    cls = build(tmp_path, "steps = 10\ninput i[1]\npopulation a[1] = IF(v_threshold = 0.5)\n"
                          "population b[1] = IF(v_threshold = 0.5)\nconnect i -> a\n"
                          "connect a -> b : one_to_one(w = 1) delay 3\nmonitor a.spikes, b.spikes",
                "clock")
    sim = cls()
    pulse = torch.zeros(10, 1, 1)
    pulse[2] = 1.0
    out = sim.run(10, i=pulse)
    assert out["a.spikes"].flatten().nonzero().flatten().tolist() == [2]
    assert out["b.spikes"].flatten().nonzero().flatten().tolist() == [5]


def _pairing(tmp_path, pre_at: int, post_at: int, name: str) -> float:
    """The weight change of one pre and one post spike, `post_at - pre_at` steps apart
    (dt = 1 ms), the weight too weak to make the post neuron fire."""
    cls = build(tmp_path, "steps = 40\ninput pre_in[1]\ninput post_in[1]\n"
                          "population pre[1] = IF(v_threshold = 0.5)\n"
                          "population post[1] = IF(v_threshold = 0.5)\n"
                          "connect pre_in -> pre\nconnect post_in -> post as drive\n"
                          "connect pre -> post : dense(w = 0.001)\n"
                          "    learn stdp(tau_pre = 20 ms, tau_post = 20 ms, a_pre = 0.01, "
                          "a_post = -0.0105)", "clock", name)
    sim = cls()
    pre_in, post_in = torch.zeros(40, 1, 1), torch.zeros(40, 1, 1)
    pre_in[pre_at], post_in[post_at] = 1.0, 1.0
    before = sim.connection("pre->post").weight.item()
    sim.run(40, pre_in=pre_in, post_in=post_in)
    return sim.connection("pre->post").weight.item() - before


def test_stdp_pairing_follows_the_exponential_window(tmp_path):
    potentiation = _pairing(tmp_path, 5, 10, "ltp.snn")   # post 5 ms after pre
    depression = _pairing(tmp_path, 10, 5, "ltd.snn")     # pre 5 ms after post
    assert potentiation == pytest.approx(0.01 * math.exp(-5 / 20), rel=0.01)
    # clipped at w_min = 0: the weight 0.001 can lose at most itself
    assert depression == pytest.approx(max(-0.0105 * math.exp(-5 / 20), -0.001), rel=0.01)


def test_a_pre_and_a_post_spike_of_one_step_count_the_pre_pathway_first(tmp_path):
    """Brian2: the pre pathway (w += a_post x_post, x_post still 0) runs before the post
    pathway (w += a_pre x_pre with this step's pre spike): only potentiation."""
    change = _pairing(tmp_path, 7, 7, "same.snn")
    assert change == pytest.approx(0.01, rel=1e-6)


def test_per_synapse_delays_reach_stdp_at_each_synapse_s_own_step(tmp_path):
    cls = build(tmp_path, "seed = 2\nsteps = 30\ninput i[6]\ninput drive[1]\n"
                          "population pre[6] = IF(v_threshold = 0.5)\n"
                          "population post[1] = IF(v_threshold = 0.5)\n"
                          "connect i -> pre\nconnect drive -> post\n"
                          "connect pre -> post : dense(w = 0.0) delay uniform(1, 5)\n"
                          "    learn stdp(tau_pre = 10, tau_post = 10, a_pre = 0.1, "
                          "a_post = 0, w_max = 1)", "clock")
    sim = cls()
    i, drive = torch.zeros(30, 1, 6), torch.zeros(30, 1, 1)
    i[2], drive[12] = 1.0, 1.0                     # every pre neuron at 2, post at 12
    delays = sim.connection("pre->post").ops[0].delays[0].tolist()
    sim.run(30, i=i, drive=drive)
    w = sim.connection("pre->post").weight[0].tolist()
    # a pre spike reaches synapse j at 2 + d_j; the post spike at 12 sees its trace then
    expected = [0.1 * math.exp(-(12 - (2 + d)) / 10) for d in delays]
    assert w == pytest.approx(expected, rel=1e-5)
    assert len(set(delays)) > 1


def test_batch_size_runs_independent_simulations(tmp_path):
    cls = build(tmp_path, FEED_FORWARD, "clock")
    sim = cls(batch_size=3)
    img = torch.rand(3, 12, generator=torch.Generator().manual_seed(1))
    out = sim.run(T, img=img)
    assert out["a.spikes"].shape == (T, 3, 8)
    assert sim.spike_counts["a"].shape == (3, 8)
    assert torch.equal(sim.spike_counts["a"], out["a.spikes"].sum(0))
    assert sim.t == T
    sim.reset()
    assert sim.t == 0 and not sim.spike_counts


def test_a_batch_that_learns_runs_each_simulation_as_it_runs_alone(tmp_path):
    """Each simulation of a batch learns its own weights from its own input: what
    simulation b gives (spikes, weights, traces) is what a network of one simulation
    gives on b's input, from the same state_dict."""
    cls = build(tmp_path, LEARNING, "clock")
    batch = cls(batch_size=3).double()
    one = cls().double()
    # a network of one simulation's (softbp's) weights load into each simulation
    start = {k: v.clone() for k, v in one.state_dict().items()}
    batch.load_state_dict(start)
    for key, value in batch.state_dict().items():
        if value.shape != start[key].shape:
            assert value.shape == (3, *start[key].shape), key
            assert all(torch.equal(v, start[key]) for v in value), key
    inputs = learning_inputs(3)
    out = batch.run(50, record=("wide.weight",), weight_every=10, **inputs)
    assert out["wide.weight"].shape == (5, 3, 5, 10)
    for b in range(3):
        alone = cls().double()
        alone.load_state_dict(start)
        ref = alone.run(50, record=("wide.weight",), weight_every=10,
                        **{k: v[:, b:b + 1] for k, v in inputs.items()})
        for key in ("post.spikes", "mid.spikes", "side.spikes"):
            assert torch.equal(out[key][:, b:b + 1], ref[key]), (b, key)
        torch.testing.assert_close(out["wide.weight"][:, b], ref["wide.weight"], rtol=0,
                                   atol=1e-12)
        for name, rule in batch.rules.items():
            own = alone.rules[name]
            torch.testing.assert_close(rule.weights()[b:b + 1], own.weights(), rtol=0,
                                       atol=1e-12, msg=name)
            torch.testing.assert_close(rule.x_pre[b:b + 1], own.x_pre, rtol=0, atol=1e-12)
            torch.testing.assert_close(rule.x_post[b:b + 1], own.x_post, rtol=0, atol=1e-12)
    for name, rule in batch.rules.items():  # different inputs, different weights
        w = rule.weights()
        assert not torch.equal(w[0], w[1]), name
        assert any(not torch.equal(w[0], v) for v in start.values()
                   if v.shape == w[0].shape), name


def test_a_batch_that_learns_saves_a_weight_per_simulation(tmp_path):
    cls = build(tmp_path, LEARNING, "clock")
    batch = cls(batch_size=2)
    batch.run(20, **{k: v.float() for k, v in learning_inputs(2, 20).items()})
    state = batch.state_dict()
    again = cls(batch_size=2)
    again.load_state_dict(state)  # [B, ...] loads as it is
    for key, value in again.state_dict().items():
        assert torch.equal(value, state[key]), key
    with pytest.raises(RuntimeError, match="size mismatch"):  # not into another batch size
        cls(batch_size=3).load_state_dict(state)
    wrong = {**cls().state_dict(), "connections.wide.ops.0.inner.weight": torch.zeros(7, 7)}
    with pytest.raises(RuntimeError, match=r"shape torch.Size\(\[7, 7\]\) from checkpoint"):
        cls(batch_size=2).load_state_dict(wrong)  # reported as given, not broadcast
    assert batch.monitor_bytes(100, record=("wide.weight",), weight_every=10) == \
        100 * 2 * (5 + 10 + 3) * 4 + 10 * 2 * 5 * 10 * 4


def test_an_absurd_batch_is_refused_before_it_is_allocated(tmp_path, monkeypatch):
    cls = build(tmp_path, FEED_FORWARD, "clock")
    monkeypatch.setenv("SNNC_MAX_MEMORY", "1M")
    # per simulation, each node's last steps: img 12 × 1, spk 12 × 3 (delay 2), a 8 × 5
    # (delays up to 4), b 6 × 1 = 94 values, 376 bytes
    cls(batch_size=1000)  # 367 KiB
    with pytest.raises(MemoryError, match="a batch of 100,000 simulations needs more than "
                                          "35.9 MiB .* limit of 1 MiB"):
        cls(batch_size=100_000)


def test_monitors_are_sized_before_a_run(tmp_path):
    cls = build(tmp_path, FEED_FORWARD, "clock")
    sim = cls(batch_size=2)
    assert sim.monitor_bytes(100) == 100 * 2 * (8 + 6 + 8) * 4
    assert sim.monitor_bytes(100, record=("b.v",)) == 100 * 2 * (8 + 6 + 8 + 6) * 4
    with pytest.raises(KeyError, match="'b' has spikes, v"):
        sim.monitor_bytes(10, record=("b.u",))


def test_training_only_ops_are_refused_on_clock(tmp_path):
    with pytest.raises(SnnError) as info:
        build(tmp_path, "input i[4]\npopulation a[4] = IF\nconnect i -> a : dropout(0.5)",
              "clock")
    assert info.value.message == "the clock backend cannot run the op dropout (connection 'i->a')"
    assert info.value.hint == "dropout runs on the softbp backend"


CLOCK_SAMPLES = [("cuba", None), ("song_stdp", None), ("polychronization", None),
                 ("diehl_cook_stdp", None), ("spikingflow_stdp", "stdp_module"),
                 ("spikingflow_stdp", "stdp_updater")]


@pytest.mark.parametrize("sample, network", CLOCK_SAMPLES)
def test_every_clock_sample_builds_with_the_plan_s_layout(sample, network):
    path = Path(__file__).resolve().parent.parent / "samples" / f"{sample}.snn"
    (_, (graph,)) = analyse(path, network)
    layout = {t.key: t.shape for t in lower(graph).layout}
    sim = snnc_compile(path, network=network)()
    state = {k: tuple(v.shape) for k, v in sim.state_dict().items()}
    assert set(state) == set(layout)
    assert all(layout[k] is None or layout[k] == shape for k, shape in state.items())
    inputs = {n: torch.rand(1, *s) for n, s in sim.input_shapes.items()}
    out = sim.run(3, **inputs)
    assert set(out) == set(sim.monitor_keys) and all(v.shape[:2] == (3, 1) for v in out.values())


def _spikingflow_node(r: float, v_threshold: float, tau: float | None, drive):
    """SpikingFlow's clock-driven IFNode / LIFNode (seed 000), rewritten: a neuron whose
    voltage crossed the threshold is clipped to it and spikes one step later, when it is
    set to v_reset before integrating; the voltage never falls below v_reset (0 here)."""
    v, due, trace, spikes = 0.0, False, [], []
    for i in drive:
        spikes.append(float(due))
        if due:
            v = 0.0
        v = v + r * i if tau is None else v + (r * i - v) / tau
        due = v >= v_threshold
        v = min(max(v, 0.0), v_threshold)
        trace.append(v)
    return torch.tensor(trace, dtype=torch.float64), torch.tensor(spikes, dtype=torch.float64)


@pytest.mark.parametrize("model, r, tau, drive", [
    ("SFIF(r = 1.0, v_threshold = 1.0)", 1.0, None, [0.01] * 1000),
    ("SFLIF(r = 9.0, v_threshold = 1.0, tau = 20.0)", 9.0, 20.0, [0.1] * 500 + [0.0] * 500),
], ids=["IFNode", "LIFNode"])
def test_spikingflow_s_docstring_examples_give_the_same_traces(tmp_path, model, r, tau, drive):
    """Seed 000's test code: IFNode([1], r=1.0, v_threshold=1.0) driven by 0.01 for 1000
    steps; LIFNode([1], r=9.0, v_threshold=1.0, tau=20.0) by 0.1 for 500 steps, then 0."""
    sim = build(tmp_path, f"steps = 1000\ninput i[1]\npopulation p[1] = {model}\n"
                          "connect i -> p\nmonitor p.v, p.spikes", "clock")().double()
    out = sim.run(1000, i=torch.tensor(drive, dtype=torch.float64).view(-1, 1, 1))
    trace, spikes = _spikingflow_node(r, 1.0, tau, drive)
    assert torch.equal(out["p.v"].flatten(), trace)
    assert torch.equal(out["p.spikes"].flatten(), spikes)
    if tau is None:   # the integrator reaches 1 every 100 steps
        assert spikes.sum() == 9
    else:             # r·i = 0.9 stays below the threshold: it charges, then leaks
        assert spikes.sum() == 0 and 0.89 < trace[499] < 0.9 and trace[-1] < 0.01


def test_a_long_simulation_is_budgeted_by_what_the_clock_keeps(tmp_path):
    """10^7 steps of 20 000 neurons: softbp would keep 800 MB per sequence, the clock
    keeps each node's last steps."""
    body = ("steps = 10000000\ninput i[20000]\npopulation a[20000] = LIF\nconnect i -> a\n"
            "population b[20000] = LIF\nconnect a -> b : one_to_one delay 3")
    cls = build(tmp_path, "backend = clock\n" + body, None, "clock.snn")
    assert cls.steps == 10_000_000 and cls.depths["a"] == 4
    with pytest.raises(SnnError, match="needs about"):
        build(tmp_path, "backend = softbp\n" + body, None, "softbp.snn")




def _conductance_net(tmp_path, backend):
    path = tmp_path / f"cond_{backend}.snn"
    path.write_text(CONDUCTANCE + net(
        "steps = 20\ninput e[3]\ninput i[3]\npopulation p[3] = Cond\n"
        "connect e -> p : one_to_one(w = 3.0) via spike_current(channel = ge)\n"
        "connect i -> p : one_to_one(w = 0.4) via spike_current(channel = gi)\n"
        "monitor p.v, p.ge, p.gi, p.spikes"))
    return snnc_compile(path, backend=backend)


def test_a_connection_delivers_into_a_state_of_the_target(tmp_path):
    """`via spike_current(channel = ge)`: what arrives is added to `ge` before the step,
    as Brian2's `on_pre: ge += w`; the input x gets nothing from it."""
    g = torch.Generator().manual_seed(3)
    e = (torch.rand(20, 1, 3, generator=g) < 0.4).double()
    i = (torch.rand(20, 1, 3, generator=g) < 0.4).double()
    out = _conductance_net(tmp_path, "clock")().double().run(20, e=e, i=i)
    v, ge, gi = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), \
        torch.zeros(3, dtype=torch.float64)
    for t in range(20):
        ge, gi = (ge + 3.0 * e[t, 0]) * 0.5, (gi + 0.4 * i[t, 0]) * 0.75
        v = v + (ge * (2.0 - v) + gi * (-1.0 - v) - v) / 4.0
        fired = v >= 0.8
        v = torch.where(fired, torch.zeros_like(v), v)
        assert torch.allclose(out["p.ge"][t, 0], ge) and torch.allclose(out["p.v"][t, 0], v)
        assert torch.equal(out["p.spikes"][t, 0], fired.double())
    assert out["p.spikes"].sum() > 0
    softbp = _conductance_net(tmp_path, "softbp")().double()
    softbp(e=e, i=i)
    for key in ("p.v", "p.ge", "p.spikes"):
        torch.testing.assert_close(softbp.monitors[key].detach(), out[key])


def test_a_channel_must_be_a_state_of_the_target(tmp_path):
    path = tmp_path / "bad.snn"
    path.write_text(CONDUCTANCE + net(
        "input e[3]\npopulation p[3] = Cond\n"
        "connect e -> p : one_to_one via spike_current(channel = gee)"))
    with pytest.raises(SnnError) as info:
        snnc_compile(path)
    assert info.value.message == ("unknown state 'gee' of Cond (population 'p') — did you "
                                  "mean 'ge'?")
    assert info.value.pos.col == path.read_text().splitlines()[-2].index("channel") + 1
