"""snnc.functional: the seed's SpikingFlow.softbp.functional (seed 003) and its Tempotron
loss: the seed's printed examples, hand-computed cases, gradients and refusals."""
from __future__ import annotations

import ast
import math
import re

import pytest
import torch
from torch import nn

from conftest import net
from snnc import functional
from snnc.compiler import compile as snnc_compile
from snnc.functional import (
    first_spike_index,
    first_spike_time,
    kernel_dot_product,
    redundant_one_hot,
    reset_net,
    set_threshold_margin,
    spike_cluster,
    spike_similar_loss,
    tempotron_mse_loss,
)


def printed(text: str) -> torch.Tensor:
    """A tensor from its printed form in the seed's text (`tensor([[1., 0.], ...])`)."""
    body = re.fullmatch(r"\s*tensor\((.*)\)\s*", text, re.S).group(1)
    return torch.tensor(ast.literal_eval(body))


def same_print(tensor: torch.Tensor, text: str) -> bool:
    """str(tensor) is the seed's printed text, up to whitespace (the docs lose indentation)."""
    return re.sub(r"\s+", " ", str(tensor)).strip() == re.sub(r"\s+", " ", text).strip()


# ---- the seed's printed examples -------------------------------------------------

# redundant_one_hot, seed 003 (>>> labels / >>> codes)
SEED_LABELS = "tensor([0, 1, 1, 0])"
SEED_CODES = """tensor([[1., 1., 0., 0., 0., 0.],
        [0., 0., 1., 1., 0., 0.],
        [0., 0., 1., 1., 0., 0.],
        [1., 1., 0., 0., 0., 0.]])"""

# first_spike_index, seed 003 (>>> spikes / >>> first_spike_index(spikes))
SEED_SPIKES = """tensor([[[0., 0., 0., 0., 0., 0., 0., 0.],
 [1., 0., 0., 0., 0., 0., 1., 0.],
 [0., 1., 0., 0., 0., 1., 0., 1.]],

[[0., 0., 1., 1., 0., 0., 0., 1.],
 [1., 1., 0., 0., 1., 0., 0., 0.],
 [0., 0., 0., 1., 0., 0., 0., 0.]]])"""
SEED_FIRST = """tensor([[[False, False, False, False, False, False, False, False],
 [ True, False, False, False, False, False, False, False],
 [False,  True, False, False, False, False, False, False]],

[[False, False,  True, False, False, False, False, False],
 [ True, False, False, False, False, False, False, False],
 [False, False, False,  True, False, False, False, False]]])"""


def test_redundant_one_hot_gives_the_seeds_printed_codes():
    labels = printed(SEED_LABELS)
    codes = redundant_one_hot(labels, 3, 2)
    assert same_print(codes, SEED_CODES)
    assert torch.equal(codes, printed(SEED_CODES))
    assert codes.dtype == torch.float32 and codes.shape == (4, 6)


def test_first_spike_index_gives_the_seeds_printed_index():
    index = first_spike_index(printed(SEED_SPIKES))
    assert index.dtype == torch.bool
    assert same_print(index, SEED_FIRST)
    assert torch.equal(index, printed(SEED_FIRST))


def test_the_module_docstring_lists_every_function():
    for name in functional.__all__:
        assert f"`{name}" in functional.__doc__, name
    assert set(functional.__all__) >= {
        "reset_net", "spike_cluster", "spike_similar_loss", "kernel_dot_product",
        "set_threshold_margin", "redundant_one_hot", "first_spike_index",
        "first_spike_time", "tempotron_mse_loss"}


# ---- redundant_one_hot -----------------------------------------------------------

def test_redundant_one_hot_by_hand_and_edges():
    assert torch.equal(redundant_one_hot(torch.tensor([2, 0]), 3, 3), torch.tensor(
        [[0., 0., 0., 0., 0., 0., 1., 1., 1.], [1., 1., 1., 0., 0., 0., 0., 0., 0.]]))
    # n = 1 is the plain one hot; whole-number floats are indices too
    assert torch.equal(redundant_one_hot(torch.tensor([1.0, 0.0]), 2, 1),
                       torch.tensor([[0., 1.], [1., 0.]]))
    assert redundant_one_hot(torch.zeros(0, dtype=torch.long), 4, 2).shape == (0, 8)
    for labels, classes, n in ((torch.tensor([3]), 3, 2), (torch.tensor([-1]), 3, 2),
                               (torch.tensor([[0, 1]]), 3, 2), (torch.tensor([0]), 3, 0),
                               (torch.tensor([0]), 0, 2), (torch.tensor([0.5]), 3, 2),
                               (torch.tensor([True]), 3, 2), ([0, 1], 3, 2)):
        with pytest.raises(ValueError):
            redundant_one_hot(labels, classes, n)


