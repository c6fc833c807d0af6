"""The runtime that generated code calls: ops, encoders, readouts, surrogates."""
from __future__ import annotations

import math

import pytest
import torch

from conftest import net
from snnc.compiler import compile as snnc_compile
from snnc.registry import OPS, SOFTBP
from snnc.runtime import encoders, readouts
from snnc.runtime.factory import _BUILDERS
from snnc.runtime.layers import dct_matrix
from snnc.runtime.surrogates import GRADIENTS, spike


def test_the_runtime_builds_every_op_the_registry_says_softbp_runs():
    assert {name for name, op in OPS.items() if SOFTBP in op.backends} == set(_BUILDERS)


@pytest.mark.parametrize("source, target, pipeline", [
    ("[64]", "[32]", "dense(bias = true, w = uniform(-0.1, 0.1))"),
    ("[64]", "[32]", "sparse(p = 0.5)"),
    ("[64]", "[64]", "one_to_one(w = 0.5)"),
    ("[2, 16]", "[4, 16]", "conv1d(k = 3, pad = 1)"),
    ("[2, 8, 8]", "[4, 4, 4]", "conv2d | avgpool(2)"),
    ("[2, 8, 8]", "[2, 4, 4]", "maxpool(2) | batchnorm"),
    ("[8, 4]", "[4, 4]", "channel_maxpool(2)"),
    ("[2, 8, 8]", "[2, 8, 8]", "dct(4) | scale(0.5) | noise(0.1)"),
    ("[3, 6, 6]", "[3, 4, 4]", "axat"),
    ("[2, 3, 3]", "[18]", "flatten | dropout(0.3)"),
])
def test_every_op_runs_forward_and_backward(tmp_path, source, target, pipeline):
    path = tmp_path / "op.snn"
    path.write_text(net(f"steps = 3\ninput i{source}\npopulation p{target} = LIF(tau = 1.5)\n"
                        f"connect i -> p : {pipeline}", "op"))
    model = snnc_compile(path)()
    shape = tuple(int(d) for d in source.strip("[]").split(","))
    x = (torch.rand(2, *shape) * 4).requires_grad_()
    spikes = model(x)
    target_shape = tuple(int(d) for d in target.strip("[]").split(","))
    assert spikes.shape == (3, 2, *target_shape)
    spikes.sum().backward()
    assert x.grad is not None


def test_sparse_mask_density_and_seed_reproducibility(tmp_path):
    path = tmp_path / "s.snn"
    path.write_text(net("seed = 7\ninput i[400]\npopulation p[300] = LIF\n"
                        "connect i -> p : sparse(p = 0.1)", "s"))
    Net = snnc_compile(path)
    a, b = Net(), Net()
    layer = a.connection("i->p").ops[0]  # stores only the synapses that exist
    assert abs(layer.synapse_count / (400 * 300) - 0.1) < 0.01
    assert torch.equal(a.connection("i->p").weight, b.connection("i->p").weight)
    assert torch.equal(layer.targets, b.connection("i->p").ops[0].targets)


def test_dct_matrix_is_orthonormal_blockwise():
    d = dct_matrix(8, 4).double()
    torch.testing.assert_close(d @ d.t(), torch.eye(8, dtype=torch.float64), atol=1e-6,
                               rtol=0)
    assert torch.count_nonzero(d[:4, 4:]) == 0


def test_latency_encoder_fires_once_earlier_for_larger_values():
    x = torch.tensor([[1.0, 0.5, 0.0]]).expand(10, 1, 3)
    out = encoders.Latency(t_max=5)(x, 10, 1, x)
    assert out.sum(0).tolist() == [[1.0, 1.0, 1.0]]
    assert out.argmax(0).tolist() == [[0, 2, 4]]


def test_periodic_encoder_replays_its_pattern():
    pattern = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])   # [B=1, P=3, 2]
    x = pattern.unsqueeze(0).expand(7, *pattern.shape)
    out = encoders.Periodic()(x, 7, 1, x)
    assert out.shape == (7, 1, 2)
    assert torch.equal(out[3], pattern[:, 0]) and torch.equal(out[5], pattern[:, 2])


def test_poisson_encoder_rate():
    torch.manual_seed(0)
    x = torch.full((2000, 1, 4), 0.3)
    assert abs(encoders.Poisson()(x, 2000, 1, x).mean().item() - 0.3) < 0.02
    free = encoders.Poisson(rate=0.05, shape=(100,))(None, 500, 2, x)
    assert free.shape == (500, 2, 100) and abs(free.mean().item() - 0.05) < 0.005


