"""snnc.layers: SpikingJelly's and SpikingFlow's layers, in both step modes, with the
memory API; the language's ops of the same names are these classes."""
from __future__ import annotations

import math

import pytest
import torch

from conftest import net
from snnc import layers
from snnc.compiler import compile as snnc_compile
from snnc.functional import reset_net

T, B = 6, 3


def seq(*shape, seed=0, spikes=False):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (x > 0.6).to(x.dtype) if spikes else x


def step_by_step(layer, x):
    """`layer` in "s" mode over the steps of x, one call each."""
    layer.step_mode = "s"
    return torch.stack([layer(step) for step in x])


def in_chunks(layer, x, cut):
    """`layer` in "m" mode over x in two calls, split at step `cut`."""
    layer.step_mode = "m"
    return torch.cat([layer(x[:cut]), layer(x[cut:])])


def stateful_layers():
    return {
        "Dropout": lambda: layers.Dropout(0.4),
        "Dropout2d": lambda: layers.Dropout2d(0.5),
        "SynapseFilter": lambda: layers.SynapseFilter(4.0),
        "SynapseFilter learnable": lambda: layers.SynapseFilter(4.0, learnable=True),
        "NeuNorm": lambda: layers.NeuNorm(4, 2, 3).double(),
        "Delay": lambda: layers.Delay(2),
    }


# [T, B, C, H, W]: what every stateful layer takes (NeuNorm's C, H, W are 4, 2, 3)
SPIKES = seq(T, B, 4, 2, 3, spikes=True)


# ------------------------------------------------------------------ dropout
def test_dropout_holds_its_mask_until_reset_and_scales_what_it_keeps():
    torch.manual_seed(0)
    drop = layers.Dropout(0.5)
    x = torch.ones(T, B, 40)
    out = torch.stack([drop(step) for step in x])
    assert torch.equal(out, out[:1].expand_as(out))       # one mask for every step
    assert set(out.unique().tolist()) == {0.0, 2.0}       # kept: scaled by 1 / (1 - p)
    assert 0 < (out[0] == 0).sum() < out[0].numel()
    first = out[0].clone()
    assert torch.equal(drop(x[0]), first)
    drop.reset()
    assert not torch.equal(drop(x[0]), first)             # a new run draws a new mask


def test_dropout_is_the_identity_in_eval_mode():
    drop = layers.Dropout(0.9, step_mode="m").eval()
    x = seq(T, B, 5)
    assert torch.equal(drop(x), x)
    assert list(drop.named_memories()) == []


def test_dropout2d_drops_whole_channels():
    torch.manual_seed(1)
    drop = layers.Dropout2d(0.5, step_mode="m")
    out = drop(torch.ones(T, B, 8, 4, 4))
    per_channel = out.flatten(3)                          # [T, B, C, H·W]
    assert torch.equal(per_channel, per_channel[..., :1].expand_as(per_channel))
    assert set(per_channel[..., 0].unique().tolist()) == {0.0, 2.0}
    assert drop.keep.shape == (B, 8, 1, 1)


def test_dropout_refuses_p_outside_0_1():
    with pytest.raises(ValueError, match="p must lie in"):
        layers.Dropout(1.0)


# ------------------------------------------------------------------ delay
@pytest.mark.parametrize("d", [0, 1, 3, T + 2])
def test_delay_shifts_by_d_steps_with_zeros_before(d):
    x = seq(T, B, 4)
    expected = torch.cat([torch.zeros(min(d, T), B, 4, dtype=x.dtype), x[:max(T - d, 0)]])
    assert torch.equal(layers.Delay(d, step_mode="m")(x), expected)
    assert torch.equal(step_by_step(layers.Delay(d), x), expected)
    assert torch.equal(in_chunks(layers.Delay(d), x, 2), expected)


def test_delay_refuses_a_negative_or_fractional_delay():
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="delay_steps"):
            layers.Delay(bad)


