"""The clock backend's compiled whole-run loop (snnc.kernels.loop, runtime.compiled) gives
the PyTorch path's spikes, monitors and state, on every construct it runs."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import CONDUCTANCE, LEARNING, learning_inputs, net
from snnc.compiler import compile as snnc_compile
from snnc.runtime import compiled, native

pytestmark = pytest.mark.skipif(native.c_compiler() is None, reason="no C compiler")

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# Every neuron model the loop runs, each connectivity, delays (the connection's and per
# synapse), each synapse, scales around the weighted op, a bias, a recurrent cycle.
MIXED = """seed = 3
steps = 40
input img[12]
input drive[4, 2]
encoder spk = poisson(img)
population a[8] = LIF(tau = 4.0, v_threshold = 0.6, v_init = uniform(0, 0.5), refractory = 2)
population b[6] = IF(v_threshold = 0.8)
population c[8] = Izhikevich(v_threshold = 30)
population d[8] = CubaLIF(v_threshold = 0.3)
connect spk -> a : dense(w = uniform(0, 0.4), bias = true) delay 2 via exp_current(tau = 3)
connect spk -> a as stp_in : dense(w = uniform(0, 0.3)) delay 1
    via stp(v_base = 0.3, tau_f = 20, tau_d = 5)
connect a -> b : sparse(p = 0.5, w = 0.7) delay uniform(1, 4) via spike_current(amplitude = 1.5)
connect a -> c : one_to_one(w = 40.0) delay uniform(0, 3)
    via exp_decay_current(tau = 2, amplitude = 20)
connect b -> a as back : dense(w = -0.3) delay 1 via filter(tau = 5.0)
connect drive -> d : flatten | scale(0.5) | dense(w = uniform(-0.2, 0.6)) | scale(2.0)
connect c -> d : scale(0.25) delay 3
connect d -> d as self : sparse(p = 0.3, w = -0.2) delay 2
monitor a.spikes, b.spikes, c.spikes, d.spikes, a.v, c.u, d.c"""

STDP = """seed = 5
steps = 60
encoder pre[10] = poisson(rate = 300 Hz)
input drive[5]
population post[5] = LIF(tau = 5.0, v_threshold = 0.5)
connect drive -> post as push
connect pre -> post as wide : dense(w = uniform(0, 0.3)) delay uniform(1, 4)
    learn stdp(tau_pre = 5, tau_post = 6, a_pre = 0.05, a_post = -0.04, w_max = 0.4)
connect pre -> post as thin : sparse(p = 0.5, w = 0.2) delay uniform(0, 2) via exp_current(tau = 2)
    learn stdp(tau_pre = 4, tau_post = 4, a_pre = 0.03, a_post = -0.03, w_max = 0.5,
               f_w = multiplicative)
monitor post.spikes, post.v, pre.spikes"""

ONE_TO_ONE_STDP = """seed = 7
steps = 60
encoder pre[5] = poisson(rate = 400 Hz)
input drive[5]
population mid[5] = IF(v_threshold = 0.5)
population post[5] = LIF(tau = 3.0, v_threshold = 0.4)
connect pre -> mid : flatten | one_to_one(w = 0.6)
connect drive -> post
connect mid -> post : one_to_one(w = 0.3) delay uniform(1, 3)
    learn stdp(tau_pre = 3, tau_post = 3, a_pre = 0.1, a_post = -0.1, w_max = 1)