def test_readouts():
    s = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]).view(3, 1, 2)
    assert readouts.rate(s).tolist() == [[pytest.approx(1 / 3), pytest.approx(2 / 3)]]
    assert readouts.count(s).tolist() == [[1.0, 2.0]]
    assert readouts.first_spike(s).tolist() == [[1.0, 0.0]]
    assert readouts.first_spike(torch.zeros(4, 1, 1)).tolist() == [[4.0]]


SMOOTH_PRIMITIVES = {
    # name: (params, the smooth step whose derivative the surrogate is)
    "sigmoid": ((4.0,), lambda x: torch.sigmoid(4.0 * x)),
    "atan": ((2.0,), lambda x: torch.atan(math.pi / 2 * 2.0 * x) / math.pi + 0.5),
    # Darabi et al.'s SignSwish 2 sigmoid(bx) (1 + bx (1 - sigmoid(bx))) - 1, a smooth sign():
    # it rises by 2, not 1, so its derivative is 5.0 at x = 0 (not the Heaviside's unit area)
    "sign_swish": ((5.0,), lambda x: 2 * torch.sigmoid(5.0 * x)
                   * (1 + 5.0 * x * (1 - torch.sigmoid(5.0 * x))) - 1),
}

# multiples of 1/8 are exact in binary, so the window edges (+-0.25, +-0.5) are hit exactly
GRID = [k / 8 for k in range(-16, 17)]


def spike_and_gradient(name: str, params: tuple, xs) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    y = spike(x, name, *params)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), grad


@pytest.mark.parametrize("name, params", [("sigmoid", (4.0,)), ("atan", (2.0,)),
                                          ("piecewise", (1.0, 0.01, 0.5)),
                                          ("sign_swish", (5.0,)), ("rect", (1.0,))])
def test_spike_forward_is_heaviside_with_one_at_zero(name, params):
    y, _ = spike_and_gradient(name, params, [-1.0, -1e-300, -0.0, 0.0, 1e-300, 1.0])
    assert y.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("name", list(SMOOTH_PRIMITIVES))