# ------------------------------------------------------------------ synapse filter
def filtered(x, tau):
    """I[t] = I[t-1] (1 - 1/tau) where no spike arrives, I[t-1] + 1 where one does."""
    current, out = torch.zeros_like(x[0]), []
    for s in x:
        current = torch.where(s > 0, current + s, current * (1 - 1 / tau))
        out.append(current)
    return torch.stack(out)


def test_synapse_filter_is_the_low_pass_recurrence():
    x = seq(T, B, 5, spikes=True)
    layer = layers.SynapseFilter(tau=3.0, step_mode="m").double()
    torch.testing.assert_close(layer(x), filtered(x, 3.0), rtol=1e-12, atol=1e-12)
    layer = layers.SynapseFilter(tau=3.0, learnable=True, step_mode="m").double()
    tau = 1 / torch.sigmoid(layer.w.detach())     # w is float32 -log(2): tau near 3
    assert tau.item() == pytest.approx(3.0, rel=1e-6)
    torch.testing.assert_close(layer(x), filtered(x, tau), rtol=1e-12, atol=1e-12)
    assert layers.LowPassSynapse is layers.SynapseFilter


def test_a_learnable_synapse_filter_learns_w_from_minus_log_tau_minus_one():
    layer = layers.SynapseFilter(tau=5.0, learnable=True, step_mode="m")
    assert layer.w.item() == pytest.approx(-math.log(4.0))
    assert "w" in dict(layer.named_parameters())
    layer(seq(T, B, 5, spikes=True).float()).sum().backward()
    assert layer.w.grad is not None and layer.w.grad != 0
    assert list(layers.SynapseFilter(5.0).parameters()) == []


def test_synapse_filter_refuses_tau_of_at_most_one_step():
    with pytest.raises(ValueError, match="tau"):
        layers.SynapseFilter(tau=1.0)


FILTER_NET = """steps = {T}
input i[5]
population a[5] = IF
population b[5] = IF
connect i -> a
connect a -> b via filter(tau = 4.0, learnable = {learnable})
monitor a.spikes
monitor b.v"""


@pytest.mark.parametrize("learnable", [False, True])
def test_synapse_filter_runs_the_step_a_built_via_filter_connection_runs(tmp_path,
                                                                         learnable):
    path = tmp_path / "f.snn"
    path.write_text(net(FILTER_NET.format(T=T, learnable=str(learnable).lower()), "f"))
    built = snnc_compile(path)().double()
    built(seq(T, B, 5) * 1.5)
    a = built.monitors["a.spikes"]
    assert 0 < a.sum() < a.numel()
    ours = layers.SynapseFilter(4.0, learnable=learnable, step_mode="m").double()
    theirs = built.connection("a->b").synapse
    theirs.reset()                                  # its states are the run's end
    current = ours(a)
    assert torch.equal(current, theirs(a))
    # b is IF: v += the current, back to 0 where it reaches 1 (the monitor sees v after)
    v, expected = torch.zeros_like(a[0]), []
    for i in current:
        v = v + i
        v = torch.where(v >= 1.0, torch.zeros_like(v), v)
        expected.append(v)
    assert torch.equal(built.monitors["b.v"], torch.stack(expected))


# ------------------------------------------------------------------ NeuNorm
def test_neunorm_is_the_papers_auxiliary_neuron():
    layer = layers.NeuNorm(4, 2, 3, k=0.8, step_mode="m").double()
    x = seq(T, B, 4, 2, 3, spikes=True)
    aux, expected = torch.zeros(B, 1, 2, 3, dtype=x.dtype), []
    for t in range(T):
        aux = 0.8 * aux + 0.2 / 16 * x[t].sum(1, keepdim=True)   # (1 - k) / C² Σ_c X
        expected.append(x[t] - layer.w * aux)
    torch.testing.assert_close(layer(x), torch.stack(expected), rtol=1e-12, atol=1e-12)
    assert layer.w.shape == (4, 2, 3)
    assert layers.NeuNorm(4, 2, 3, shared_across_channels=True).w.shape == (1, 2, 3)


