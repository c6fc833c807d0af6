"""The plan every backend renders: its layout is the module's state_dict, its projections
say what each connection computes, its synapse equations give the synapses' numbers, and
a construct a backend cannot run is refused before rendering."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import net
from snnc.cli import main
from snnc.compiler import analyse
from snnc.compiler import compile as snnc_compile
from snnc.errors import SnnError
from snnc.plan.lower import lower
from snnc.plan.nodes import LAYERS, STEPS
from snnc.plan.support import check_supported

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SOFTBP_SAMPLES = ["cifar10_conv", "cuba", "digits_mlp", "mnist_mlp", "plif_fashion_mnist"]


def plan_of(path):
    (_, (graph,)) = analyse(path)
    return lower(graph)


@pytest.mark.parametrize("sample", SOFTBP_SAMPLES)
def test_the_layout_is_the_state_dict_of_the_softbp_module(sample):
    path = SAMPLES / f"{sample}.snn"
    layout = {t.key: t for t in plan_of(path).layout}
    state = snnc_compile(path, backend="softbp")().state_dict()
    assert set(layout) == set(state)
    for key, tensor in layout.items():
        if tensor.shape is not None:
            assert tuple(state[key].shape) == tensor.shape, key
    drawn = [k for k, t in layout.items() if t.shape is None]
    assert all(".ops." in k and k.endswith(("weight", "targets")) for k in drawn)


def test_layout_of_delays_synapses_feedback_and_batchnorm(tmp_path):
    path = tmp_path / "n.snn"
    path.write_text(net("input i[2, 6]\npopulation a[2, 6] = ILCIF(dec_pop_dim = 2)\n"
                        "population b[4] = IF\npopulation c[4] = PLIF\n"
                        "connect i -> a : batchnorm\n"
                        "connect a -> b : flatten | dense(bias = true) delay uniform(1, 3)\n"
                        "connect b -> c : one_to_one via filter(tau = 4, learnable = true)"))
    layout = {t.key: t for t in plan_of(path).layout}
    state = snnc_compile(path)().state_dict()
    assert set(layout) == set(state)
    assert layout["connections.a->b.ops.1.delays"].shape == (4, 12)
    assert layout["connections.a->b.ops.1.inner.bias"].parameter
    assert not layout["connections.i->a.ops.0.running_mean"].parameter
    assert layout["connections.b->c.synapse.w"].shape == ()
    assert layout["populations.a.feedback.weight"].shape == (12, 1, 2)  # 6 groups of 2
    assert {k: tuple(v.shape) for k, v in state.items()} == \
        {k: t.shape for k, t in layout.items()}


def test_projections_say_connectivity_delays_and_mode(tmp_path):
    path = tmp_path / "p.snn"
    path.write_text(net("input i[1, 8, 8]\npopulation a[2, 8, 8] = IF\npopulation b[10] = IF\n"
                        "population c[10] = IF\n"
                        "connect i -> a : conv2d(out = 2)\n"
                        "connect a -> b : flatten | sparse(p = 0.5) delay uniform(2, 5)\n"
                        "connect b -> c : one_to_one delay 3\nconnect c -> b : scale(0.5) delay 1"))
    plan = plan_of(path)
    by_name = {p.name: p for p in plan.projections}
    assert plan.mode == STEPS  # b and c form a cycle
    assert (by_name["i->a"].connectivity, by_name["i->a"].weighted) == ("conv", 0)
    sparse = by_name["a->b"]
    assert (sparse.connectivity, sparse.weighted, sparse.delay, sparse.synapse_delays,
            sparse.extra_delay) == ("sparse", 1, 2, (2, 5), 3)
    assert (by_name["b->c"].connectivity, by_name["b->c"].delay) == ("one_to_one", 3)
    assert (by_name["c->b"].connectivity, by_name["c->b"].weighted) == (None, None)
    feed_forward = tmp_path / "f.snn"
    feed_forward.write_text(net("input i[3]\npopulation a[3] = IF\nconnect i -> a"))
    assert plan_of(feed_forward).mode == LAYERS


def test_synapse_parameters_are_folded_into_its_equations(tmp_path):
    path = tmp_path / "s.snn"
    path.write_text(net("input i[3]\npopulation a[3] = IF\n"
                        "connect i -> a via exp_current(tau = 4)"))
    (proj,) = plan_of(path).projections
    (update,) = proj.synapse.update
    assert update.value.left.right.value == math.exp(-1 / 4)
    assert proj.synapse.states == (("i", 0.0),) and not proj.synapse.presynaptic


def _synapse_run(tmp_path, via: str, spikes: torch.Tensor, ops: str = "one_to_one(w = 1)"):
    """The current a synapse delivers for `spikes` [T, 1, n], recorded by a population
    that holds it (v = x, never firing)."""
    n = spikes.shape[-1]
    path = tmp_path / "syn.snn"
    path.write_text(
        "neuron Sum() { state v = 0 charge v = x fire v >= 1e30 reset none }\n"
        + net(f"steps = {len(spikes)}\ninput i[{n}]\npopulation s[{n}] = Sum\n"
              f"connect i -> s : {ops} via {via}\nmonitor s.v"))
    model = snnc_compile(path)()
    model(spikes.double())
    return model.monitors["s.v"][:, 0].detach()


SPIKES = (torch.rand(40, 1, 3, generator=torch.Generator().manual_seed(1)) < 0.3).float()


def test_exp_current_decays_exactly_and_jumps_by_the_spikes(tmp_path):
    current = _synapse_run(tmp_path, "exp_current(tau = 5)", SPIKES)
    expected, i = [], torch.zeros(3, dtype=torch.float64)
    for s in SPIKES[:, 0].double():
        i = i * math.exp(-1 / 5) + s
        expected.append(i)
    assert torch.allclose(current, torch.stack(expected), atol=1e-12)


def test_exp_decay_current_is_set_where_a_spike_arrives(tmp_path):
    current = _synapse_run(tmp_path, "exp_decay_current(tau = 2, amplitude = 3)", SPIKES)
    expected, i = [], torch.zeros(3, dtype=torch.float64)
    for s in SPIKES[:, 0].double():
        i = torch.where(s != 0, torch.full_like(i, 3.0), i * math.exp(-0.5))
        expected.append(i)
    assert torch.allclose(current, torch.stack(expected), atol=1e-12)


def test_stp_follows_the_tsodyks_markram_equations(tmp_path):
    """SpikingFlow's STPTransformer: x += (1 - x)/tau_d, u += (U - u)/tau_f, then on a
    spike u += U(1 - u), release u x, x -= u x."""
    current = _synapse_run(tmp_path, "stp(v_base = 0.3, tau_f = 20, tau_d = 5)", SPIKES)
    expected = []
    x, u = [1.0] * 3, [0.3] * 3
    for s in SPIKES[:, 0].tolist():
        row = []
        for k in range(3):
            x[k] += (1 - x[k]) / 5
            u[k] += (0.3 - u[k]) / 20
            u[k] += 0.3 * (1 - u[k]) * s[k]
            out = u[k] * x[k] * s[k]
            x[k] -= out
            row.append(out)
        expected.append(row)
    assert torch.allclose(current, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    assert current[SPIKES[:, 0] > 0].min() > 0


def test_spike_current_scales_the_weighted_spikes(tmp_path):
    current = _synapse_run(tmp_path, "spike_current(amplitude = 2.5)", SPIKES,
                           ops="one_to_one(w = 0.5)")
    assert torch.equal(current, SPIKES[:, 0].double() * 0.5 * 2.5)


def test_a_construct_the_backend_cannot_run_names_one_that_can(tmp_path):
    path = tmp_path / "r.snn"
    path.write_text(net("input i[3]\npopulation a[3] = IF\n"
                        "connect i -> a : dense learn stdp()"))
    with pytest.raises(SnnError) as info:
        snnc_compile(path, backend="softbp")
    assert info.value.message == ("the softbp backend cannot run the plasticity rule stdp "
                                  "(connection 'i->a')")
    assert info.value.hint == "stdp runs on the clock backend"


def test_an_encoder_of_another_backend_names_it(tmp_path):
    path = tmp_path / "g.snn"
    path.write_text(net("input i[3]\nencoder g = gaussian_tuning(i, m = 4)\n"
                        "population a[3, 4] = Tempotron\nconnect g -> a"))
    with pytest.raises(SnnError) as info:
        snnc_compile(path, backend="softbp")
    assert info.value.message.startswith("the softbp backend cannot run Tempotron")
    assert info.value.hint == "Tempotron runs on the event backend"
    plan = lower(analyse(path, None, ())[1][0])
    with pytest.raises(SnnError) as info:
        check_supported(plan, "clock")
    assert info.value.message == ("the clock backend cannot run Tempotron (population 'a')")
    with pytest.raises(SnnError) as info:
        check_supported(replace(plan, populations=()), "softbp")
    assert info.value.message == ("the softbp backend cannot run the encoder gaussian_tuning "
                                  "(encoder 'g')")
    assert info.value.hint == "gaussian_tuning runs on the event backend"


def test_inspect_prints_the_plan(capsys):
    assert main(["inspect", str(SAMPLES / "cuba.snn"), "--format", "plan"]) == 0
    out = capsys.readouterr().out
    assert "mode = steps" in out and "exc->inh" in out
    assert "connections.exc->exc.ops.0.offsets" in out and "[3201]" in out
    assert "exp_current: i = i *" in out and "0.9801986733067553 + x" in out


def test_a_synapse_folded_to_a_constant_still_gives_one_current_per_neuron(tmp_path):
    current = _synapse_run(tmp_path, "spike_current(amplitude = 0)", SPIKES)
    assert current.shape == SPIKES[:, 0].shape and not current.any()