monitor post.spikes, mid.spikes"""

CHANNELS = """seed = 2
steps = 40
input e[3]
encoder spk[6] = poisson(rate = 200 Hz)
population p[3] = Cond(refractory = 1)
population q[4] = PLIF(init_tau = 3.0, v_threshold = 0.5)
population idle[3] = LIF(tau = 8.0, v_rest = 1.0, v_threshold = 0.9, v_init = uniform(0, 0.5))
connect e -> p : one_to_one(w = 3.0) via spike_current(channel = ge)
connect spk -> p : dense(w = uniform(0, 0.4)) via exp_current(tau = 2, channel = gi)
connect spk -> p as direct : dense(w = uniform(0, 0.8)) delay 1
connect p -> q : dense(w = uniform(0, 1.5)) via filter(tau = 4.0, learnable = true)
monitor p.spikes, p.ge, p.v, q.spikes, idle.spikes"""


def build(tmp_path, body: str, prefix: str = "", name: str = "n.snn"):
    path = tmp_path / name
    path.write_text(prefix + net(body))
    return snnc_compile(path, backend="clock")


def pair(cls, batch: int = 1, dtype=torch.float64):
    """Two instances with the same weights: one for each path."""
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        nets.append(cls(batch_size=batch).to(dtype))
    assert compiled.loop_for(nets[1]) is not None  # the loop runs it, not the PyTorch path
    return nets


def pytorch_path(monkeypatch, run):
    """What `run()` gives on the PyTorch path."""
    with monkeypatch.context() as patch:
        patch.setenv("SNNC_CLOCK_LOOP", "0")
        return run()


def assert_same(ref, fast, out_ref, out_fast, atol=1e-12):
    assert out_ref.keys() == out_fast.keys()
    for key, value in out_ref.items():
        if key.endswith(".spikes"):
            assert torch.equal(value, out_fast[key]), key
        else:
            torch.testing.assert_close(out_fast[key], value, rtol=0, atol=atol, msg=key)
    assert ref.t == fast.t
    assert ref.spike_counts.keys() == fast.spike_counts.keys()
    for name, counts in ref.spike_counts.items():
        assert torch.equal(counts, fast.spike_counts[name]), name
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(fast.state_dict()[key], value, rtol=0, atol=atol, msg=key)
    for name, pop in ref.populations.items():
        for state, value in pop.states.items():
            torch.testing.assert_close(fast.populations[name].states[state], value, rtol=0,
                                       atol=atol, msg=f"{name}.{state}")


def mixed_inputs(batch: int, steps: int):
    g = torch.Generator().manual_seed(1)
    return {"img": torch.rand(batch, 12, generator=g, dtype=torch.float64),
            "drive": torch.rand(steps, batch, 4, 2, generator=g, dtype=torch.float64)}


def test_every_construct_gives_the_pytorch_path_s_spikes_for_a_batch(tmp_path, monkeypatch):
    ref, fast = pair(build(tmp_path, MIXED), batch=3)
    inputs = mixed_inputs(3, 40)
    out_ref = pytorch_path(monkeypatch, lambda: ref.run(40, record=("b.v",), **inputs))
    out_fast = fast.run(40, record=("b.v",), **inputs)
    assert_same(ref, fast, out_ref, out_fast)
    for pop in "abcd":
        assert out_fast[f"{pop}.spikes"].sum() > 0, pop
    # the batch's simulations differ: each drew its own Poisson spikes
    assert not torch.equal(out_fast["a.spikes"][:, 0], out_fast["a.spikes"][:, 1])


def learn_on_both_paths(tmp_path, monkeypatch, body: str):
    """60 steps of a learning net on the PyTorch path and in the loop, checked equal:
    (ref, fast, fast's state_dict before, fast's monitors)."""
    ref, fast = pair(build(tmp_path, body))
    before = {k: v.clone() for k, v in fast.state_dict().items()}
    drive = torch.rand(60, 1, 5, generator=torch.Generator().manual_seed(2),
                       dtype=torch.float64)
    out_ref = pytorch_path(monkeypatch, lambda: ref.run(60, drive=drive))
    out_fast = fast.run(60, drive=drive)
    assert_same(ref, fast, out_ref, out_fast)
    return ref, fast, before, out_fast


@pytest.mark.parametrize("body", [STDP, ONE_TO_ONE_STDP], ids=["dense-sparse", "one-to-one"])
def test_stdp_with_per_synapse_delays_learns_the_pytorch_path_s_weights(tmp_path, monkeypatch,
                                                                       body):
    ref, fast, before, out_fast = learn_on_both_paths(tmp_path, monkeypatch, body)
    assert any(not torch.equal(before[k], v) for k, v in fast.state_dict().items())
    for name, rule in ref.rules.items():
        torch.testing.assert_close(fast.rules[name].x_pre, rule.x_pre, rtol=0, atol=1e-12)
        torch.testing.assert_close(fast.rules[name].x_post, rule.x_post, rtol=0, atol=1e-12)


def test_a_batch_that_learns_learns_the_pytorch_path_s_weights(tmp_path, monkeypatch):
    """Each simulation's own weights and traces in the loop (a stride per simulation;
    a sparse one's known when it runs), as on the PyTorch path."""
    ref, fast = pair(build(tmp_path, LEARNING), batch=3)
    inputs = learning_inputs(3)
    record = ("thin.weight", "post.v")
    out_ref = pytorch_path(monkeypatch, lambda: ref.run(50, record=record, weight_every=7,
                                                        **inputs))
    out_fast = fast.run(50, record=record, weight_every=7, **inputs)
    assert_same(ref, fast, out_ref, out_fast)
    for name, rule in ref.rules.items():
        assert fast.rules[name].weights().shape[0] == 3
        torch.testing.assert_close(fast.rules[name].x_pre, rule.x_pre, rtol=0, atol=1e-12)
        torch.testing.assert_close(fast.rules[name].x_post, rule.x_post, rtol=0, atol=1e-12)