# ---- first_spike_index / first_spike_time ----------------------------------------

def test_first_spike_index_by_hand_and_edges():
    spikes = torch.tensor([[0., 2., 1., 0.], [0., 0., 0., 0.], [1., 1., 1., 1.]])
    assert torch.equal(first_spike_index(spikes), torch.tensor(
        [[False, True, False, False], [False] * 4, [True, False, False, False]]))
    assert torch.equal(first_spike_time(spikes), torch.tensor([1., -1., 0.]))
    assert first_spike_index(torch.zeros(2, 0)).shape == (2, 0)
    assert first_spike_index(torch.zeros(0, 5)).shape == (0, 5)


# ---- tempotron_mse_loss ----------------------------------------------------------

def test_tempotron_mse_loss_by_hand_with_its_gradient():
    # sample 0, label 0: neuron 0 below (wrong, 0.8 - 1), neuron 1 fires (wrong, 1.5 - 1)
    # sample 1, label 1: neuron 1 fires (right), neuron 0 stays below (right)
    v_max = torch.tensor([[0.8, 1.5], [0.1, 1.2]], requires_grad=True)
    loss = tempotron_mse_loss(v_max, torch.tensor([0, 1]), 2)
    assert loss.item() == pytest.approx((0.04 + 0.25) / 2)
    loss.backward()
    torch.testing.assert_close(v_max.grad, torch.tensor([[-0.2, 0.5], [0.0, 0.0]]))


def test_tempotron_mse_loss_refuses_wrong_shapes_and_labels():
    v_max = torch.zeros(2, 3)
    for label, classes in ((torch.tensor([0, 1]), 4), (torch.tensor([0]), 3),
                           (torch.tensor([[0, 1]]), 3), (torch.tensor([0, 3]), 3),
                           (torch.tensor([-1, 0]), 3)):
        with pytest.raises(ValueError):
            tempotron_mse_loss(v_max, label, classes)
    with pytest.raises(ValueError):
        tempotron_mse_loss(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 3)


# ---- reset_net -------------------------------------------------------------------

class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.resets = 0

    def reset(self):
        self.resets += 1


class NotCallable(nn.Module):
    reset = 3      # not a method: left alone


def test_reset_net_calls_reset_on_every_module_that_has_one():
    inner, outer, deep = Counter(), Counter(), Counter()
    tree = nn.Sequential(nn.Linear(2, 2), outer, nn.Sequential(inner, NotCallable(),
                                                               nn.ModuleList([deep])))
    assert reset_net(tree) is None
    assert (inner.resets, outer.resets, deep.resets) == (1, 1, 1)
    root = Counter()
    root.child = Counter()
    reset_net(root)
    assert (root.resets, root.child.resets) == (1, 1)
    reset_net(nn.Linear(3, 3))          # no reset anywhere: nothing happens
    with pytest.raises(ValueError):
        reset_net(object())


def test_reset_net_resets_a_generated_network(tmp_path):
    path = tmp_path / "r.snn"
    path.write_text(net("steps = 6\ninput i[3]\npopulation p[4] = LIF(tau = 2.0)\n"
                        "connect i -> p : dense(w = 0.7)\nmonitor p.v", "r"))
    model = snnc_compile(path)()
    x = torch.rand(6, 2, 3, generator=torch.Generator().manual_seed(0))
    first = model(x)
    first_v = model.monitors["p.v"].clone()
    population = model.populations["p"]
    assert population.states is not None
    model(x)      # a second call goes on from the first's states
    assert not torch.equal(model.monitors["p.v"], first_v)
    reset_net(nn.Sequential(model))       # inside any module tree
    assert population.states is None and model.monitors == {}
    again = model(x)
    assert torch.equal(again, first) and torch.equal(model.monitors["p.v"], first_v)