def test_smooth_surrogates_are_the_derivative_of_their_primitive(name):
    params, primitive = SMOOTH_PRIMITIVES[name]
    _, grad = spike_and_gradient(name, params, GRID)
    x = torch.tensor(GRID, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(primitive(x).sum(), x)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


def piecewise_slope(x: float, a: float, b: float, c: float) -> float:
    return a if -c <= x <= c else b          # the window's edges belong to the window


def rect_height(x: float, width: float) -> float:
    return 1 / width if -width / 2 < x < width / 2 else 0.0   # its edges do not


@pytest.mark.parametrize("name, params, closed_form", [
    ("piecewise", (2.0, 0.05, 0.25), piecewise_slope),
    ("piecewise", (1.0, 0.0, 0.5), piecewise_slope),
    ("rect", (0.5,), rect_height),
    ("rect", (1.0,), rect_height),
])
def test_piecewise_constant_surrogates_match_their_closed_form(name, params, closed_form):
    _, grad = spike_and_gradient(name, params, GRID)
    assert grad.tolist() == [closed_form(x, *params) for x in GRID]


def test_piecewise_constant_surrogates_at_the_window_edges():
    _, piecewise = spike_and_gradient("piecewise", (2.0, 0.05, 0.25), [-0.25, 0.25, 0.375])
    assert piecewise.tolist() == [2.0, 2.0, 0.05]
    _, rect = spike_and_gradient("rect", (0.5,), [-0.25, -0.125, 0.25])
    assert rect.tolist() == [0.0, 2.0, 0.0]


@pytest.fixture
def sj_surrogate():
    return pytest.importorskip("spikingjelly.activation_based.surrogate")


@pytest.mark.parametrize("name, params, theirs, xs", [
    ("sigmoid", (4.0,), lambda sj: sj.Sigmoid(alpha=4.0), GRID),
    ("atan", (2.0,), lambda sj: sj.ATan(alpha=2.0), GRID),
    ("rect", (0.5,), lambda sj: sj.Rect(alpha=2.0), GRID),
    # PiecewiseLeakyReLU(w, c) is piecewise(a = 1 / 2w, b = c, c = w); its code tests |x| < w
    # where its documentation (and snnc) says |x| <= w, so the edges +-w are left out here
    ("piecewise", (2.0, 0.05, 0.25), lambda sj: sj.PiecewiseLeakyReLU(w=0.25, c=0.05),
     [x for x in GRID if abs(x) != 0.25]),
])
def test_surrogates_match_spikingjelly(sj_surrogate, name, params, theirs, xs):
    y, grad = spike_and_gradient(name, params, xs)
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    ref = theirs(sj_surrogate)(x)
    (ref_grad,) = torch.autograd.grad(ref.sum(), x)
    assert torch.equal(y, ref.detach())
    torch.testing.assert_close(grad, ref_grad, rtol=1e-12, atol=1e-12)


def test_surrogate_formulas_at_zero():
    zero = torch.zeros(1, dtype=torch.float64)
    assert GRADIENTS["sigmoid"](zero, 4.0).item() == pytest.approx(1.0)
    assert GRADIENTS["atan"](zero, 2.0).item() == pytest.approx(1.0)
    assert GRADIENTS["sign_swish"](zero, 5.0).item() == pytest.approx(5.0)
    assert GRADIENTS["rect"](zero, 0.5).item() == pytest.approx(2.0)
    grad = GRADIENTS["piecewise"](torch.tensor([0.2, 0.9], dtype=torch.float64), 1.0, 0.01, 0.5)
    assert grad.tolist() == [1.0, 0.01]
    assert GRADIENTS["atan"](torch.tensor([1.0]), 2.0).item() == pytest.approx(
        1.0 / (1 + math.pi ** 2), rel=1e-6)


def _run_synapse_net(tmp_path, recurrent: bool) -> dict:
    loop = "connect b -> c as loop : scale(0.0) delay 1\n" if recurrent else ""
    path = tmp_path / f"syn{recurrent}.snn"
    path.write_text(net("steps = 10\ninput i[6]\npopulation a[6] = IF(v_threshold = 0.5)\n"
                        "population b[6] = IF\npopulation c[6] = IF(v_threshold = 0.3)\n"
                        "connect i -> a\nconnect a -> b : dense(w = 0.4) delay 2 via "
                        "exp_current(tau = 3.0)\nconnect a -> c : one_to_one(w = 0.8) via "
                        "stp(v_base = 0.3, tau_f = 20, tau_d = 5)\n"
                        "connect b -> c as bc via filter(tau = 4.0)\n" + loop
                        + "monitor a.spikes, b.spikes, c.spikes", "syn"))
    model = snnc_compile(path)()
    x = torch.rand(10, 2, 6, generator=torch.Generator().manual_seed(0))
    model(x)
    return model.monitors


def test_layer_and_step_mode_give_the_same_spikes(tmp_path):
    """The same connections, run layer by layer and (with a harmless delayed loop) step by
    step, give the same spikes: delays, synapse state and STP are carried the same way."""
    layer = _run_synapse_net(tmp_path, False)
    step = _run_synapse_net(tmp_path, True)
    for key in ("a.spikes", "b.spikes", "c.spikes"):
        assert torch.equal(layer[key], step[key]), key
    assert layer["c.spikes"].sum() > 0


def test_per_synapse_delays_deliver_each_spike_after_its_own_delay(tmp_path):
    path = tmp_path / "d.snn"
    path.write_text(net("seed = 3\nsteps = 9\ninput i[5]\npopulation p[4] = IF(v_threshold = 100)\n"
                        "connect i -> p : dense(w = uniform(0, 1)) delay uniform(1, 3)\n"
                        "monitor p.v", "d"))
    model = snnc_compile(path)()
    x = (torch.rand(9, 2, 5, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    model(x)
    op = model.connection("i->p").ops[0]
    assert set(op.delays.unique().tolist()) <= {1, 2, 3} and op.delays.unique().numel() > 1
    # IF without a spike integrates its input: v(t) = sum over s <= t of the current at s
    expected = torch.zeros(9, 2, 4)
    for t in range(9):
        for d in (1, 2, 3):
            if t - d >= 0:
                expected[t] += x[t - d] @ (op.weight * (op.delays == d)).t()
    torch.testing.assert_close(model.monitors["p.v"], expected.cumsum(0))


def test_per_synapse_delays_need_a_dense_sparse_or_one_to_one_op(tmp_path):
    from snnc.compiler import generate
    from snnc.errors import SnnError
    path = tmp_path / "bad.snn"
    path.write_text(net("input i[2, 8]\npopulation p[4, 8] = IF\n"
                        "connect i -> p : conv1d(k = 3, pad = 1) delay uniform(1, 3)"))
    with pytest.raises(SnnError) as info:
        generate(path)
    assert info.value.message.startswith("per-synapse delays need")