def test_channels_learnable_parameters_and_refractory_states(tmp_path, monkeypatch):
    ref, fast = pair(build(tmp_path, CHANNELS, CONDUCTANCE))
    e = (torch.rand(40, 1, 3, generator=torch.Generator().manual_seed(3)) < 0.4).double()
    out_ref = pytorch_path(monkeypatch, lambda: ref.run(40, record=("q.v",), e=e))
    out_fast = fast.run(40, record=("q.v",), e=e)
    assert_same(ref, fast, out_ref, out_fast)
    for pop in ("p", "q", "idle"):  # idle: no input at all, it leaks up to its rest
        assert out_fast[f"{pop}.spikes"].sum() > 0, pop


def test_a_run_split_and_mixed_with_steps_continues_as_one_run(tmp_path, monkeypatch):
    """Chunks of compiled runs, step() calls and PyTorch-path runs in one run leave one
    state: every history, synapse, delay line and trace carries over."""
    cls = build(tmp_path, MIXED)
    ref, fast = pair(cls, batch=2)
    inputs = mixed_inputs(2, 30)
    out_ref = pytorch_path(monkeypatch, lambda: ref.run(30, **inputs))
    parts = [fast.run(7, img=inputs["img"], drive=inputs["drive"][:7])]
    for i in range(7, 10):
        sent = fast.step(img=inputs["img"], drive=inputs["drive"][i])
        parts.append({f"{k}.spikes": sent[k][None] for k in "abcd"})
    parts.append(pytorch_path(monkeypatch, lambda: fast.run(
        6, img=inputs["img"], drive=inputs["drive"][10:16])))
    parts.append(fast.run(14, img=inputs["img"], drive=inputs["drive"][16:]))
    for key in ("a.spikes", "b.spikes", "c.spikes", "d.spikes"):
        assert torch.equal(torch.cat([p[key] for p in parts]), out_ref[key]), key
    assert_same(ref, fast, {}, {})
    ref.reset()
    fast.reset()
    again_ref = pytorch_path(monkeypatch, lambda: ref.run(30, **inputs))
    assert_same(ref, fast, again_ref, fast.run(30, **inputs))


def test_a_learning_run_in_chunks_ends_with_the_pytorch_path_s_state_dict(tmp_path,
                                                                         monkeypatch):
    ref, fast = pair(build(tmp_path, STDP))
    drive = torch.rand(60, 1, 5, generator=torch.Generator().manual_seed(4),
                       dtype=torch.float64)
    pytorch_path(monkeypatch, lambda: ref.run(60, drive=drive))
    for lo, hi in ((0, 1), (1, 13), (13, 14), (14, 60)):
        fast.run(hi - lo, drive=drive[lo:hi])
    assert_same(ref, fast, {}, {})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuba_gives_the_pytorch_path_s_spikes(monkeypatch, dtype):
    cls = snnc_compile(SAMPLES / "cuba.snn")
    ref, fast = pair(cls, dtype=dtype)
    torch.manual_seed(1)
    out_ref = pytorch_path(monkeypatch, lambda: ref.run(300))
    torch.manual_seed(1)
    out_fast = fast.run(300)
    assert out_fast["exc.spikes"].sum() > 100
    assert_same(ref, fast, out_ref, out_fast, atol=0)


