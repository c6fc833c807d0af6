"""The random-number contract (docs/RNG.md): one seed, the same weights and the same draws."""
from __future__ import annotations

import pytest
import torch

from conftest import net
from snnc.compiler import compile as snnc_compile
from snnc.runtime import fused

T, B, N = 8, 3, 20

# Every kind of draw a seeded network makes: weights, sparse synapses and per-synapse delays
# when it is built; Poisson spikes and random initial states when it runs.
BODY = (f"steps = {T}\ninput img[{N}]\nencoder spk = poisson(img)\n"
        "population h[16] = LIF(tau = 2.0, v_init = uniform(0, 0.5))\n"
        "population o[4] = LIF(tau = 2.0, v_init = normal(0.2, 0.1))\n"
        "connect spk -> h : sparse(p = 0.5, w = uniform(0, 1)) delay uniform(1, 3)\n"
        "connect h -> o : dense(bias = true)\n"
        "monitor spk.spikes, h.v, o.v\nreadout o = count")


def build(tmp_path, body: str, seed: int | None, name: str = "r") -> torch.nn.Module:
    """A fresh compile of `body` (a file of its own, so no class is shared) and an instance."""
    path = tmp_path / f"{name}.snn"
    settings = f"seed = {seed}\n" if seed is not None else ""
    path.write_text(net(settings + body, "r"))
    return snnc_compile(path)()


def inputs() -> torch.Tensor:
    return torch.rand(T, B, N, generator=torch.Generator().manual_seed(0))


def run(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    model(x)
    return model.monitors


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    one, other = a.state_dict(), b.state_dict()
    return one.keys() == other.keys() and all(torch.equal(one[k], other[k]) for k in one)


def test_two_builds_of_one_seed_have_the_same_weights_synapses_and_delays(tmp_path):
    a, b = build(tmp_path, BODY, 11, "a"), build(tmp_path, BODY, 11, "b")
    assert same_state(a, b)
    delays = a.state_dict()["connections.spk->h.ops.0.delays"]
    assert delays.unique().numel() == 3          # the delays were drawn, not all equal


def test_two_builds_of_one_seed_draw_the_same_spikes_and_initial_states(tmp_path):
    a = run(build(tmp_path, BODY, 11, "a"), inputs())
    b = run(build(tmp_path, BODY, 11, "b"), inputs())
    for key in ("spk.spikes", "h.v", "o.v"):
        assert torch.equal(a[key], b[key]), key
    assert 0 < a["spk.spikes"].mean() < 1        # Poisson spikes, not all or none
    assert a["o.v"][0].unique().numel() > 1       # initial states drawn, not one value


def test_another_seed_draws_otherwise(tmp_path):
    a, b = build(tmp_path, BODY, 11, "a"), build(tmp_path, BODY, 12, "b")
    assert not same_state(a, b)
    first, second = run(a, inputs()), run(b, inputs())
    for key in ("spk.spikes", "h.v", "o.v"):
        assert not torch.equal(first[key], second[key]), key


def test_without_a_seed_two_instances_differ(tmp_path):
    a, b = build(tmp_path, BODY, None, "a"), build(tmp_path, BODY, None, "b")
    assert not same_state(a, b)
    first, second = run(a, inputs()), run(b, inputs())
    for key in ("spk.spikes", "h.v", "o.v"):
        assert not torch.equal(first[key], second[key]), key


def test_seeded_networks_leave_the_global_generator_alone(tmp_path):
    before = torch.get_rng_state()
    model = build(tmp_path, BODY, 11)
    run(model, inputs())
    model.reset()
    run(model, inputs())
    assert torch.equal(torch.get_rng_state(), before)


def test_building_a_seeded_network_seeds_no_gpu_generator(tmp_path, monkeypatch):
    """torch.manual_seed would reseed every GPU's generator too (lazily, where CUDA is not
    yet initialised), which fork_rng(devices=[]) does not restore."""
    seeded_gpus = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded_gpus.append)
    build(tmp_path, BODY, 11)
    assert seeded_gpus == []