# ---- set_threshold_margin --------------------------------------------------------

class Node(nn.Module):
    def __init__(self):
        super().__init__()
        self.v_threshold = 1.0


def test_set_threshold_margin_in_training_and_evaluation():
    node = Node()
    labels = torch.tensor([[0., 1., 0.], [1., 0., 0.]])
    assert set_threshold_margin(node, labels) is None
    torch.testing.assert_close(node.v_threshold,
                               torch.tensor([[0.9, 1.1, 0.9], [1.1, 0.9, 0.9]]))
    set_threshold_margin(node, labels.long(), 2.0, 0.5, 1.5)
    assert node.v_threshold.dtype == torch.float32
    assert torch.equal(node.v_threshold, torch.tensor([[0.5, 1.5, 0.5], [1.5, 0.5, 0.5]]))
    node.eval()
    set_threshold_margin(node, labels, eval_threshold=1.25)
    assert node.v_threshold == 1.25
    set_threshold_margin(node, labels)
    assert node.v_threshold == 1.0
    with pytest.raises(ValueError):
        set_threshold_margin(nn.Linear(2, 2), labels)      # no v_threshold to set
    with pytest.raises(ValueError):
        set_threshold_margin(Node(), torch.tensor([0., 1.]))


# ---- kernel_dot_product ----------------------------------------------------------

X = [[1., 2.], [0., 1.]]
Y = [[1., 0.], [1., 1.]]


def kernels(kernel, *args, x=X, y=Y):
    x = torch.tensor(x, requires_grad=True)
    y = torch.tensor(y, requires_grad=True)
    ret = kernel_dot_product(x, y, kernel, *args)
    ret.sum().backward()
    return ret, x.grad, y.grad


def test_kernel_dot_product_by_hand_with_gradients():
    # x0·y0 = 1, x0·y1 = 3, x1·y0 = 0, x1·y1 = 1
    ret, gx, gy = kernels("linear")
    assert torch.equal(ret, torch.tensor([[1., 3.], [0., 1.]]))
    assert torch.equal(gx, torch.tensor([[2., 1.], [2., 1.]]))      # the sum of y's rows
    assert torch.equal(gy, torch.tensor([[1., 3.], [1., 3.]]))      # the sum of x's rows
    assert torch.equal(kernel_dot_product(torch.tensor(X), torch.tensor(Y)), ret.detach())
    ret, gx, _ = kernels("polynomial", 2)
    assert torch.equal(ret, torch.tensor([[1., 9.], [0., 1.]]))
    # d/dx_i Σ_j (x_i·y_j)² = Σ_j 2 (x_i·y_j) y_j
    assert torch.equal(gx, torch.tensor([[8., 6.], [2., 2.]]))
    ret, gx, _ = kernels("sigmoid", 0.5)
    s = torch.sigmoid(torch.tensor([[0.5, 1.5], [0.0, 0.5]]))
    torch.testing.assert_close(ret, s)
    ds = 0.5 * s * (1 - s)         # α σ'(α x·y)
    torch.testing.assert_close(gx, torch.stack([ds[0, 0] * torch.tensor([1., 0.])
                                                + ds[0, 1] * torch.tensor([1., 1.]),
                                                ds[1, 0] * torch.tensor([1., 0.])
                                                + ds[1, 1] * torch.tensor([1., 1.])]))
    # ||x_i - y_j||²: [[4, 1], [2, 1]]
    ret, gx, _ = kernels("gaussian", 1.0)
    torch.testing.assert_close(ret, torch.exp(-torch.tensor([[4., 1.], [2., 1.]]) / 2))
    e = math.exp
    torch.testing.assert_close(gx, torch.tensor(
        [[0.0, -2 * e(-2) - e(-0.5)], [e(-1) + e(-0.5), -e(-1)]]))
    ret, _, _ = kernels("gaussian", 2.0)
    torch.testing.assert_close(ret, torch.exp(-torch.tensor([[4., 1.], [2., 1.]]) / 8))


@pytest.mark.parametrize("kernel, args", [("linear", ()), ("polynomial", (3,)),
                                          ("sigmoid", (0.7,)), ("gaussian", (1.3,))])