def test_time_varying_inputs_of_latency_and_periodic_encoders(tmp_path, monkeypatch):
    body = ("steps = 20\ninput x[4]\ninput pat[3, 4]\nencoder lat = latency(x, t_max = 6)\n"
            "encoder per = periodic(pat)\npopulation a[4] = IF(v_threshold = 0.5)\n"
            "connect lat -> a\nconnect per -> a\nmonitor a.spikes, lat.spikes, per.spikes")
    ref, fast = pair(build(tmp_path, body))
    g = torch.Generator().manual_seed(5)
    inputs = {"x": torch.rand(20, 1, 4, generator=g, dtype=torch.float64),
              "pat": (torch.rand(1, 3, 4, generator=g) < 0.5).double()}
    out_ref = pytorch_path(monkeypatch, lambda: ref.run(20, **inputs))
    assert_same(ref, fast, out_ref, fast.run(20, **inputs))


def test_what_the_loop_does_not_run_stays_on_the_pytorch_path(tmp_path, monkeypatch):
    cls = build(tmp_path, "steps = 5\ninput i[4]\npopulation a[4] = IF\n"
                          "connect i -> a : noise(0.1)\nmonitor a.spikes")
    assert cls.loop_source is None
    assert cls().run(5, i=torch.ones(1, 4))["a.spikes"].shape == (5, 1, 4)
    runs = build(tmp_path, "steps = 5\ninput i[4]\npopulation a[4] = IF\nconnect i -> a",
                 name="m.snn")()
    assert compiled.loop_for(runs) is not None
    monkeypatch.setenv("SNNC_CLOCK_LOOP", "0")
    assert compiled.loop_for(runs) is None


def test_without_a_compiler_one_warning_and_the_pytorch_path(tmp_path, monkeypatch):
    cls = build(tmp_path, "steps = 5\ninput i[4]\npopulation a[4] = IF(v_threshold = 2)\n"
                          "connect i -> a\nmonitor a.spikes", name="bare.snn")
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang to be found
    monkeypatch.delenv("CC", raising=False)
    compiled._loop.cache_clear()
    native.build.cache_clear()
    try:
        with pytest.warns(UserWarning) as caught:
            outs = [cls().run(5, i=torch.ones(1, 4)) for _ in range(2)]
    finally:
        compiled._loop.cache_clear()
        native.build.cache_clear()
    assert [str(w.message) for w in caught] == [
        "snnc: no C compiler found (set CC) to build the clock backend's compiled loop; "
        "the PyTorch path runs instead (the same spikes, slower)"]
    assert all(out["a.spikes"][:, 0, 0].tolist() == [0, 1, 0, 1, 0] for out in outs)


def test_a_loop_of_another_snnc_version_is_not_called(tmp_path):
    cls = build(tmp_path, "steps = 5\ninput i[4]\npopulation a[4] = IF\nconnect i -> a",
                name="old.snn")
    old = type("Old", (cls,), {"loop_source": cls.loop_source.replace(
        "snnc_loop_abi = ", "snnc_loop_abi = 1000")})
    with pytest.warns(UserWarning, match="generated by another snnc version"):
        assert compiled.loop_for(old()) is None


def test_sparse_indices_out_of_bounds_are_refused_not_followed(tmp_path):
    sim = build(tmp_path, "steps = 5\ninput i[4]\npopulation a[4] = IF(v_threshold = 0.5)\n"
                          "population b[3] = IF\nconnect i -> a\n"
                          "connect a -> b : sparse(p = 1.0, w = 1.0)", name="bad.snn")()
    sim.run(1, i=torch.ones(1, 4))
    before = {k: v.clone() for k, v in sim.state_dict().items()}
    sim.connection("a->b").ops[0].targets[0] = 3  # a target b does not have
    with pytest.raises(ValueError, match="inconsistent"):
        sim.run(3, i=torch.ones(1, 4))
    assert sim.t == 1 and sim.populations["b"].states["v"].shape == (1, 3)
    assert torch.equal(sim.state_dict()["connections.a->b.ops.0.weight"],
                       before["connections.a->b.ops.0.weight"])


