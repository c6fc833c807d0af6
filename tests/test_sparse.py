"""`sparse(p)` stores only the synapses that exist (issue 9): its products and gradients
are those of the dense matrix with a mask, in layer and step mode and with per-synapse
delays; its draw is exactly "each synapse exists with probability p", reproducible by
seed; its state_dict round-trips; the memory budget counts what it keeps."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import net
from snnc.check import budget, check_program
from snnc.check.budget import estimate_memory
from snnc.compiler import compile as snnc_compile
from snnc.frontend.loader import load
from snnc.ir.values import Normal, Uniform
from snnc.runtime import sparse
from snnc.runtime.factory import op
from snnc.runtime.layers import SynapseDelays
from snnc.runtime.sparse import SparseLinear, draw_synapses

TOLERANCES = {torch.float64: {"rtol": 1e-12, "atol": 1e-12},
              torch.float32: {"rtol": 1e-5, "atol": 1e-5}}


def dense_reference(layer: SparseLinear) -> torch.Tensor:
    """W [out, in] built from the stored indices, independently of the layer's methods."""
    sources = torch.repeat_interleave(torch.arange(layer.in_features),
                                      layer.offsets.diff().long())
    w = torch.zeros(layer.out_features, layer.in_features, dtype=layer.weight.dtype)
    w[layer.targets.long(), sources] = layer.weight.detach()
    return w


class DenseMasked(nn.Module):
    """The old layout of a sparse op: a dense weight and a float mask, from the same draw."""

    def __init__(self, layer: SparseLinear):
        super().__init__()
        self.weight = nn.Parameter(dense_reference(layer))
        self.register_buffer("mask", (self.weight != 0).to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask)


def spikes(shape, density: float, dtype=torch.float32) -> torch.Tensor:
    return (torch.rand(shape) < density).to(dtype)


# ------------------------------------------------------------------ the layer
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("path", ["events", "events in PyTorch", "compressed"])
def test_products_and_gradients_are_the_masked_dense_ones(monkeypatch, dtype, path):
    # each path forced, so that all are compared whatever the input's density
    monkeypatch.setattr(sparse, "EVENT_DENSITY", 0.0 if path == "compressed" else 1.0)
    if path == "events in PyTorch":
        monkeypatch.setattr(sparse, "_kernels", lambda *args: None)
    torch.manual_seed(0)
    layer = SparseLinear(37, 23, 0.3).to(dtype)
    reference = DenseMasked(layer)
    x = (spikes((4, 5, 37), 0.2, dtype) * torch.rand(4, 5, 37, dtype=dtype)).requires_grad_()
    out, expected = layer(x), reference(x)
    torch.testing.assert_close(out, expected, **TOLERANCES[dtype])
    weights = torch.randn_like(out)
    grad_x, grad_w = torch.autograd.grad((out * weights).sum(), [x, layer.weight])
    ref_x, ref_w = torch.autograd.grad((expected * weights).sum(), [x, reference.weight])
    torch.testing.assert_close(grad_x, ref_x, **TOLERANCES[dtype])
    torch.testing.assert_close(layer.dense_weight(grad_w), ref_w * reference.mask,
                               **TOLERANCES[dtype])
    assert grad_w.shape == (layer.synapse_count,) and grad_w.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_event_kernels_sum_as_the_pytorch_events_do(monkeypatch, dtype):
    """templates/kernels/sparse_events.c adds each synapse's term in index_add_'s order:
    the same bits, NaN inputs included, so the kernels change no spike."""
    monkeypatch.setattr(sparse, "EVENT_DENSITY", 1.0)
    torch.manual_seed(3)
    layer = SparseLinear(300, 200, 0.1).to(dtype)
    x = spikes((6, 300), 0.05, dtype) * torch.randn(6, 300, dtype=dtype)
    x[2, 5] = float("nan")
    grad = torch.randn(6, 200, dtype=dtype)
    synapses, weight = layer.synapses(), layer.weight.detach()
    assert sparse._kernels(x, weight, synapses.offsets) is not None
    native = synapses.apply(x, weight), synapses.weight_grad(grad, x)
    monkeypatch.setattr(sparse, "_kernels", lambda *args: None)
    python = synapses.apply(x, weight), synapses.weight_grad(grad, x)
    for ours, theirs in zip(native, python, strict=True):
        assert torch.equal(ours.isnan(), theirs.isnan()) and ours.isnan().any()
        assert torch.equal(ours.nan_to_num(), theirs.nan_to_num())


