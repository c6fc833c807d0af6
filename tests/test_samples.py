"""The networks in samples/: every one compiles, and their key numbers match the originals.

Each sample transcribes a published network (see the comment block at the top
of each file); the specific tests below check what a transcription error would
change: neuron and synapse counts, parameter totals against the PyTorch
originals, and unit conversions with the network's dt.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from snnc.cli import main
from snnc.compiler import frontend
from snnc.ir.graph import connections, populations
from snnc.ir.values import Spec, Uniform
from snnc.report import totals

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ALL = sorted(SAMPLES.glob("*.snn"))
REQUIRED = ["mnist_mlp", "cifar10_conv", "cuba", "song_stdp", "spikingflow_stdp",
            "tempotron_mnist"]


@functools.cache
def graphs(name: str):
    return frontend(SAMPLES / f"{name}.snn")


def graph(name: str, network: str | None = None):
    found = graphs(name)
    if network is None:
        assert len(found) == 1
        return found[0]
    return next(g for g in found if g.graph["name"] == network)


def conn(g, name: str):
    return next(c for c in connections(g) if c.name == name)


def pop(g, name: str):
    return g.nodes[name]["node"]


# ------------------------------------------------------------------ every sample
def test_the_required_samples_and_more_are_there():
    names = {p.stem for p in ALL}
    assert set(REQUIRED) <= names
    assert len(names) >= 7


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_sample_compiles_to_graphs(path):
    found = frontend(path)
    assert found, f"{path.name} has no network"
    for g in found:
        assert g.graph["schedule"], g.graph["name"]
        assert populations(g), g.graph["name"]


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_sample_passes_snnc_check(path, capsys):
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr()
    assert ": ok (" in out.out
    assert out.err == ""


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_sample_starts_with_its_source(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    assert len(header) >= 5, f"{path.name} needs a comment block saying where it comes from"
    assert "Source" in "\n".join(header)


# ------------------------------------------------------------------ SpikingFlow MNIST MLP
def test_mnist_mlp_counts():
    g = graph("mnist_mlp")
    t = totals(g)
    assert t["neurons"] == 196 + 10 == 206
    assert t["synapses"] == 784 * 196 + 196 * 10
    assert t["parameters"] == 784 * 196 + 196 * 10     # both Linear layers have bias=False
    assert g.graph["steps"] == 50
    assert g.graph["backend"] == "softbp"
    assert g.graph["readout"].spec.kind == "rate"
    assert g.nodes["spk"]["node"].spec.kind == "poisson"
    for name in ("hidden", "out"):
        p = pop(g, name)
        assert p.params["tau"] == 100.0
        assert p.params["decay_input"] is True
        assert p.surrogate == Spec("sigmoid", {"alpha": 1.0})


# ------------------------------------------------------------------ SpikingFlow CIFAR-10
def cifar10_pytorch_parameters() -> int:
    """The tutorial's Net, counted as PyTorch's sum(p.numel() for p in net.parameters())."""
    conv_first = 3 * 256 * 3 * 3 + 256          # Conv2d(3, 256, 3, padding=1), bias=True
    conv_rest = 5 * (256 * 256 * 3 * 3 + 256)   # five Conv2d(256, 256, 3, padding=1)
    batchnorm = 6 * (256 + 256)                 # BatchNorm2d(256): weight + bias
    linear = 256 * 4 * 4 * 10                   # Linear(256*4*4, 10, bias=False)
    return conv_first + conv_rest + batchnorm + linear


def test_cifar10_parameter_count_equals_pytorch():
    assert cifar10_pytorch_parameters() == 3_001_600
    g = graph("cifar10_conv")
    assert totals(g)["parameters"] == cifar10_pytorch_parameters()


def test_cifar10_inspect_json_reports_the_pytorch_count(capsys):
    assert main(["inspect", "--format", "json", str(SAMPLES / "cifar10_conv.snn")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["graph"]["totals"]["parameters"] == cifar10_pytorch_parameters()


def test_cifar10_structure():
    g = graph("cifar10_conv")
    shapes = {p.name: p.shape for p in populations(g)}
    assert shapes == {"c1": (256, 32, 32), "c2": (256, 16, 16), "c3": (256, 16, 16),
                      "c4": (256, 8, 8), "c5": (256, 8, 8), "c6": (256, 4, 4), "fc": (10,)}
    pooled = {c.dst for c in connections(g) if any(op.kind == "maxpool" for op in c.ops)}
    assert pooled == {"c2", "c4", "c6"}
    for c in connections(g):
        kinds = [op.kind for op in c.ops]
        if c.dst == "fc":
            assert kinds == ["flatten", "dense"] and c.ops[1].params["bias"] is False
        else:
            assert kinds[0] == "conv2d" and kinds[-1] == "batchnorm"
            assert c.ops[0].params["bias"] is True and c.ops[0].params["pad"] == 1


# ------------------------------------------------------------------ CUBA (Brian2)
def test_cuba_sizes_and_units():
    g = graph("cuba")
    assert g.graph["dt_ms"] == pytest.approx(0.1)
    assert g.graph["steps"] == 10_000                       # 1 s at 0.1 ms
    assert totals(g)["neurons"] == 4000
    assert pop(g, "exc").size == 3200 and pop(g, "inh").size == 800
    for name in ("exc", "inh"):
        p = pop(g, name)
        assert p.refractory == 50                          # 5 ms / 0.1 ms
        assert p.params["tau"] == pytest.approx(200.0)     # 20 ms / 0.1 ms
        assert (p.params["v_rest"], p.params["v_reset"], p.params["v_threshold"]) == \
            (-49, -60, -50)
        assert p.state_init["v"] == Uniform(-60.0, -50.0)
        # Brian2's dv/dt = (ge + gi - (v - El)) / taum divides the input by taum too
        assert p.params["decay_input"] is True


def test_cuba_synapses():
    g = graph("cuba")
    taus = {"exc": 50.0, "inh": 100.0}                     # 5 ms and 10 ms in steps
    weights = {"exc": 1.62, "inh": -9.0}
    assert len(connections(g)) == 4
    for c in connections(g):
        assert [op.kind for op in c.ops] == ["sparse"]
        assert c.ops[0].params["p"] == pytest.approx(0.02)
        assert c.ops[0].params["w"] == pytest.approx(weights[c.src])
        assert c.synapse.kind == "exp_current"
        assert c.synapse.params["tau"] == pytest.approx(taus[c.src])
        assert c.delay == 1                                # 0.1 ms
    assert totals(g)["synapses"] == round(0.02 * 4000 * 4000)
    assert [m.key for m in g.graph["monitors"]] == ["exc.spikes", "inh.spikes"]


# ------------------------------------------------------------------ Song, Miller & Abbott
def test_song_stdp():
    g = graph("song_stdp")
    enc = g.nodes["inputs"]["node"]
    assert enc.shape == (1000,)
    assert enc.spec.params["rate"] == pytest.approx(15 * 0.1 / 1000)   # 15 Hz at 0.1 ms
    assert pop(g, "post").size == 1
    assert pop(g, "post").params["tau"] == pytest.approx(100.0)       # 10 ms
    c = conn(g, "inputs->post")
    assert c.ops[0].params["w"] == Uniform(0.0, 0.01)
    assert c.synapse.params["tau"] == pytest.approx(50.0)             # 5 ms
    rule = c.rule.params
    gmax = 0.01
    assert rule["tau_pre"] == pytest.approx(200.0) and rule["tau_post"] == pytest.approx(200.0)
    assert rule["a_pre"] == pytest.approx(0.01 * gmax)
    assert rule["a_post"] == pytest.approx(-0.01 * 1.05 * gmax)
    assert (rule["w_min"], rule["w_max"]) == (0, pytest.approx(gmax))


# ------------------------------------------------------------------ SpikingFlow STDP tutorial
def test_spikingflow_stdp_has_both_examples():
    assert [g.graph["name"] for g in graphs("spikingflow_stdp")] == \
        ["stdp_module", "stdp_updater"]
    module = graph("spikingflow_stdp", "stdp_module")
    assert module.graph["steps"] == 200 and module.graph["backend"] == "clock"
    assert pop(module, "post").model.name == "SFIFFirstInputLost"
    assert pop(module, "post").params["r"] == 50.0
    c = conn(module, "pre->post")
    assert c.synapse == Spec("spike_current", {"amplitude": 0.5, "channel": None})  # into x
    assert c.rule.kind == "spikingflow_stdp"
    assert (c.rule.params["tau_pre"], c.rule.params["tau_post"]) == (10.0, 10.0)
    assert c.rule.params["learning_rate"] == 1e-3 and c.rule.params["f_w"].name == "abs"
    updater = graph("spikingflow_stdp", "stdp_updater")
    assert updater.graph["steps"] == 500
    assert pop(updater, "post").model.name == "SFLIFOneStepLate"
    rule = conn(updater, "pre->post").rule
    assert rule.params["tau_post"] == 100.0 and rule.params["f_w"].name == "normalized"


# ------------------------------------------------------------------ Tempotron
def test_tempotron_is_event_driven():
    g = graph("tempotron_mnist")
    assert g.graph["backend"] == "event"
    assert g.graph["steps"] == 100
    assert g.nodes["spk"]["node"].shape == (784, 16)
    out = pop(g, "out")
    assert out.event_driven and out.size == 10
    assert g.graph["readout"].spec.kind == "v_max"
    assert totals(g)["parameters"] == 784 * 16 * 10     # Linear(784*m, 10, bias=False)


# ------------------------------------------------------------------ extra samples
def test_plif_fashion_mnist():
    g = graph("plif_fashion_mnist")
    pytorch = (1 * 128 * 9 + 2 * 128          # Conv2d(1, 128, 3, bias=False) + BN
               + 128 * 128 * 9 + 2 * 128      # Conv2d(128, 128, 3, bias=False) + BN
               + 128 * 7 * 7 * 2048           # Linear(6272, 2048, bias=False)
               + 2048 * 100                   # Linear(2048, 100, bias=False)
               + 4)                           # one learnable w per PLIF layer
    assert totals(g)["parameters"] == pytorch
    assert g.graph["readout"].spec == Spec("voting", {"k": 10})
    assert g.graph["readout"].out_shape == (10,)
    assert sum(op.kind == "dropout" for c in connections(g) for op in c.ops) == 2


def test_polychronization_delays():
    g = graph("polychronization")
    assert totals(g)["neurons"] == 1000
    assert conn(g, "exc->exc").delay == Uniform(1, 20)
    assert conn(g, "exc->inh").delay == Uniform(1, 20)
    assert conn(g, "inh->exc").delay == 1
    assert conn(g, "exc->exc").rule.params["w_max"] == 10
    assert pop(g, "inh").params["a"] == 0.1 and pop(g, "inh").params["d"] == 2


def test_diehl_cook_adaptive_threshold():
    g = graph("diehl_cook_stdp")
    exc, inh = pop(g, "exc"), pop(g, "inh")
    assert exc.refractory == 10 and inh.refractory == 4     # 5 ms, 2 ms at 0.5 ms
    assert exc.state_init["theta"] == 20 and inh.state_init["theta"] == 0
    assert conn(g, "pixels->exc").delay == Uniform(0, 20)   # 0-10 ms