UNSEEDED_POISSON = """steps = 50
encoder pre[40] = poisson(rate = 700 Hz)
population post[3] = LIF(tau = 4.0, v_threshold = 0.5)
connect pre -> post : dense(w = uniform(0, 0.2))
    learn stdp(tau_pre = 3, tau_post = 3, a_pre = 0.02, a_post = -0.02, w_max = 0.3)
monitor post.spikes, pre.spikes"""


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_loop_draws_poisson_from_the_global_generator_as_pytorch(tmp_path, monkeypatch,
                                                                     dtype):
    """A fixed-rate Poisson encoder of one simulation is drawn in C (the driver computes
    nothing for it) from PyTorch's own generator: the same spikes, and the generator
    left where PyTorch's draws would leave it."""
    ref, fast = pair(build(tmp_path, UNSEEDED_POISSON), dtype=dtype)
    torch.manual_seed(11)
    out_ref = pytorch_path(monkeypatch, lambda: ref.run(50))
    after_ref = torch.get_rng_state()
    torch.manual_seed(11)
    external = compiled._external
    monkeypatch.setattr(compiled, "_external", lambda sim, e, *a: pytest.fail(e.owner)
                        if e.owner == "pre" else external(sim, e, *a))
    out_fast = fast.run(50)
    assert torch.equal(torch.get_rng_state(), after_ref)
    assert_same(ref, fast, out_ref, out_fast, atol=0)
    assert 0.6 * 40 * 50 < out_fast["pre.spikes"].sum() < 0.8 * 40 * 50  # p = 0.7 a step


def test_a_seeded_poisson_stream_goes_on_across_paths_and_chunks(tmp_path, monkeypatch):
    """The encoder's own generator, advanced by C in one run, continues in PyTorch in the
    next and back: one stream, whichever path draws."""
    ref, fast = pair(build(tmp_path, STDP))
    drive = torch.rand(60, 1, 5, generator=torch.Generator().manual_seed(6),
                       dtype=torch.float64)
    out_ref = pytorch_path(monkeypatch, lambda: ref.run(60, drive=drive))
    parts = [fast.run(25, drive=drive[:25]),
             pytorch_path(monkeypatch, lambda: fast.run(10, drive=drive[25:35])),
             fast.run(25, drive=drive[35:])]
    assert torch.equal(torch.cat([p["pre.spikes"] for p in parts]), out_ref["pre.spikes"])
    assert torch.equal(fast.encoders["pre"].generator.get_state(),
                       ref.encoders["pre"].generator.get_state())
    assert_same(ref, fast, {}, {})


@pytest.mark.parametrize("on_pytorch_path", [False, True], ids=["loop", "pytorch"])
def test_weights_are_sampled_at_multiples_of_weight_every(tmp_path, monkeypatch,
                                                          on_pytorch_path):
    """"conn.weight" samples the weights whenever the network's step count reaches a
    multiple of weight_every, across run() calls; on both paths each equals the weights
    after that step."""
    ref, fast = pair(build(tmp_path, STDP))
    if on_pytorch_path:
        monkeypatch.setenv("SNNC_CLOCK_LOOP", "0")
    drive = torch.rand(60, 1, 5, generator=torch.Generator().manual_seed(8),
                       dtype=torch.float64)
    after = []  # the weights after each step, one step at a time on the PyTorch path
    for k in range(60):
        pytorch_path(monkeypatch, lambda k=k: ref.run(1, drive=drive[k:k + 1]))
        after.append(ref.connection("wide").weight.clone())
    samples = [fast.run(n, record=("wide.weight",), weight_every=7, drive=drive[lo:lo + n])
               ["wide.weight"] for lo, n in ((0, 10), (10, 4), (14, 46))]
    assert [len(s) for s in samples] == [1, 1, 6]  # 7 | 14 | 21 28 35 42 49 56
    assert torch.equal(torch.cat(samples), torch.stack(after[6::7]))
    assert not torch.equal(samples[0][0], samples[-1][-1])  # they learnt meanwhile


