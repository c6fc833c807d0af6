"""Hostile and odd input past the checks (issue 8): the memory budget refuses what the
runtime could not allocate, per-synapse delays cost what delivers and run recurrent,
and odd but accepted parameters run without a crash or a NaN."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest
import torch

from conftest import net
from snnc.check import budget, check_program
from snnc.check.budget import check_budget, estimate_memory
from snnc.compiler import compile as snnc_compile
from snnc.errors import SnnError
from snnc.frontend.loader import load
from snnc.limits import MAX_STEPS
from snnc.runtime import encoders
from snnc.runtime.factory import op
from snnc.runtime.layers import Connection, OneToOne, _Timeline


def checked(tmp_path, body: str, name: str = "t"):
    path = tmp_path / f"{name}.snn"
    path.write_text(net(body, name))
    [network] = check_program(load(path))
    return network


def refusal(tmp_path, body: str) -> SnnError:
    with pytest.raises(SnnError) as info:
        check_budget(checked(tmp_path, body))
    return info.value


# ------------------------------------------------------------------ per-synapse delays
def reference_currents(delayed, seq: torch.Tensor) -> torch.Tensor:
    """What arrives at each step by the definition: step t gets x[t - d] through the
    synapses of delay d (the bias from the connection's shared delay on). A sparse op's
    weights and delays, one per existing synapse, are placed in its dense matrix."""
    weight = delayed.weight
    dense = getattr(delayed.inner, "dense_weight", lambda values: values)
    one_to_one = isinstance(delayed.inner, OneToOne)
    shape = seq.shape[1:] if one_to_one else (*seq.shape[1:-1], dense(weight).shape[0])
    bias = getattr(delayed.inner, "bias", None)
    out = []
    for t in range(seq.shape[0]):
        current = seq.new_zeros(shape)
        for d in delayed.delays.unique().tolist():
            if t >= d:
                w = dense(weight * (delayed.delays == d))
                current = current + (seq[t - d] * w if one_to_one
                                     else torch.nn.functional.linear(seq[t - d], w))
        if bias is not None and t >= delayed.low:
            current = current + bias
        out.append(current)
    return torch.stack(out)


DELAYED_OPS = [("dense", (5,), (4,), {"bias": False}, 1, 3),
               ("dense", (5,), (4,), {"bias": True}, 0, 6),
               ("dense", (3, 5), (3, 4), {"bias": False}, 1, 30),   # most delays never arrive
               ("sparse", (6,), (3,), {"p": 0.5}, 2, 4),
               ("one_to_one", (5,), (5,), {}, 0, 12)]


@pytest.mark.parametrize("kind, source, target, params, low, high", DELAYED_OPS)
def test_per_synapse_delays_give_their_definition_in_layer_and_step_mode(
        kind, source, target, params, low, high):
    torch.manual_seed(0)
    conn = Connection("c", [op(kind, source, target, delays=(low, high), **params)], target)
    delayed, steps = conn.ops[0], 9
    seq = torch.rand(steps, 2, *source).requires_grad_()
    expected = reference_currents(delayed, seq)
    weights = torch.rand_like(expected)

    def run(mode):
        delayed.reset()
        if mode == "layer":
            out = conn(seq)
        else:  # step mode: the source's steps so far, one call per step
            out = torch.stack([conn.at(list(seq.unbind(0)), t, seq) for t in range(steps)])
        return out, torch.autograd.grad((out * weights).sum(), [seq, delayed.weight])

    grads = torch.autograd.grad((expected * weights).sum(), [seq, delayed.weight])
    for mode in ("layer", "step"):
        out, got = run(mode)
        torch.testing.assert_close(out, expected, msg=mode)
        for a, b in zip(got, grads, strict=True):
            torch.testing.assert_close(a, b, msg=mode)
    assert conn.delay == low  # the delay all synapses share is the connection's


def test_a_run_continued_in_calls_gets_what_was_on_its_way():
    delayed = op("dense", (6,), (4,), delays=(2, 7), bias=False)
    seq = torch.rand(10, 3, 6)
    whole = delayed(seq.reshape(30, 6), 10)
    delayed.reset()
    parts = [delayed(seq[a:b].reshape(-1, 6), b - a) for a, b in ((0, 4), (4, 5), (5, 10))]
    torch.testing.assert_close(torch.cat(parts), whole)
    assert sum(len(block) for block in delayed.history) == 7 - 2  # all that can still arrive


def test_a_wide_delay_range_costs_only_the_delays_that_deliver():
    """Issue 8: uniform(0, 100000) on a 1000×1000 dense took 85 s for 4 steps, one dense op
    per distinct delay; now one per delay below the steps a call sees."""
    delayed = op("dense", (1000,), (1000,), delays=(0, 100_000), bias=False)
    assert delayed.delays.unique().numel() > 90_000
    groups = list(_Timeline(delayed.delays, 0, [4], 4).groups())
    assert len(groups) <= 4
    x = (torch.rand(4, 1, 1000) < 0.2).float()
    start = time.perf_counter()
    out = delayed(x.reshape(4, 1000), 4)
    out.sum().backward()
    assert time.perf_counter() - start < 20
    torch.testing.assert_close(out.view(4, 1, 1000), reference_currents(delayed, x))


def test_recurrent_connection_with_per_synapse_delays_runs_as_defined(tmp_path):
    """Issue 8: `connect p -> p : dense delay uniform(1, 3)` failed at its first step (the
    op asked for the step being computed); now it integrates what each delay brings."""
    path = tmp_path / "loop.snn"
    path.write_text(net("seed = 2\nsteps = 12\ninput i[6]\n"
                        "population p[6] = IF(v_threshold = 0.5)\nconnect i -> p\n"
                        "connect p -> p : dense(w = uniform(-0.5, 0.5)) "
                        "delay uniform(1, 3)\nmonitor p.v, p.spikes", "loop"))
    model = snnc_compile(path)()
    x = torch.rand(12, 2, 6, generator=torch.Generator().manual_seed(3))
    model(x)
    delayed = model.connection("p->p").ops[0]
    spikes, v = model.monitors["p.spikes"], model.monitors["p.v"]
    state = torch.zeros(2, 6)
    for t in range(12):  # IF with a hard reset, fed by the input and its own past spikes
        current = x[t].clone()
        for d in (1, 2, 3):
            if t >= d:
                current += spikes[t - d] @ (delayed.weight * (delayed.delays == d)).t()
        state = state + current
        fired = (state >= 0.5).float()
        torch.testing.assert_close(spikes[t], fired)
        state = state * (1 - fired)
        torch.testing.assert_close(v[t], state)
    assert spikes.sum() > 0


def _per_synapse_net(tmp_path, recurrent: bool) -> dict:
    loop = "connect q -> q as loop : scale(0.0) delay 1\n" if recurrent else ""
    path = tmp_path / f"ps{recurrent}.snn"
    path.write_text(net("seed = 5\nsteps = 10\ninput i[6]\npopulation p[6] = IF(v_threshold = 0.5)"
                        "\npopulation q[4] = IF(v_threshold = 0.7)\nconnect i -> p\n"
                        "connect p -> q : sparse(p = 0.6, w = uniform(0, 1)) delay uniform(1, 4) "
                        "via exp_current(tau = 3.0)\n" + loop + "monitor p.spikes, q.spikes, q.v",
                        "ps"))
    model = snnc_compile(path)()
    model(torch.rand(10, 2, 6, generator=torch.Generator().manual_seed(0)))
    return model.monitors


def test_per_synapse_delays_give_the_same_spikes_layer_by_layer_and_step_by_step(tmp_path):
    layer, step = _per_synapse_net(tmp_path, False), _per_synapse_net(tmp_path, True)
    for key in ("p.spikes", "q.spikes", "q.v"):
        assert torch.equal(layer[key], step[key]), key
    assert layer["q.spikes"].sum() > 0


def test_sparse_run_step_by_step_keeps_no_product_per_step(tmp_path):
    path = tmp_path / "rec.snn"
    path.write_text(net("steps = 50\ninput x[300]\npopulation e[300] = LIF(v_threshold = 0.5)\n"
                        "connect x -> e\nconnect e -> e : sparse(p = 0.1, w = 0.2) delay 1",
                        "rec"))
    model = snnc_compile(path)()
    kept = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.rand(1, 300)).sum().backward()
    matrix = 300 * 300 * 4
    # the largest is the weight vector: nothing of the dense matrix's size, let alone 50
    assert max(kept.values()) < matrix / 4


def test_sparse_product_follows_the_weight_it_is_made_from():
    sparse = op("sparse", (8,), (5,), p=0.5)
    x = torch.rand(3, 8)
    sparse(x)
    with torch.no_grad():
        sparse.weight.add_(1.0)  # as an optimiser's step does: in place
    torch.testing.assert_close(sparse(x), x @ sparse.dense_weight().t())
    exists = sparse.dense_weight(torch.ones_like(sparse.weight)).detach()
    sparse.load_state_dict({**sparse.state_dict(), "weight": torch.ones_like(sparse.weight)})
    torch.testing.assert_close(sparse(x), x @ exists.t())
    out = sparse(x)
    out.sum().backward()
    assert torch.equal(sparse.dense_weight(sparse.weight.grad) != 0,
                       exists.bool() & (x.sum(0) != 0))


# ------------------------------------------------------------------ memory budget
def test_a_dense_op_too_big_for_memory_is_refused_where_it_is_written(tmp_path):
    err = refusal(tmp_path, "input a[100000]\npopulation b[100000] = LIF\n"
                            "connect a -> b : dense")
    assert err.message == ("this network needs about 74.6 GiB (connection 'a->b': dense "
                           "100000×100000 weights 37.3 GiB, connection 'a->b': dense transposed "
                           "weights 37.3 GiB, ...); at most 16 GiB")
    assert (err.pos.line, err.pos.col) == (4, 18)  # the dense op
    assert "SNNC_MAX_MEMORY=75G" in err.hint


def test_a_sparse_op_costs_its_existing_synapses(tmp_path):
    body = "input a[100000]\npopulation b[100000] = LIF\nconnect a -> b : sparse(p = {})"
    err = refusal(tmp_path, body.format(0.5))
    assert "connection 'a->b': sparse 100000×100000 synapses at p = 0.5, weights and " \
           "indices 130 GiB" in err.message
    check_budget(checked(tmp_path, body.format(1e-6)))  # 10 000 synapses


def test_huge_intermediate_shapes_are_refused(tmp_path):
    body = ("steps = 10\ninput img[1, 8, 8]\npopulation p[1, 2, 2] = LIF\n"
            "connect img -> p : conv2d(k = 3, pad = {0}) | maxpool(k = {1})")
    with pytest.raises(SnnError):  # past the elements one tensor may have: the checks'
        check_budget(checked(tmp_path, body.format(100_000, 100_001)))
    err = refusal(tmp_path, body.format(20_000, 20_001))
    assert err.message.startswith("this network needs about 59.6 GiB (connection 'img->p': "
                                  "conv2d output [1, 40006, 40006] × 10 steps 59.6 GiB")
    assert (err.pos.line, err.pos.col) == (5, 20)  # the conv2d op


def test_long_runs_are_refused_for_their_activations(tmp_path):
    err = refusal(tmp_path, f"steps = {MAX_STEPS}\ninput a[1000]\npopulation b[1000] = LIF\n"
                            "connect a -> b : dense")
    assert f"connection 'a->b': dense output [1000] × {MAX_STEPS} steps 37.3 GiB" in err.message
    assert f"population 'b' [1000] spikes × {MAX_STEPS} steps 37.3 GiB" in err.message


def test_networks_at_the_limit_are_accepted_and_just_above_refused(tmp_path, monkeypatch):
    network = checked(tmp_path, "steps = 20\ninput a[300]\nencoder s = poisson(a)\n"
                                "population b[200] = LIF\nconnect s -> b : dense(bias = true)")
    total = estimate_memory(network).total
    monkeypatch.setenv("SNNC_MAX_MEMORY", str(total))
    check_budget(network)
    monkeypatch.setenv("SNNC_MAX_MEMORY", str(total - 1))
    with pytest.raises(SnnError, match="this network needs about"):
        check_budget(network)


@pytest.mark.parametrize("sample", ["digits_mlp", "mnist_mlp", "cifar10_conv",
                                    "plif_fashion_mnist", "cuba", "polychronization"])
def test_the_samples_fit_the_default_budget(sample):
    from conftest import ROOT
    for network in check_program(load(ROOT / "samples" / f"{sample}.snn")):
        check_budget(network)


def test_kept_memory_is_the_modules_parameters_and_buffers(tmp_path):
    body = ("steps = 5\nseed = 1\ninput img[2, 12, 12]\npopulation c[4, 6, 6] = LIF\n"
            "population h[40] = LIF\npopulation o[40] = LIF\n"
            "connect img -> c : conv2d(k = 3, pad = 1, bias = true) | maxpool(2)\n"
            "connect c -> h : flatten | dense(bias = true) delay uniform(1, 4)\n"
            "connect h -> o : one_to_one\nconnect o -> h as back : sparse(p = 0.3) delay 1")
    network = checked(tmp_path, body, "kept")
    model = snnc_compile(tmp_path / "kept.snn")()
    model(torch.rand(1, 2, 12, 12))
    tensors = [*model.parameters(), *model.buffers()]
    states = sum(p.state_bytes() for p in network.populations)
    # the estimate counts the p × in × out synapses a sparse op is expected to draw
    drawn = model.connection("back").ops[0].synapse_count - round(0.3 * 40 * 40)
    assert estimate_memory(network).kept == sum(t.numel() * t.element_size() for t in tensors) \
        + states - drawn * (budget.VALUE + budget.SPARSE_INDEXES * 4)


MEASURE = """
import json, sys, torch, snnc
def rss(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
Net = snnc.compile(sys.argv[1])
x = torch.rand(1, 2000)
open("/proc/self/clear_refs", "w").write("5")  # restart the high-water mark
before = rss("VmRSS")
Net()(x)
print(json.dumps(rss("VmHWM") - before))
"""


def test_the_estimate_is_near_what_net_and_one_forward_allocate(tmp_path):
    """Peak resident memory of Net() and one forward of one sample, autograd on, in a
    fresh process (about 8 MiB of it is the first forward's own: kernels, threads)."""
    path = tmp_path / "wide.snn"
    path.write_text(net("steps = 1000\ninput x[2000]\nencoder s = poisson(x)\n"
                        "population h[4000] = LIF\npopulation o[10] = LIF\n"
                        "connect s -> h : dense(bias = true)\nconnect h -> o : dense", "wide"))
    [network] = check_program(load(path))
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    peak = json.loads(result.stdout.splitlines()[-1])
    assert 1 / 1.5 <= estimate_memory(network).total / peak <= 1.5


def test_the_budget_knows_every_synapse_and_op_with_parameters():
    from snnc.check import budget
    from snnc.registry import OPS, SYNAPSES
    assert set(budget._SYNAPSE_SAVED) == set(SYNAPSES)
    assert budget.PARAMETERIZED_OPS <= set(OPS)


def test_per_synapse_delays_of_absurd_cost_are_refused(tmp_path):
    body = "steps = {}\ninput a[1000]\npopulation b[1000] = LIF\n" \
           "connect a -> b : dense delay uniform(0, 100000)"
    err = refusal(tmp_path, body.format(10_000))
    assert err.message.startswith("per-synapse delays of connection 'a->b' would cost about")
    assert "100001 distinct delays over 10000 steps on 1000000 synapses" in err.message
    check_budget(checked(tmp_path, body.format(4)))


# ------------------------------------------------------------------ odd parameters
def test_a_stride_past_the_only_window_is_the_same_convolution():
    """Issue 8: conv1d(stride = 2**31 - 1) died of SIGFPE in PyTorch's backward."""
    torch.manual_seed(0)
    huge = op("conv1d", (2, 8), (4, 1), k=3, stride=2**31 - 1, pad=1, bias=True)
    small = op("conv1d", (2, 8), (4, 1), k=3, stride=8, pad=1, bias=True)
    small.load_state_dict(huge.state_dict())
    x = torch.rand(3, 2, 8, requires_grad=True)
    out = huge(x)
    out.sum().backward()
    torch.testing.assert_close(out, small(x))
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("t_max, mode", [(1e30, "linear"), (1.0, "linear"), (1.0, "log"),
                                         (0.01, "log"), (89.7, "log")])
def test_latency_at_its_extremes_fires_at_most_once_within_the_run(t_max, mode):
    x = torch.tensor([[1.0, 0.5, 0.0]]).expand(10, 1, 3)
    out = encoders.Latency(t_max=t_max, mode=mode)(x, 10, 1, x)
    assert out.sum(0).le(1).all() and out[0, 0, 0] == 1
    if t_max <= 1:  # every value spikes at once
        assert out[0].tolist() == [[1.0, 1.0, 1.0]]


ODD_BUT_ACCEPTED = [
    "input i[8]\npopulation p[8] = LIF\nconnect i -> p : dropout(p = 0.999)",
    "input i[8]\npopulation p[4] = LIF\nconnect i -> p : sparse(p = 0)",
    "input i[8]\npopulation p[4] = LIF\nconnect i -> p : sparse(p = 1)",
    "input i[8]\npopulation p[8] = LIF\nconnect i -> p : noise(std = 0) | scale(c = 0)",
    "encoder e[8] = poisson(rate = 1)\npopulation p[8] = LIF\nconnect e -> p : dense",
    "input i[8]\npopulation p[8] = LIF\nconnect i -> p : dense via stp(v_base = 0, tau_f = 0.5, "
    "tau_d = 0.5)",
    "input i[8]\npopulation p[8] = LIF\nconnect i -> p : dense via stp(v_base = 1, tau_d = 1e30)",
    "input i[8]\npopulation p[8] = LIF\nconnect i -> p : dense via filter(tau = 0.5)",
    "input i[8]\npopulation p[8] = LIF\nconnect i -> p : dense via filter(tau = 1.001, "
    "learnable = true)",
    "input i[8]\npopulation p[8] = LIF\nconnect i -> p : dense via exp_current(tau = 0.001)",
    "input i[8]\npopulation p[8] = LIF\nconnect i -> p : dense via exp_decay_current("
    "tau = 1e-30, amplitude = 1e30)",
    "input i[8]\npopulation p[8] = LIF\nconnect i -> p : dense\nreadout p = voting(8)",
    "input pat[3, 8]\nencoder e = periodic(pat)\npopulation p[8] = LIF\nconnect e -> p : dense",
    "input i[1, 8, 8]\npopulation p[2, 1, 1] = LIF\nconnect i -> p : conv2d(k = 3, pad = 0, "
    "stride = 2147483647) | batchnorm(eps = 1e-30, momentum = 1)",
    "input i[8]\npopulation p[8] = IF(v_threshold = 0.5)\nconnect i -> p\n"
    "connect p -> p : one_to_one(w = 0.5) delay uniform(1, 4) via stp",
]


@pytest.mark.parametrize("body", ODD_BUT_ACCEPTED)
def test_odd_but_accepted_parameters_run_forward_and_backward(tmp_path, body):
    path = tmp_path / "odd.snn"
    path.write_text(net("steps = 12\nseed = 1\n" + body, "odd"))
    Net = snnc_compile(path)
    model = Net()
    inputs = [(torch.rand(2, *shape) * 2).requires_grad_() for shape in Net.input_shapes.values()]
    out = model(*inputs) if inputs else model(batch_size=2)
    assert torch.isfinite(out).all()
    if out.requires_grad:  # exp_decay_current sets the current: no gradient reaches back
        out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    grads += [x.grad for x in inputs if x.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)


def test_poisson_at_rate_one_fires_every_step_and_periodic_wraps():
    like = torch.zeros(5, 2)
    assert encoders.Poisson(rate=1.0, shape=(3,))(None, 5, 2, like).eq(1).all()
    pattern = torch.arange(6.0).view(1, 1, 3, 2).expand(7, 1, 3, 2)  # P = 3 < 7 steps
    out = encoders.Periodic()(pattern, 7, 1, pattern)
    assert torch.equal(out[3], out[0]) and torch.equal(out[6], out[0])
    assert math.isclose(out[2].sum().item(), 9.0)