def test_reset_draws_afresh_and_reseed_starts_again(tmp_path):
    model = build(tmp_path, BODY, 11)
    first = run(model, inputs())
    model.reset()
    second = run(model, inputs())
    assert not torch.equal(first["spk.spikes"], second["spk.spikes"])
    model.reseed()
    model.reset()
    assert torch.equal(run(model, inputs())["spk.spikes"], first["spk.spikes"])
    model.reseed(12)
    model.reset()
    other = build(tmp_path, BODY, 12, "other")
    assert torch.equal(run(model, inputs())["spk.spikes"],
                       run(other, inputs())["spk.spikes"])


def test_reseed_needs_a_seed_where_the_network_has_none(tmp_path):
    with pytest.raises(ValueError, match="has no seed"):
        build(tmp_path, BODY, None).reseed()


def test_draws_are_the_same_run_layer_by_layer_or_step_by_step(tmp_path):
    """A loop of weight zero makes the network recurrent (run step by step) without
    changing what it computes: each module's stream gives it the same draws."""
    layers = run(build(tmp_path, BODY, 11, "layers"), inputs())
    loop = BODY.replace("monitor", "connect o -> o : scale(0.0) delay 1\nmonitor")
    steps = run(build(tmp_path, loop, 11, "steps"), inputs())
    assert torch.equal(layers["spk.spikes"], steps["spk.spikes"])
    # one product per step instead of one for all T sums in another order: an ulp apart
    for key in ("h.v", "o.v"):
        torch.testing.assert_close(layers[key], steps[key], rtol=0, atol=1e-6)


def final_states(tmp_path, name: str) -> list[torch.Tensor]:
    body = BODY.replace("monitor spk.spikes, h.v, o.v\n", "")  # a recorded state stops them
    model = build(tmp_path, body, 11, name)
    model(inputs())
    return [p.states["v"] for p in model.populations.values()]


def test_draws_do_not_depend_on_the_fused_kernels(tmp_path, monkeypatch):
    """Where the kernels do not build, the reference step runs from the states drawn for
    them: drawn again, it would start from other ones."""
    kernels = final_states(tmp_path, "kernels")
    monkeypatch.setattr(fused, "run", lambda *args: None)   # kernels that do not build
    unbuilt = final_states(tmp_path, "unbuilt")
    monkeypatch.setattr(fused, "_enabled", False)            # kernels turned off
    off = final_states(tmp_path, "off")
    for with_kernels, without, turned_off in zip(kernels, unbuilt, off, strict=True):
        torch.testing.assert_close(with_kernels, without, rtol=0, atol=1e-6)
        torch.testing.assert_close(with_kernels, turned_off, rtol=0, atol=1e-6)


def test_draws_are_the_same_at_double_precision(tmp_path):
    single = run(build(tmp_path, BODY, 11, "single"), inputs())
    double = run(build(tmp_path, BODY, 11, "double").double(), inputs().double())
    assert torch.equal(single["spk.spikes"], double["spk.spikes"].float())
    torch.testing.assert_close(single["o.v"], double["o.v"].float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_draws_are_the_same_on_a_gpu(tmp_path):
    cpu = run(build(tmp_path, BODY, 11, "cpu"), inputs())
    gpu = run(build(tmp_path, BODY, 11, "gpu").cuda(), inputs().cuda())
    assert torch.equal(cpu["spk.spikes"], gpu["spk.spikes"].cpu())
    torch.testing.assert_close(cpu["o.v"], gpu["o.v"].cpu())


RUN_TIME_OPS = (f"steps = {T}\ninput img[{N}]\npopulation h[16] = LIF\n"
                "connect img -> h : dropout(0.5) | dense(bias = false) | noise(0.1)\n"
                "monitor h.v\nreadout h = count")


def test_dropout_masks_and_noise_come_from_the_seed(tmp_path):
    before = torch.get_rng_state()
    a, b = build(tmp_path, RUN_TIME_OPS, 11, "a"), build(tmp_path, RUN_TIME_OPS, 11, "b")
    first, second = run(a, inputs()), run(b, inputs())
    assert torch.equal(torch.get_rng_state(), before)
    keep = a.connection("img->h").ops[0].keep
    assert torch.equal(keep, b.connection("img->h").ops[0].keep) and (keep == 0).any()
    assert torch.equal(first["h.v"], second["h.v"])