def test_weight_samples_count_in_the_monitors_memory(tmp_path, monkeypatch):
    sim = build(tmp_path, STDP)()
    weights = sim.connection("wide").weight.numel()
    plain = sim.monitor_bytes(100)
    assert sim.monitor_bytes(100, ("wide.weight",), weight_every=10) == plain + 10 * weights * 4
    monkeypatch.setenv("SNNC_MAX_MEMORY", str(plain + 4 * weights * 4))
    with pytest.raises(MemoryError, match="need .* more than the limit"):
        sim.run(100, record=("wide.weight",), weight_every=10)
    assert sim.t == 0  # refused before the first step
    with pytest.raises(ValueError, match="weight_every"):
        sim.run(10, record=("wide.weight",), weight_every=0)
    with pytest.raises(KeyError, match="known: .*wide"):
        sim.run(10, record=("nowhere.weight",))


def mixed_pair(tmp_path, monkeypatch, batch: int, on_pytorch_path: bool):
    """Two MIXED networks with the same weights, on the loop or the PyTorch path, and a
    run's inputs of 40 steps."""
    dense_net, other_net = pair(build(tmp_path, MIXED), batch=batch)
    if on_pytorch_path:
        monkeypatch.setenv("SNNC_CLOCK_LOOP", "0")
    return dense_net, other_net, mixed_inputs(batch, 40)


@pytest.mark.parametrize("on_pytorch_path", [False, True], ids=["loop", "pytorch"])
def test_sparse_spikes_are_the_dense_monitors_as_events(tmp_path, monkeypatch,
                                                        on_pytorch_path):
    """run(sparse_spikes=True) gives every spike monitor (populations' and encoders') as
    a coalesced sparse tensor equal to the dense one, states still dense, for a batch and
    across a run split in calls; the run itself is the same."""
    dense_net, sparse_net, inputs = mixed_pair(tmp_path, monkeypatch, 3, on_pytorch_path)
    dense = dense_net.run(40, record=("spk.spikes",), **inputs)
    parts = [sparse_net.run(n, record=("spk.spikes",), sparse_spikes=True,
                            img=inputs["img"], drive=inputs["drive"][lo:lo + n])
             for lo, n in ((0, 1), (1, 25), (26, 14))]
    for key, values in dense.items():
        got = [p[key] for p in parts]
        if key.endswith(".spikes"):
            assert all(g.is_sparse and g.is_coalesced() for g in got), key
            got = [g.to_dense() for g in got]
        assert torch.equal(torch.cat(got), values), key
    assert dense["spk.spikes"].sum() > 0 and dense["d.spikes"].sum() > 0
    assert_same(dense_net, sparse_net, {}, {})


def test_sparse_spikes_of_a_drawn_encoder(tmp_path):
    """The loop's own Poisson draws, recorded as events: the dense monitor's spikes."""
    ref, fast = pair(build(tmp_path, UNSEEDED_POISSON))
    torch.manual_seed(4)
    dense = ref.run(50)
    torch.manual_seed(4)
    sparse = fast.run(50, sparse_spikes=True)
    assert torch.equal(sparse["pre.spikes"].to_dense(), dense["pre.spikes"])
    assert torch.equal(sparse["post.spikes"].to_dense(), dense["post.spikes"])
    assert sparse["pre.spikes"]._nnz() == int(dense["pre.spikes"].sum())


def test_events_of_a_population_of_several_axes(tmp_path):
    """Sparse spikes of a [3, 4] population index each axis as the dense monitor does."""
    cls = build(tmp_path, "seed = 1\nsteps = 30\nencoder e[3, 4] = poisson(rate = 300 Hz)\n"
                          "population p[3, 4] = IF(v_threshold = 0.5)\n"
                          "connect e -> p : one_to_one(w = uniform(0.2, 0.6))\n"
                          "monitor p.spikes, e.spikes", name="grid.snn")
    dense_net, sparse_net = pair(cls, batch=2)
    dense, sparse = dense_net.run(30), sparse_net.run(30, sparse_spikes=True)
    for key in ("p.spikes", "e.spikes"):
        assert sparse[key].shape == (30, 2, 3, 4)
        assert torch.equal(sparse[key].to_dense(), dense[key]), key
    assert dense["p.spikes"].sum() > 0