def test_spikes_go_through_the_synapses_they_reach_only(monkeypatch):
    def every_synapse(*args):
        raise AssertionError("the product over every synapse ran")
    monkeypatch.setattr(sparse.Synapses, "_by_target", every_synapse)
    layer = SparseLinear(500, 400, 0.05)
    x = torch.zeros(2, 500)
    x[0, 7], x[1, 300] = 1.0, 2.0
    torch.testing.assert_close(layer(x), x @ dense_reference(layer).t())


def test_a_nan_weight_stays_out_of_the_other_gradients(monkeypatch):
    """The sampled product adds beta × its input's values: zeros, not the weights."""
    monkeypatch.setattr(sparse, "EVENT_DENSITY", 0.0)
    layer = SparseLinear(10, 8, 0.5)
    with torch.no_grad():
        layer.weight[0] = float("nan")
    out = layer(torch.rand(3, 10))
    (grad,) = torch.autograd.grad(out, [layer.weight], torch.ones_like(out))
    assert torch.isfinite(grad).all()


def test_the_weight_is_the_vector_of_existing_synapses_and_dense_weight_places_it():
    layer = SparseLinear(40, 30, 0.25)
    assert isinstance(layer.weight, nn.Parameter) and layer.weight.dim() == 1
    count = layer.synapse_count
    assert count == len(layer.targets) == len(layer.weight) == int(layer.offsets[-1])
    torch.testing.assert_close(layer.dense_weight().detach(), dense_reference(layer))
    assert int(torch.count_nonzero(layer.dense_weight(torch.ones(count)))) == count
    bound = 1 / 40 ** 0.5  # nn.Linear's default
    assert layer.weight.abs().max() <= bound and layer.weight.std() > bound / 3


def test_the_stored_synapses_are_distinct_and_in_source_major_order():
    offsets, targets = draw_synapses(50, 60, 0.3)
    assert offsets.dtype == targets.dtype == torch.int32
    assert offsets[0] == 0 and bool((offsets.diff() >= 0).all())
    sources = torch.repeat_interleave(torch.arange(50), offsets.diff().long())
    keys = sources * 60 + targets.long()
    assert bool((keys.diff() > 0).all())  # ascending, so no synapse twice
    assert 0 <= int(targets.min()) and int(targets.max()) < 60


# ------------------------------------------------------------------ the draw
def test_the_density_is_near_p():
    torch.manual_seed(0)
    n, p = 400 * 300, 0.1
    count = len(draw_synapses(400, 300, p)[1])
    assert abs(count / n - p) < 4 * (p * (1 - p) / n) ** 0.5


def test_each_synapse_exists_independently_with_probability_p():
    """Over many draws of a 3×4 matrix: every position, the first and the last included,
    exists with frequency p, and two positions exist together with frequency p²."""
    torch.manual_seed(1)
    p, draws = 0.3, 3000
    counts, together = torch.zeros(12), 0
    for _ in range(draws):
        offsets, targets = draw_synapses(3, 4, p)
        present = torch.zeros(12)
        bounds = offsets.tolist()
        for source in range(3):
            present[source * 4 + targets[bounds[source]:bounds[source + 1]].long()] = 1
        counts += present
        together += int(present[0] * present[11] + present[5] * present[6])
    sigma = (p * (1 - p) / draws) ** 0.5
    assert ((counts / draws - p).abs() < 4.5 * sigma).all(), counts / draws
    assert abs(together / (2 * draws) - p * p) < 4.5 * (p * p / (2 * draws)) ** 0.5