def test_kernel_dot_product_gradcheck(kernel, args):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 4, generator=g, dtype=torch.double, requires_grad=True)
    y = torch.rand(5, 4, generator=g, dtype=torch.double, requires_grad=True)
    assert kernel_dot_product(x, y, kernel, *args).shape == (3, 5)
    assert torch.autograd.gradcheck(lambda a, b: kernel_dot_product(a, b, kernel, *args),
                                    (x, y))


def test_kernel_dot_product_edges_and_refusals():
    assert kernel_dot_product(torch.zeros(0, 3), torch.zeros(2, 3)).shape == (0, 2)
    assert kernel_dot_product(torch.zeros(2, 0), torch.zeros(2, 0), "gaussian", 1.0
                              ).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    a = torch.zeros(2, 3)
    for x, y, kernel, args in ((torch.zeros(3), a, "linear", ()),
                               (a, torch.zeros(2, 4), "linear", ()),
                               (a, a, "rbf", ()), (a, a, "polynomial", ()),
                               (a, a, "sigmoid", ()), (a, a, "gaussian", ()),
                               (a, a, "gaussian", (0.0,)), ([[0.0]], a, "linear", ())):
        with pytest.raises(ValueError):
            kernel_dot_product(x, y, kernel, *args)


# ---- spike_similar_loss ----------------------------------------------------------

# three samples, M = 1 neuron, T = 2: [1, 0], [1, 1] and a silent [0, 0]
SIM_SPIKES = torch.tensor([[[1., 0.]], [[1., 1.]], [[0., 0.]]])
# 0 and 1 share class 0, 1 and 2 share class 1, 0 and 2 nothing:
# sim = [[1, 1, 0], [1, 1, 1], [0, 1, 1]]
SIM_LABELS = torch.tensor([[1, 0], [1, 1], [0, 1]])
# linear sim_p (cosine, 0 for the silent train): [[1, 1/√2, 0], [1/√2, 1, 0], [0, 0, 0]]


def test_spike_similar_loss_linear_by_hand():
    r = 1 / math.sqrt(2)
    mse = spike_similar_loss(SIM_SPIKES, SIM_LABELS)
    assert mse.shape == (1,)
    assert mse.item() == pytest.approx((2 * (1 - r) ** 2 + 3) / 9)
    assert spike_similar_loss(SIM_SPIKES, SIM_LABELS, "linear", "l1").item() \
        == pytest.approx((2 * (1 - r) + 3) / 9)
    # -log(1/√2) twice, log(0) clamped at -100 for the three similar pairs sim_p misses
    assert spike_similar_loss(SIM_SPIKES, SIM_LABELS, "linear", "bce").item() \
        == pytest.approx((math.log(2) + 300) / 9)
    # any non-zero label marks the class, as 1 does
    assert spike_similar_loss(SIM_SPIKES, SIM_LABELS.float() * 3).item() == \
        pytest.approx(mse.item())


def test_spike_similar_loss_gaussian_by_hand_with_its_gradient():
    # two samples, different classes: sim = I; sim_p = [[1, k], [k, 1]], k = exp(-(a-b)²/2)
    # mse = 2 k² / 4 = exp(-(a-b)²) / 2; d/da = -(a - b) exp(-(a-b)²)
    spikes = torch.tensor([[[1.0]], [[0.0]]], requires_grad=True)
    loss = spike_similar_loss(spikes, torch.tensor([[1, 0], [0, 1]]), "gaussian", "mse", 1.0)
    assert loss.item() == pytest.approx(math.exp(-1) / 2)
    loss.sum().backward()
    torch.testing.assert_close(spikes.grad.flatten(),
                               torch.tensor([-math.exp(-1), math.exp(-1)]))
    # the same pair, the same class: sim is all ones, k = exp(-1/2): mse = 2 (1 - k)² / 4
    same = spike_similar_loss(spikes, torch.tensor([[1], [1]]), "gaussian", "mse", 1.0)
    assert same.item() == pytest.approx((1 - math.exp(-0.5)) ** 2 / 2)


