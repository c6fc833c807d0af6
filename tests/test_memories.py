"""snngrow's memory features on generated modules: memories() / named_memories() and
detach() for truncated BPTT."""
from __future__ import annotations

import torch

from conftest import net
from snnc.compiler import compile as snnc_compile

RECURRENT = """seed = 3
steps = 6
input x[4]
population a[5] = LIF(tau = 2.0, refractory = 1)
population b[3] = LIF(tau = 2.0)
connect x -> a : dense via exp_current(tau = 3)
connect a -> b : dense delay uniform(1, 2)
connect b -> a : dense delay 1"""


def build(tmp_path):
    path = tmp_path / "m.snn"
    path.write_text(net(RECURRENT))
    return snnc_compile(path, backend="softbp")


def test_named_memories_are_every_carried_state(tmp_path):
    sim = build(tmp_path)()
    assert list(sim.named_memories()) == []  # nothing carried before a run
    sim(torch.rand(6, 2, 4, generator=torch.Generator().manual_seed(0)))
    names = [name for name, _ in sim.named_memories()]
    assert {"populations.a.v", "populations.a.countdown", "populations.b.v",
            "connections.x->a.synapse.i"} <= set(names)
    assert any(name.startswith("connections.a->b.ops.0.history.") for name in names)
    values = dict(sim.named_memories())
    assert values["populations.a.v"].shape == (2, 5)
    assert len(list(sim.memories())) == len(names)
    sim.reset()
    assert list(sim.named_memories()) == []


def test_truncated_bptt_chunks_give_the_whole_run_and_cut_the_graph(tmp_path):
    """Two chunks of 6 steps with detach() between: the same spikes as one run of 12
    (the states carry over), and the second chunk's graph no longer reaches the first
    chunk's input; without detach() it does."""
    cls = build(tmp_path)
    x = torch.rand(12, 2, 4, generator=torch.Generator().manual_seed(1))
    whole = cls()
    whole.steps = 12
    ref = whole(x)
    for cut in (True, False):
        chunked = cls()
        early = x[:6].clone().requires_grad_()
        first = chunked(early)
        if cut:
            chunked.detach()
            assert all(not value.requires_grad for value in chunked.memories())
        second = chunked(x[6:])
        for pop in ("a", "b"):
            assert torch.equal(torch.cat([first[pop], second[pop]]), ref[pop]), pop
        total = sum(chunked.populations[p].states["v"].sum() for p in ("a", "b"))
        (grad,) = torch.autograd.grad(total, early, allow_unused=True)
        assert (grad is None) == cut
        if not cut:
            assert grad.abs().sum() > 0
