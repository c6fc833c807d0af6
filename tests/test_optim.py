"""snnc.optim.AdamRewiring: Deep R on Adam (issue 12, item 3)."""
from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from snnc.optim import AdamRewiring, sparsify_


def digits():
    from sklearn.datasets import load_digits
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target)
    return x, y


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def groups(net: nn.Module, **rewired):
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    return [dict(params=weights, **rewired), dict(params=biases, rewire=False)], weights


def counts(weights, signs):
    """Active connections measured from the weights alone: non-zero and sign-consistent."""
    return [int(((w != 0) & (torch.sign(w) == s)).sum())
            for w, s in zip(weights, signs, strict=True)]


def test_trains_a_sparse_mlp_on_digits_keeping_the_connection_count():
    x, y = digits()
    net = mlp()
    param_groups, weights = groups(net)
    gen = torch.Generator().manual_seed(1)
    sparsify_(weights, 0.3, generator=gen)
    opt = AdamRewiring(param_groups, lr=1e-2, T=1e-6, l1=1e-4, generator=gen)
    signs = [opt.sign(w).clone() for w in weights]
    start = counts(weights, signs)
    assert start == [round(0.3 * 64 * 32), round(0.3 * 32 * 10)]
    assert opt.num_active() == sum(start)

    loss_fn = nn.CrossEntropyLoss()
    with torch.no_grad():
        first = loss_fn(net(x), y).item()
    reborn = 0
    for _ in range(300):
        before = [w.detach() != 0 for w in weights]
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
        assert counts(weights, signs) == start
        # Dormant entries are exactly zero: every non-zero entry is an active one.
        assert [int((w != 0).sum()) for w in weights] == start
        assert all(bool((w.detach() * s >= 0).all()) for w, s in zip(weights, signs, strict=True))
        reborn += sum(int((~b & (w.detach() != 0)).sum())
                      for b, w in zip(before, weights, strict=True))
    with torch.no_grad():
        last = loss_fn(net(x), y).item()
        accuracy = (net(x).argmax(1) == y).float().mean().item()
    assert reborn > 50, "the test should exercise rewiring, not only Adam"
    assert last < 0.35 * first, (first, last)
    assert accuracy > 0.9
    for w, s in zip(weights, signs, strict=True):
        assert torch.equal(opt.sign(w), s)