# SpikingFlow's rule on each connectivity, delays of the connection and per synapse, each
# f_w (the normalised one over weights of both signs), a synapse after the weights.
SPIKINGFLOW_STDP = """seed = 4
steps = 60
encoder pre[10] = poisson(rate = 300 Hz)
input drive[5]
population post[5] = LIF(tau = 5.0, v_threshold = 0.5)
population mid[10] = IF(v_threshold = 0.4)
connect drive -> post as push
connect pre -> post as wide : dense(w = uniform(-0.2, 0.3)) delay 2
    learn spikingflow_stdp(tau_pre = 5, tau_post = 6, learning_rate = 0.05, f_w = normalized)
connect pre -> post as thin : sparse(p = 0.5, w = 0.2) delay uniform(0, 3) via exp_current(tau = 2)
    learn spikingflow_stdp(tau_pre = 4, tau_post = 3, learning_rate = 0.02)
connect pre -> mid : one_to_one(w = 0.3) delay uniform(1, 3)
    learn spikingflow_stdp(tau_pre = 3, tau_post = 3, learning_rate = -0.01, f_w = 1)
monitor post.spikes, post.v, mid.spikes, pre.spikes"""


@pytest.mark.parametrize("pre_spike", ["sent", "arrived"])
def test_spikingflow_stdp_learns_the_pytorch_path_s_weights(tmp_path, monkeypatch, pre_spike):
    """`learn spikingflow_stdp` (every weight at every step): the loop gives the PyTorch
    path's spikes, weights and traces; also with the pre trace at the spikes' arrival (the
    rule's pre_spike changed in the registry: what a rule of that kind would do)."""
    from dataclasses import replace

    from snnc.registry import RULES
    monkeypatch.setitem(RULES, "spikingflow_stdp",
                        replace(RULES["spikingflow_stdp"], pre_spike=pre_spike))
    ref, fast, before, out_fast = learn_on_both_paths(tmp_path, monkeypatch,
                                                      SPIKINGFLOW_STDP)
    assert {r.pre_spike for r in fast.rules.values()} == {pre_spike}
    assert out_fast["post.spikes"].sum() > 0 and out_fast["mid.spikes"].sum() > 0
    for key, value in fast.state_dict().items():
        if key.endswith("weight"):   # every weight moves, spike or none
            assert (value != before[key]).all(), key
    for name, rule in ref.rules.items():
        torch.testing.assert_close(fast.rules[name].x_pre, rule.x_pre, rtol=0, atol=1e-12)
        torch.testing.assert_close(fast.rules[name].x_post, rule.x_post, rtol=0, atol=1e-12)


@pytest.mark.parametrize("on_pytorch_path", [False, True], ids=["loop", "pytorch"])
@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8])
def test_spikes_kept_in_one_byte(tmp_path, monkeypatch, on_pytorch_path, dtype):
    """run(spike_dtype=...) (snngrow's spike_out): dense spike monitors of populations and
    encoders in one byte a value, the same spikes as the float ones, states still float,
    and monitor_bytes counts them so."""
    dense_net, byte_net, inputs = mixed_pair(tmp_path, monkeypatch, 2, on_pytorch_path)
    floats = dense_net.run(40, record=("spk.spikes",), **inputs)
    bytes_ = byte_net.run(40, record=("spk.spikes",), spike_dtype=dtype, **inputs)
    for key, values in floats.items():
        if key.endswith(".spikes"):
            assert bytes_[key].dtype == dtype, key
            assert torch.equal(bytes_[key].to(values.dtype), values), key
        else:
            assert torch.equal(bytes_[key], values), key
    assert floats["a.spikes"].sum() > 0
    spikes = sum(v.numel() for k, v in floats.items() if k.endswith(".spikes"))
    assert dense_net.monitor_bytes(40, ("spk.spikes",)) - dense_net.monitor_bytes(
        40, ("spk.spikes",), spike_dtype=dtype) == 3 * spikes
    with pytest.raises(ValueError, match="spike_dtype"):
        byte_net.run(1, spike_dtype=torch.float16, **mixed_inputs(2, 1))