# ------------------------------------------------------------------ stateless layers
def test_voting_layer_averages_groups_of_k():
    x = torch.arange(12.0).view(2, 6)
    assert layers.VotingLayer(3)(x).tolist() == [[1.0, 4.0], [7.0, 10.0]]
    m = layers.VotingLayer(2, step_mode="m")(seq(T, B, 8))
    torch.testing.assert_close(m, seq(T, B, 8).view(T, B, 4, 2).mean(-1))


def test_dct_of_a_constant_block_is_all_dc_and_the_transform_is_orthonormal():
    dct = layers.DCT(4)
    out = dct(torch.full((8, 8), 2.0, dtype=torch.float64))
    for r in (0, 4):
        for c in (0, 4):
            block = out[r:r + 4, c:c + 4]
            assert block[0, 0].item() == pytest.approx(8.0)   # 2 · 4 (orthonormal: n · mean)
            block[0, 0] = 0
            assert block.abs().max() < 1e-12
    x = seq(2, 8, 8)
    a = dct._basis(8, x)
    torch.testing.assert_close(a @ a.t(), torch.eye(8, dtype=x.dtype), rtol=0, atol=1e-12)
    torch.testing.assert_close(a.t() @ dct(x) @ a, x, rtol=0, atol=1e-12)   # inverse = Aᵀ
    with pytest.raises(ValueError, match="multiples"):
        dct(torch.zeros(6, 8))


def test_axat_is_a_x_a_transposed():
    layer = layers.AXAT(5, 3).double()
    x = seq(T, B, 2, 5, 5)
    out = layers.AXAT(5, 3, step_mode="m").double()
    out.load_state_dict(layer.state_dict())
    expected = torch.einsum("oi,...ij,pj->...op", layer.weight, x, layer.weight)
    torch.testing.assert_close(layer(x[0]), expected[0])
    torch.testing.assert_close(out(x), expected)


def test_channels_max_pool_is_the_max_over_channel_groups():
    x = seq(B, 6, 4, 4)
    expected = x.view(B, 3, 2, 4, 4).amax(2)
    assert torch.equal(layers.ChannelsMaxPool(2)(x), expected)
    pooled = layers.ChannelsMaxPool(torch.nn.MaxPool1d(2), step_mode="m")(x.expand(T, *x.shape))
    assert torch.equal(pooled, expected.expand(T, *expected.shape))


def test_print_shape_prints_and_returns_its_input(capsys):
    x = seq(T, B, 4)
    assert layers.PrintShape("here")(x) is x
    assert capsys.readouterr().out == "here torch.Size([6, 3, 4])\n"
    assert layers.PrintShapeModule is layers.PrintShape


def test_a_step_mode_other_than_s_or_m_is_refused():
    for make in (lambda: layers.Delay(1, step_mode="x"),
                 lambda: layers.SynapseFilter(step_mode="multi"),
                 lambda: layers.VotingLayer(step_mode="")):
        with pytest.raises(ValueError, match="step_mode"):
            make()


# ------------------------------------------------------------------ both modes, memories
@pytest.mark.parametrize("name", list(stateful_layers()))
def test_one_step_at_a_time_a_whole_sequence_and_chunks_agree(name):
    x = SPIKES
    make = stateful_layers()[name]
    torch.manual_seed(2)
    ref = make().double()
    ref.step_mode = "m"
    whole = ref(x)
    for run in (step_by_step, lambda layer, x: in_chunks(layer, x, 4)):
        torch.manual_seed(2)
        torch.testing.assert_close(run(make().double(), x), whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(stateful_layers()))