def test_spike_similar_loss_sigmoid_by_hand():
    # one neuron, one step, spikes 1 and 1: x·y = 1 everywhere, sim_p = sigmoid(α)
    spikes = torch.ones(2, 1, 1)
    s = 1 / (1 + math.exp(-2.0))
    loss = spike_similar_loss(spikes, torch.tensor([[1, 0], [0, 1]]), "sigmoid", "l1", 2.0)
    assert loss.item() == pytest.approx((2 * (1 - s) + 2 * s) / 4)


@pytest.mark.parametrize("kernel, loss_type, args", [
    ("linear", "mse", ()), ("linear", "l1", ()), ("linear", "bce", ()),
    ("sigmoid", "bce", (0.3,)), ("gaussian", "mse", (2.0,)), ("gaussian", "bce", (2.0,))])
def test_spike_similar_loss_gradcheck(kernel, loss_type, args):
    g = torch.Generator().manual_seed(5)
    spikes = (0.1 + torch.rand(4, 3, 5, generator=g, dtype=torch.double)).requires_grad_()
    labels = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]])
    assert torch.autograd.gradcheck(
        lambda s: spike_similar_loss(s, labels, kernel, loss_type, *args), (spikes,))


def test_spike_similar_loss_refusals():
    spikes, labels = torch.zeros(2, 3, 4), torch.tensor([[1], [0]])
    for s, lab, kernel, loss_type, args in (
            (torch.zeros(2, 12), labels, "linear", "mse", ()),
            (spikes, torch.tensor([[1], [0], [1]]), "linear", "mse", ()),
            (spikes, torch.tensor([1, 0]), "linear", "mse", ()),
            (spikes, labels, "polynomial", "mse", (2,)),     # not in [0, 1]
            (spikes, labels, "linear", "hinge", ()),
            (torch.tensor([[[1.]], [[-1.]]]), labels, "linear", "bce", ()),   # cosine -1
            (spikes, labels, "gaussian", "mse", ()),          # σ missing
            (torch.zeros(0, 3, 4), torch.zeros(0, 1), "linear", "mse", ())):
        with pytest.raises(ValueError):
            spike_similar_loss(s, lab, kernel, loss_type, *args)


# ---- spike_cluster ---------------------------------------------------------------

def reference_clusters(v: list[float], threshold: float, t_in: int):
    """One neuron by the definition, in plain Python: (N_o, k_positive, k_negative) with
    the k's as a step or None."""
    times = [t for t, x in enumerate(v) if x >= threshold]
    clusters = []
    for t in times:
        if clusters and t - clusters[-1][-1] <= t_in:
            clusters[-1].append(t)
        else:
            clusters.append([t])
    negative = None
    if clusters:
        negative = min(clusters, key=len)[-1]      # min keeps the first of equal ones
    far = [t for t in range(len(v)) if all(abs(t - s) > t_in for s in times)]
    positive = max(far, key=lambda t: (v[t], -t)) if far else None
    return len(clusters), positive, negative


def as_steps(mask: torch.Tensor) -> list:
    assert (mask.sum(dim=0) <= 1).all()
    return [int(col.nonzero()[0]) if col.any() else None for col in mask.t()]