@pytest.mark.parametrize("p, expected", [(0.0, 0), (1.0, 6 * 7)])
def test_p_zero_and_one_need_no_draw(p, expected):
    state = torch.random.get_rng_state()
    assert len(draw_synapses(6, 7, p)[1]) == expected
    assert torch.equal(torch.random.get_rng_state(), state)
    layer = op("sparse", (6,), (7,), p=p, w=0.5)
    assert layer.synapse_count == expected
    x = torch.rand(3, 6, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    torch.testing.assert_close(out, x.detach() @ torch.full((7, 6), 0.5 * (p == 1)).t())
    assert layer.weight.grad.shape == (expected,)


@pytest.mark.parametrize("w, check", [
    (0.25, lambda v: bool((v == 0.25).all())),
    (Uniform(2.0, 3.0), lambda v: bool(((v >= 2) & (v <= 3)).all()) and v.std() > 0.2),
    (Normal(-1.0, 0.5), lambda v: abs(v.mean() + 1) < 0.1 and abs(v.std() - 0.5) < 0.1),
])
def test_the_initialiser_fills_the_existing_synapses(w, check):
    torch.manual_seed(0)
    assert check(op("sparse", (60,), (50,), p=0.2, w=w).weight.detach())


# ------------------------------------------------------------------ networks
def build(tmp_path, body: str, name: str = "s") -> type:
    path = tmp_path / f"{name}.snn"
    path.write_text(net(body, name))
    return snnc_compile(path)


LOOP = ("seed = {seed}\nsteps = 12\ninput i[20]\n"
        "population p[30] = LIF(v_threshold = 0.4)\npopulation q[25] = LIF(v_threshold = 0.4)\n"
        "connect i -> p : sparse(p = 0.4, w = uniform(0, 0.8))\n"
        "connect p -> q : sparse(p = 0.3, w = uniform(0, 1)){delay}\n"
        "{loop}monitor p.spikes, q.spikes")
BACK = "connect q -> p : sparse(p = 0.2, w = normal(0, 0.4)) delay 1\n"


def loop_net(tmp_path, recurrent: bool, delay: str = "", seed: int = 4) -> nn.Module:
    body = LOOP.format(seed=seed, delay=delay, loop=BACK if recurrent else "")
    return build(tmp_path, body, f"loop{int(recurrent)}{seed}")()


def with_dense_masks(model: nn.Module) -> nn.Module:
    """The same network with each sparse op replaced by its dense-with-mask reference
    (per-synapse delays: a dense SynapseDelays whose delays sit where the synapses do)."""
    for conn in model.connections.values():
        layer = conn.ops[0]
        if isinstance(layer, SparseLinear):
            conn.ops[0] = DenseMasked(layer)
        elif isinstance(layer, SynapseDelays):
            inner = layer.inner
            delayed = op("dense", (inner.in_features,), (inner.out_features,),
                         delays=(layer.low, layer.high), bias=False)
            with torch.no_grad():
                delayed.inner.weight.copy_(dense_reference(inner))
                delayed.delays.copy_(inner.dense_weight(layer.delays.to(inner.weight.dtype))
                                     .round().long().clamp(min=layer.low))
            conn.ops[0] = delayed
    return model


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: conn.weight for name, conn in model.connections.items()}