def test_stateful_layers_offer_the_memory_api_and_reset_net_resets_them(name):
    layer = stateful_layers()[name]().double()
    layer.step_mode = "m"
    x = SPIKES.clone().requires_grad_()
    assert list(layer.named_memories()) == []
    torch.manual_seed(3)
    out = layer(x * 1.0)
    names = [n for n, _ in layer.named_memories()]
    assert names and len(list(layer.memories())) == len(names)
    if "Dropout" not in name:                           # a mask is no function of x
        assert any(m.requires_grad for m in layer.memories())
    layer.detach()
    assert not any(m.requires_grad for m in layer.memories())
    reset_net(torch.nn.Sequential(layer))
    assert list(layer.named_memories()) == []
    torch.manual_seed(3)
    torch.testing.assert_close(layer(x), out)           # a fresh run: the first output again


# ------------------------------------------------------------------ the language's ops
def test_the_languages_ops_are_the_library_classes(tmp_path):
    path = tmp_path / "ops.snn"
    path.write_text(net("steps = 2\ninput i[4, 8, 8]\npopulation p[2, 4, 4] = LIF\n"
                        "connect i -> p : dct(4) | channel_maxpool(2) | axat(out = 4) "
                        "| dropout(0.3)", "ops"))
    ops = snnc_compile(path)().connection("i->p").ops
    for op, cls in zip(ops, (layers.DCT, layers.ChannelsMaxPool, layers.AXAT,
                             layers.Dropout), strict=True):
        assert isinstance(op, cls)


def test_voting_readout_and_voting_layer_agree(tmp_path):
    path = tmp_path / "v.snn"
    path.write_text(net(f"steps = {T}\ninput i[6]\npopulation o[6] = IF\nconnect i -> o\n"
                        "monitor o.spikes\nreadout o = voting(3)", "v"))
    built = snnc_compile(path)()
    out = built(seq(T, B, 6).float() * 1.5)
    rate = built.monitors["o.spikes"].mean(0)
    assert torch.equal(out, layers.VotingLayer(3)(rate))


# ------------------------------------------------------------------ against SpikingJelly
def sj_layer():
    return pytest.importorskip("spikingjelly.activation_based.layer")


def test_synapse_filter_matches_spikingjelly():
    sj = sj_layer()
    x = seq(T, B, 5, spikes=True)
    for learnable in (False, True):
        ours = layers.SynapseFilter(7.0, learnable, step_mode="m").double()
        theirs = sj.SynapseFilter(7.0, learnable, step_mode="m").double()
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)


def test_neunorm_matches_spikingjelly():
    sj = sj_layer()
    x = seq(T, B, 4, 2, 3, spikes=True)
    for shared in (False, True):
        ours = layers.NeuNorm(4, 2, 3, 0.7, shared, step_mode="m").double()
        theirs = sj.NeuNorm(4, 2, 3, 0.7, shared, step_mode="m").double()
        with torch.no_grad():
            ours.w.copy_(theirs.w)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d", [0, 2])
def test_delay_matches_spikingjelly(d):
    sj = sj_layer()
    x = seq(T, B, 4)
    assert torch.equal(layers.Delay(d, step_mode="m")(x), sj.Delay(d, step_mode="m")(x))
    theirs = sj.Delay(d)
    assert torch.equal(step_by_step(layers.Delay(d), x), torch.stack([theirs(s) for s in x]))


def test_voting_layer_matches_spikingjelly():
    sj = sj_layer()
    x = seq(T, B, 12)
    assert torch.equal(layers.VotingLayer(4, step_mode="m")(x),
                       sj.VotingLayer(4, step_mode="m")(x))


@pytest.mark.parametrize("cls", ["Dropout", "Dropout2d"])
def test_dropout_masks_match_spikingjellys_from_the_same_seed(cls):
    sj = sj_layer()
    x = torch.rand(T, B, 4, 5, 5)
    torch.manual_seed(4)
    ours = getattr(layers, cls)(0.3, step_mode="m")(x)
    torch.manual_seed(4)
    theirs = getattr(sj, cls)(0.3, step_mode="m")(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)