def test_spike_cluster_by_hand():
    #        t:  0    1    2    3    4    5    6    7    8    9
    v = torch.tensor([
        [1.0, 1.2, 0.1, 0.2, 1.5, 0.3, 0.4, 1.1, 1.0, 1.3],   # {0,1} {4} {7,8,9}
        [0.1, 0.2, 0.9, 0.3, 0.2, 0.1, 0.0, 0.5, 0.9, 0.4],   # silent
        [0.5, 0.2, 1.0, 0.7, 0.6, 0.95, 2.0, 0.3, 0.2, 0.8],  # {2} {6}
    ]).t()
    n_o, k_positive, k_negative = spike_cluster(v, 1.0, 1)
    assert n_o.tolist() == [3, 0, 2]
    assert k_positive.shape == k_negative.shape == (10, 3)
    assert k_positive.dtype == k_negative.dtype == torch.bool
    # neuron 0: every step is within 1 of a spike -> no k_positive; its smallest cluster {4}
    # neuron 1: no spike -> no k_negative; k_positive the highest voltage, t = 2 (before 8)
    # neuron 2: far steps 0, 4, 8, 9 (t = 5's 0.95 is next to the spike at 6): 9 (0.8);
    #           clusters of one spike each: the first, t = 2
    assert as_steps(k_positive) == [None, 2, 9]
    assert as_steps(k_negative) == [4, None, 2]
    # T_in = 0: every spike is its own cluster; the smallest is the first (t = 0)
    n_o, k_positive, k_negative = spike_cluster(v, 1.0, 0)
    assert n_o.tolist() == [6, 0, 2]
    assert as_steps(k_negative) == [0, None, 2]
    assert as_steps(k_positive) == [6, 2, 5]
    # T_in = 4: neuron 0 is one cluster of 6, its last spike 9; neuron 2 one of 2, last 6
    n_o, k_positive, k_negative = spike_cluster(v, 1.0, 4)
    assert n_o.tolist() == [1, 0, 1]
    assert as_steps(k_negative) == [9, None, 6]
    assert as_steps(k_positive) == [None, 2, None]
    # a threshold per neuron: neuron 1 fires at 0.9 (t = 2 and 8, far apart)
    n_o, _, k_negative = spike_cluster(v, torch.tensor([1.0, 0.9, 1.0]), 1)
    assert n_o.tolist() == [3, 2, 2]
    assert as_steps(k_negative) == [4, 2, 2]


def test_spike_cluster_agrees_with_the_definition_on_random_voltages():
    g = torch.Generator().manual_seed(11)
    for t_in in (0, 1, 2, 4):
        v = torch.rand(30, 40, generator=g) * 1.4
        n_o, k_positive, k_negative = spike_cluster(v, 1.0, t_in)
        got = list(zip(n_o.tolist(), as_steps(k_positive), as_steps(k_negative), strict=True))
        assert got == [reference_clusters(v[:, n].tolist(), 1.0, t_in) for n in range(40)]


def test_spike_cluster_loss_of_the_paper_pushes_only_at_the_k_steps():
    # the seed's STCA loss, the masks summed over time: up at k_positive where too few
    # clusters, down at k_negative where too many
    v = torch.tensor([[1.2, 0.1, 0.3, 0.0, 1.1],      # neuron 0: {0}, {4}: 2 clusters
                      [0.2, 0.6, 0.1, 0.0, 0.3]]).t().requires_grad_()   # neuron 1: none
    n_o, k_positive, k_negative = spike_cluster(v, 1.0, 1)
    n_d = torch.tensor([1, 1])
    v_neg = (v * k_negative.float()).sum(dim=0)
    v_pos = (v * k_positive.float()).sum(dim=0)
    loss = ((n_o > n_d).float() * (v_neg - 1.0)).sum() \
        + ((n_o < n_d).float() * (1.0 - v_pos)).sum()
    assert loss.item() == pytest.approx((1.2 - 1.0) + (1.0 - 0.6))
    loss.backward()
    expected = torch.zeros(5, 2)
    expected[0, 0] = 1.0        # the first of the two one-spike clusters, pushed down
    expected[1, 1] = -1.0       # the highest voltage of the silent neuron, pushed up
    assert torch.equal(v.grad, expected)


def test_spike_cluster_edges_and_refusals():
    n_o, k_positive, k_negative = spike_cluster(torch.zeros(0, 3), 1.0, 2)
    assert n_o.tolist() == [0, 0, 0] and k_positive.shape == k_negative.shape == (0, 3)
    n_o, k_positive, k_negative = spike_cluster(torch.zeros(4, 0), 1.0, 2)
    assert n_o.shape == (0,) and k_positive.shape == (4, 0)
    # spikes so dense that no step is far from them, as the seed warns: all False
    _, k_positive, _ = spike_cluster(torch.tensor([[1.0], [0.0], [1.0], [1.0]]), 1.0, 1)
    assert not k_positive.any()
    v = torch.zeros(4, 3)
    for args in ((torch.zeros(4), 1.0, 1), (torch.zeros(4, 3, 2), 1.0, 1), (v, 1.0, -1),
                 (v, 1.0, 1.5), (v, torch.ones(2), 1), (v, torch.ones(3, 1), 1),
                 (v, 1.0, True)):
        with pytest.raises(ValueError):
            spike_cluster(*args)