@pytest.mark.parametrize("recurrent", [False, True], ids=["layer mode", "step mode"])
@pytest.mark.parametrize("delay", ["", " delay uniform(1, 3)"], ids=["", "per-synapse delays"])
def test_a_network_runs_as_with_dense_masks(tmp_path, recurrent, delay):
    model = loop_net(tmp_path, recurrent, delay)
    reference = with_dense_masks(loop_net(tmp_path, recurrent, delay))
    x = (torch.rand(12, 2, 20, generator=torch.Generator().manual_seed(0)) * 1.5)
    x.requires_grad_()
    model(x), reference(x)
    got, expected = (torch.cat([m.monitors["p.spikes"], m.monitors["q.spikes"]], -1)
                     for m in (model, reference))
    assert torch.equal(got, expected)
    assert model.monitors["q.spikes"].sum() > 0
    loss_weights = torch.randn_like(got)
    grads = torch.autograd.grad((got * loss_weights).sum(), [x, *weights(model).values()])
    ref_grads = torch.autograd.grad((expected * loss_weights).sum(),
                                    [x, *weights(reference).values()])
    torch.testing.assert_close(grads[0], ref_grads[0])
    for conn, grad, ref in zip(model.connections.values(), grads[1:], ref_grads[1:],
                               strict=True):
        layer = getattr(conn.ops[0], "inner", conn.ops[0])
        torch.testing.assert_close(layer.dense_weight(grad), ref * (dense_reference(layer) != 0))
    assert all(g.abs().sum() > 0 for g in grads[1:])


def test_the_same_seed_draws_the_same_synapses_and_another_seed_others(tmp_path):
    a, b, c = (loop_net(tmp_path, True, seed=s) for s in (4, 4, 5))
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.connection("p->q").ops[0].targets[:50],
                           c.connection("p->q").ops[0].targets[:50])


@pytest.mark.parametrize("delay", ["", " delay uniform(1, 3)"])
def test_the_state_dict_round_trips_into_a_network_of_another_draw(tmp_path, delay):
    source, fresh = loop_net(tmp_path, True, delay, seed=4), loop_net(tmp_path, True, delay,
                                                                       seed=9)
    state = source.state_dict()
    assert not any(key.endswith("mask") for key in state)
    assert any(v.shape != fresh.state_dict()[k].shape for k, v in state.items())
    fresh.load_state_dict(state)
    x = torch.rand(12, 2, 20, generator=torch.Generator().manual_seed(2)) * 1.5
    source(x)
    fresh(x)
    assert torch.equal(source.monitors["q.spikes"], fresh.monitors["q.spikes"])
    assert source.monitors["q.spikes"].sum() > 0


def test_cuba_state_dict_is_small():
    from conftest import ROOT
    model = snnc_compile(ROOT / "samples" / "cuba.snn", backend="softbp")()
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    synapses = sum(conn.ops[0].synapse_count for conn in model.connections.values())
    assert abs(synapses - 0.02 * 4000 ** 2) < 4 * (0.02 * 4000 ** 2) ** 0.5
    assert size < 4 * 2**20


# ------------------------------------------------------------------ the memory budget
def test_the_budget_counts_what_the_layer_keeps(tmp_path):
    path = tmp_path / "kept.snn"
    path.write_text(net("input i[300]\npopulation p[200] = LIF\n"
                        "connect i -> p : sparse(p = 0.1)", "kept"))
    [network] = check_program(load(path))
    layer = snnc_compile(path)().connection("i->p").ops[0]
    assert "by_target" not in dict(layer.named_buffers())  # made at its first use, counted
    layer.target_index()
    kept = sum(t.numel() * t.element_size() for t in [*layer.parameters(), *layer.buffers()])
    states = sum(p.state_bytes() for p in network.populations)
    per_synapse = budget.VALUE + budget.SPARSE_INDEXES * 4  # the estimate's p × in × out
    assert estimate_memory(network).kept == \
        kept + states + per_synapse * (round(0.1 * 300 * 200) - layer.synapse_count)


def test_the_budget_and_the_runtime_agree_on_the_event_limits():
    assert budget.SPARSE_EVENT_DENSITY == sparse.EVENT_DENSITY
    assert budget.SPARSE_MAX_EVENTS == sparse.MAX_EVENT_SYNAPSES
