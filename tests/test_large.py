"""Large networks (issue 10): per-synapse delays in the smallest integer type that holds
their range, drawn as the int64 draw was; old int64 state_dicts load; the budget accepts
the 10⁸-synapse CUBA of benchmarks/large.py and refuses an absurd size with its estimate.
Nothing here allocates a large network: the budget is an estimate made before building."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from conftest import ROOT, net
from snnc import cli, limits
from snnc.check import budget, check_program
from snnc.check.budget import check_budget, estimate_memory
from snnc.compiler import compile as snnc_compile
from snnc.errors import SnnError
from snnc.frontend.loader import load
from snnc.limits import MAX_DELAY
from snnc.runtime.factory import op
from snnc.runtime.layers import Connection, SynapseDelays


def large_benchmark():
    spec = importlib.util.spec_from_file_location("large", ROOT / "benchmarks" / "large.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checked(tmp_path, text: str, name: str = "t.snn"):
    path = tmp_path / name
    path.write_text(text)
    [network] = check_program(load(path))
    return network


# ------------------------------------------------------------------ the delays' type
@pytest.mark.parametrize("low, high, dtype", [
    (0, 127, torch.int8), (1, 20, torch.int8), (-128, 127, torch.int8),
    (0, 128, torch.int16), (-129, 0, torch.int16), (0, 32767, torch.int16),
    (0, 32768, torch.int32), (0, MAX_DELAY, torch.int32), (0, 2**31, torch.int64)])
def test_delays_take_the_smallest_type_that_holds_the_range(low, high, dtype):
    assert SynapseDelays.dtype_for(low, high) == dtype
    assert limits.delay_bytes(low, high) == torch.tensor([], dtype=dtype).element_size()


@pytest.mark.parametrize("kind, shape, params", [
    ("dense", ((37,), (29,)), {"bias": False}),
    ("sparse", ((300,), (200,)), {"p": 0.3}),
    ("one_to_one", ((5, 7), (5, 7)), {})])
@pytest.mark.parametrize("low, high", [(1, 20), (0, 127), (3, 128), (0, 40_000),
                                       (2, MAX_DELAY)])
def test_delays_are_the_int64_draw_value_for_value(kind, shape, params, low, high):
    """The draw is torch.randint's int64 one, element for element, and leaves the
    generator where that one did (what is drawn after it is the same too)."""
    torch.manual_seed(12)
    delayed = op(kind, *shape, delays=(low, high), **params)
    after = torch.rand(4)
    torch.manual_seed(12)
    inner = op(kind, *shape, **params)
    expected = torch.randint(low, high + 1, tuple(inner.weight.shape))
    assert delayed.delays.dtype == SynapseDelays.dtype_for(low, high)
    assert torch.equal(delayed.delays.long(), expected)
    assert torch.equal(torch.rand(4), after)
    assert torch.equal(delayed.weight, inner.weight)


def test_a_seeded_network_draws_the_delays_it_drew_in_int64(tmp_path):
    path = tmp_path / "d.snn"
    path.write_text(net("seed = 7\ninput a[50]\npopulation b[40] = LIF\n"
                        "connect a -> b : sparse(p = 0.2) delay uniform(1, 300)", "d"))
    model = snnc_compile(path)()
    layer = model.connection("a->b").ops[0]
    assert layer.delays.dtype == torch.int16
    state = torch.get_rng_state()
    torch.manual_seed(7)  # the build's stream (docs/RNG.md): synapses, weights, delays
    inner = op("sparse", (50,), (40,), p=0.2)
    assert torch.equal(layer.delays.long(), torch.randint(1, 301, (inner.synapse_count,)))
    torch.set_rng_state(state)


# ------------------------------------------------------------------ the PyTorch paths
@pytest.mark.parametrize("kind, params", [("dense", {"bias": True}), ("sparse", {"p": 0.4})])
def test_the_pytorch_path_gives_with_small_delays_what_it_gave_with_int64(kind, params):
    """Forward (layer and step mode) and backward agree, to the bit, with the same delays
    held as int64."""
    torch.manual_seed(3)
    small = op(kind, (12,), (9,), delays=(1, 6), **params)
    wide = op(kind, (12,), (9,), delays=(1, 6), **params)
    wide.load_state_dict(small.state_dict())
    wide.delays = small.delays.long()
    assert small.delays.dtype == torch.int8
    seq = (torch.rand(15, 2, 12) < 0.4).float()
    outs, grads = [], []
    for layer in (small, wide):
        layer.weight.grad = None
        conn = Connection("c", [layer], (9,))
        layer.reset()
        out = conn(seq)
        out.square().sum().backward()
        outs.append(out)
        grads.append(layer.weight.grad.clone())
        layer.reset()
        stepped = torch.stack([conn.at(seq, t, seq) for t in range(len(seq))])
        outs.append(stepped)
    assert all(torch.equal(o, outs[0]) for o in outs)
    assert torch.equal(grads[0], grads[1])


# ------------------------------------------------------------------ loading
def model_with_delays(tmp_path, seed: int, delay: str = "uniform(1, 20)"):
    path = tmp_path / f"n{seed}.snn"
    path.write_text(net(f"seed = {seed}\ninput a[30]\npopulation b[20] = LIF\n"
                        f"connect a -> b : sparse(p = 0.3) delay {delay}\n"
                        "connect b -> b as back : dense delay uniform(1, 4)", "n"))
    return snnc_compile(path)()


def test_an_old_int64_state_dict_loads_converted(tmp_path):
    old = model_with_delays(tmp_path, 1).state_dict()
    delay_keys = [k for k in old if k.endswith(".delays")]
    assert len(delay_keys) == 2
    old = {k: v.long() if k in delay_keys else v for k, v in old.items()}  # as saved before
    for assign in (False, True):
        model = model_with_delays(tmp_path, 2)
        model.load_state_dict(old, assign=assign)
        for key in delay_keys:
            loaded = model.state_dict()[key]
            assert loaded.dtype == torch.int8
            assert torch.equal(loaded.long(), old[key])
    reference = model_with_delays(tmp_path, 1).state_dict()
    assert all(torch.equal(t, reference[k]) and t.dtype == reference[k].dtype
               for k, t in model.state_dict().items())


def test_a_state_dict_with_delays_the_type_cannot_hold_is_refused(tmp_path):
    model = model_with_delays(tmp_path, 1)
    state = model.state_dict()
    before = state["connections.a->b.ops.0.delays"].clone()
    bad = {**state, "connections.a->b.ops.0.delays": before.long() + 200}  # up to 220
    with pytest.raises(RuntimeError, match=r"stored as torch.int8, which cannot hold 20\d "
                                           r"\.\. 2\d\d"):
        model.load_state_dict(bad)
    assert torch.equal(model.state_dict()["connections.a->b.ops.0.delays"], before)
    # out of the connection's range but within its type: kept, and never delivered
    model.load_state_dict({**state, "connections.a->b.ops.0.delays": before.long() + 100})
    assert int(model.state_dict()["connections.a->b.ops.0.delays"].max()) <= 120


# ------------------------------------------------------------------ the budget
def test_the_large_benchmark_fits_the_default_budget(tmp_path, monkeypatch):
    """10⁵ neurons, 10⁸ synapses with per-synapse delays, 10 000 steps on the clock
    backend: accepted (the compiled loop's delay work counted, not the PyTorch path's),
    with an estimate that counts 4 + 12 + 1 bytes per synapse kept (the weight, the
    target, the by-target index's two, an int8 delay) and well under a 24 GiB machine."""
    monkeypatch.delenv("SNNC_MAX_MEMORY", raising=False)
    network = checked(tmp_path, large_benchmark().network_text(100_000))
    assert network.backend == "clock" and network.steps == 10_000
    synapses = sum(budget._stored_synapses(budget._delayed_op(c)) for c in network.connections)
    assert synapses == 10**8
    estimate = estimate_memory(network)
    assert 17 <= estimate.kept / synapses < 17.1
    assert estimate.total < 8 * 2**30
    check_budget(network)


def test_the_same_network_on_softbp_is_refused_for_its_delay_work(tmp_path, monkeypatch):
    """softbp keeps its sequences (50 GiB here) and passes over the synapses per delay."""
    text = large_benchmark().network_text(100_000).replace("backend = clock",
                                                           "backend = softbp")
    with pytest.raises(SnnError, match="this network needs about"):
        check_budget(checked(tmp_path, text))
    monkeypatch.setenv("SNNC_MAX_MEMORY", "1T")
    with pytest.raises(SnnError, match="per-synapse delays of connection 'exc->exc' would "
                                       "cost about"):
        check_budget(checked(tmp_path, text))


def test_an_absurd_size_fails_at_build_with_its_estimate(tmp_path, capsys):
    """10¹² synapses: refused for its memory (before its delay work), at the op, by the
    whole build (file:line:col, the line, a caret)."""
    path = tmp_path / "absurd.snn"
    path.write_text(net("backend = clock\npopulation a[1000000] = LIF\n"
                        "connect a -> a : sparse(p = 1) delay uniform(1, 20)", "absurd"))
    with pytest.raises(SnnError) as info:
        snnc_compile(path)
    err = info.value
    assert err.message.startswith("this network needs about ")
    assert "TiB (connection 'a->a': sparse 1000000×1000000 synapses at p = 1" in err.message
    assert (err.pos.line, err.pos.col) == (4, 18)
    assert cli.main(["build", str(path), "-o", str(tmp_path / "out.py")]) == 1
    printed = capsys.readouterr().err
    assert "absurd.snn:4:18: error: this network needs about" in printed
    assert "connect a -> a : sparse(p = 1) delay uniform(1, 20)" in printed
    assert "\n" + " " * (4 + 17) + "^" in printed  # under the op
    assert not (tmp_path / "out.py").exists()


def test_the_budget_counts_the_delays_a_module_keeps(tmp_path):
    """Kept memory is the module's own tensors (and the populations' states), delays in
    their small type included."""
    path = tmp_path / "k.snn"
    path.write_text(net("seed = 1\ninput a[64]\npopulation b[48] = LIF\n"
                        "connect a -> b : dense delay uniform(1, 500)\n"
                        "connect b -> b : one_to_one delay uniform(2, 9)", "k"))
    [network] = check_program(load(path))
    model = snnc_compile(path)()
    tensors = [*model.parameters(), *model.buffers()]
    states = sum(p.state_bytes() for p in network.populations)
    assert estimate_memory(network).kept == \
        sum(t.numel() * t.element_size() for t in tensors) + states


def test_the_clock_loops_delay_work_is_bounded_too(tmp_path):
    """Where the loop runs the delays its work counts, and an absurd one is still refused."""
    body = "backend = clock\nsteps = {}\npopulation a[1000] = LIF\n" \
           "connect a -> a : sparse(p = 0.01) delay uniform(1, {})"
    check_budget(checked(tmp_path, net(body.format(10_000, 200))))
    with pytest.raises(SnnError, match="per-synapse delays of connection 'a->a' would cost"):
        check_budget(checked(tmp_path, net(body.format(1_000_000, 90_000))))