def test_signs_never_flip_even_at_high_temperature():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(40, 40) * 1e-3)
    with torch.no_grad():
        w[torch.rand(40, 40) < 0.5] = 0
    gen = torch.Generator().manual_seed(3)
    opt = AdamRewiring([w], lr=1e-2, T=1e-2, l1=1e-3, generator=gen)
    sign = opt.sign(w).clone()
    assert set(sign.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(sign[w != 0], torch.sign(w.detach())[w != 0])
    count = int((w != 0).sum())
    target = torch.randn(40, 40)
    for _ in range(100):
        opt.zero_grad()
        ((w - target) ** 2).sum().backward()
        opt.step()
        assert bool((w.detach() * sign >= 0).all())
        assert int((w != 0).sum()) == count == opt.num_active(w)
        assert torch.equal(opt.sign(w), sign)


def test_zero_temperature_and_l1_with_every_connection_active_is_adam():
    x, y = digits()
    ours, theirs = mlp(), mlp()
    # Weights kept away from 0 so that no connection dies within the steps compared.
    with torch.no_grad():
        for net in (ours, theirs):
            for p in net.parameters():
                torch.manual_seed(p.numel())
                p.copy_(torch.sign(torch.randn_like(p)) * (0.5 + torch.rand_like(p)))
    for amsgrad in (False, True):
        a, b = copy.deepcopy(ours), copy.deepcopy(theirs)
        opt_a = AdamRewiring(a.parameters(), lr=1e-3, T=0.0, l1=0.0, amsgrad=amsgrad,
                             weight_decay=1e-4)
        opt_b = torch.optim.Adam(b.parameters(), lr=1e-3, amsgrad=amsgrad, weight_decay=1e-4)
        state = torch.get_rng_state()
        for _ in range(20):
            for net, opt in ((a, opt_a), (b, opt_b)):
                opt.zero_grad()
                nn.functional.cross_entropy(net(x), y).backward()
                opt.step()
            for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
                assert torch.equal(pa, pb)
        assert torch.equal(torch.get_rng_state(), state), "T=0 draws no random numbers"
        assert opt_a.num_active() == sum(p.numel() for p in a.parameters())


def test_zero_temperature_and_l1_match_adam_on_the_surviving_entries():
    torch.manual_seed(0)
    w0 = torch.randn(30, 30) * 1e-3          # many entries cross 0 in one Adam step
    a, b = nn.Parameter(w0.clone()), nn.Parameter(w0.clone())
    opt_a = AdamRewiring([a], lr=1e-2, T=0.0, l1=0.0, generator=torch.Generator())
    opt_b = torch.optim.Adam([b], lr=1e-2)
    grad = torch.randn(30, 30)
    for p, opt in ((a, opt_a), (b, opt_b)):
        p.grad = grad.clone()
        opt.step()
    crossed = torch.sign(b.detach()) != torch.sign(w0)
    assert 0 < int(crossed.sum()) < w0.numel()
    keep = ~crossed
    assert torch.equal(a.detach()[keep], b.detach()[keep])
    assert int((a != 0).sum()) == w0.numel()   # all reactivated at +-tiny
    reborn = a.detach()[crossed]
    assert bool((reborn.abs() == torch.finfo(torch.float32).tiny).all())
    assert torch.equal(torch.sign(reborn), torch.sign(w0)[crossed])
    # Adam's moments are cleared for the reborn entries and kept for the others.
    for key in ("exp_avg", "exp_avg_sq"):
        assert bool((opt_a.state[a][key][crossed] == 0).all())
        assert torch.equal(opt_a.state[a][key][keep], opt_b.state[b][key][keep])


def run(net, opt, x, y, steps):
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_state_dict_round_trips_and_resumes_identically():
    x, y = digits()
    x, y = x[:256], y[:256]
    net = mlp()
    param_groups, weights = groups(net, T=1e-5, l1=1e-4)
    sparsify_(weights, 0.5, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(5)
    opt = AdamRewiring(param_groups, lr=1e-2, generator=gen)
    run(net, opt, x, y, 10)

    buffer = io.BytesIO()
    torch.save({"net": net.state_dict(), "opt": opt.state_dict(),
                "gen": gen.get_state()}, buffer)
    expected = run(net, opt, x, y, 10)
    expected_weights = [p.detach().clone() for p in net.parameters()]

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    net2 = mlp(seed=123)
    net2.load_state_dict(saved["net"])
    param_groups2, weights2 = groups(net2)
    gen2 = torch.Generator()
    opt2 = AdamRewiring(param_groups2, lr=1.0, T=0.0, l1=0.0, generator=gen2)
    opt2.load_state_dict(saved["opt"])
    gen2.set_state(saved["gen"])
    assert opt2.param_groups[0]["T"] == 1e-5 and opt2.param_groups[0]["l1"] == 1e-4
    assert opt2.param_groups[1]["rewire"] is False
    for w2 in weights2:
        assert opt2.sign(w2).dtype == w2.dtype
    resumed = run(net2, opt2, x, y, 10)
    assert resumed == expected
    for p, q in zip(expected_weights, net2.parameters(), strict=True):
        assert torch.equal(p, q)
    assert opt2.state_dict()["state"].keys() == opt.state_dict()["state"].keys()


def test_state_dict_before_any_step_keeps_the_signs():
    w = nn.Parameter(torch.zeros(8, 8))
    with torch.no_grad():
        w[0] = 1.0
    opt = AdamRewiring([w], generator=torch.Generator().manual_seed(0))
    sign = opt.sign(w).clone()
    opt2 = AdamRewiring([w], generator=torch.Generator().manual_seed(99))
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert torch.equal(opt2.sign(w), sign)
    w.grad = torch.ones_like(w)
    opt2.step()                     # Adam still initialises its own state
    assert int(opt2.state[w]["step"]) == 1
    assert torch.equal(opt2.sign(w), sign)
    assert opt2.num_active(w) == 8


def test_generator_makes_runs_reproducible_and_global_rng_is_the_default():
    def once(gen):
        torch.manual_seed(0)
        w = nn.Parameter(torch.randn(20, 20) * 1e-2)
        opt = AdamRewiring([w], lr=1e-2, T=1e-3, l1=1e-3, generator=gen)
        for _ in range(20):
            w.grad = torch.ones_like(w) * 0.1
            opt.step()
        return w.detach().clone()

    assert torch.equal(once(torch.Generator().manual_seed(7)),
                       once(torch.Generator().manual_seed(7)))
    assert not torch.equal(once(torch.Generator().manual_seed(7)),
                           once(torch.Generator().manual_seed(8)))
    torch.manual_seed(0)
    state = torch.get_rng_state()
    once(None)
    assert not torch.equal(torch.get_rng_state(), state)


def test_rejects_bad_arguments():
    w = nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError):
        AdamRewiring([w], T=-1.0)
    with pytest.raises(ValueError):
        AdamRewiring([w], l1=-1.0)
    with pytest.raises(ValueError):
        AdamRewiring([w], init_value=0.0)
    with pytest.raises(ValueError):
        sparsify_([w], 1.5)
    AdamRewiring([{"params": [nn.Parameter(torch.ones(3, dtype=torch.complex64))],
                   "rewire": False}])
    with pytest.raises(ValueError):
        AdamRewiring([nn.Parameter(torch.ones(3, dtype=torch.complex64))])


def test_trains_an_snnc_compiled_softbp_net():
    import snnc
    from conftest import ROOT

    x, y = digits()
    x, y = x[:512], y[:512]
    torch.manual_seed(0)
    net = snnc.compile(ROOT / "samples" / "digits_mlp.snn")()
    weights = [p for n, p in net.named_parameters() if p.dim() == 2]
    others = [p for n, p in net.named_parameters() if p.dim() != 2]
    assert len(weights) == 2
    gen = torch.Generator().manual_seed(0)
    sparsify_(weights, 0.5, generator=gen)
    opt = AdamRewiring([{"params": weights}, {"params": others, "rewire": False}],
                       lr=5e-3, T=1e-6, l1=1e-4, generator=gen)
    signs = [opt.sign(w).clone() for w in weights]
    start = counts(weights, signs)
    losses = []
    for _ in range(40):
        net.reset()
        opt.zero_grad()
        # Logits as in samples/train_digits.py: the output firing rate times 10.
        loss = nn.functional.cross_entropy(net(x) * 10.0, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        assert counts(weights, signs) == start
        assert [int((w != 0).sum()) for w in weights] == start
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses


def test_l1_and_temperature_terms_have_the_deep_r_sizes():
    torch.manual_seed(0)
    w0 = torch.sign(torch.randn(200, 200)) * (1.0 + torch.rand(200, 200))
    lr = 1e-2
    # l1 alone, no gradient signal: every magnitude shrinks by exactly lr * l1.
    w = nn.Parameter(w0.clone())
    opt = AdamRewiring([w], lr=lr, T=0.0, l1=0.5)
    w.grad = torch.zeros_like(w)
    opt.step()
    assert torch.allclose(w.detach(), w0 - lr * 0.5 * torch.sign(w0), rtol=0, atol=1e-6)
    # Temperature alone: Gaussian increments of standard deviation sqrt(2 * lr * T).
    w = nn.Parameter(w0.clone())
    T = 0.5
    opt = AdamRewiring([w], lr=lr, T=T, l1=0.0, generator=torch.Generator().manual_seed(0))
    w.grad = torch.zeros_like(w)
    opt.step()
    step = w.detach() - w0
    expected = (2 * lr * T) ** 0.5
    assert abs(step.std().item() / expected - 1) < 0.02
    assert abs(step.mean().item()) < 0.02 * expected
