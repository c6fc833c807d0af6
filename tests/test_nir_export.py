"""`snnc export NET.snn --nir OUT.nir`: the mapping of docs/NIR.md, peers (Norse, snnTorch)
importing our export with the same spikes, refusals, cycles and --weights."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import snnc
from snnc.cli import main

nir = pytest.importorskip("nir")  # the `nir` extra


def write(tmp_path, name: str, body: str):
    path = tmp_path / f"{name}.snn"
    path.write_text(f"network {name} {{\n{body}\n}}\n")
    return path


def export(path, *extra: str):
    out = path.with_suffix(".nir")
    assert main(["export", str(path), "--nir", str(out), *extra]) == 0
    return nir.read(out)


def values(array) -> set[float]:
    return set(np.asarray(array, dtype=np.float64).round(7).reshape(-1).tolist())


# ------------------------------------------------------------------ the mapping
MIXED = """\
    dt = 0.5 ms
    seed = 1
    input x[4]
    population h[3] = LIF(tau = 2 ms, v_threshold = 0.5, v_rest = 0.1, reset = soft)
    population o[2] = CubaLIF(c_decay = 0.5, v_decay = 0.75)
    population q[2] = LIF(tau = 3 ms, decay_input = false)
    population z[2] = IF(v_threshold = 2, v_reset = -1)
    connect x -> z : dense delay 2
    connect x -> h : dense(bias = true)
    connect h -> o : dense
    connect h -> q : dense via exp_current(tau = 3 ms)"""


def test_populations_ops_and_delays_map_as_the_contract_says(tmp_path, capsys):
    path = write(tmp_path, "mixed", MIXED)
    graph = export(path)
    assert "wrote" in capsys.readouterr().out
    dt = 0.5e-3
    assert graph.metadata["dt"] == pytest.approx(dt)
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {"x": "Input", "x->z.0": "Linear", "x->z.delay": "Delay", "z": "IF",
                     "x->h.0": "Affine", "h": "LIF", "h->o.0": "Linear", "o": "CubaLIF",
                     "h->q.0": "Linear", "q": "CubaLIF", "output_o": "Output",
                     "output_q": "Output", "output_z": "Output"}
    assert sorted(graph.edges) == sorted([
        ("x", "x->z.0"), ("x->z.0", "x->z.delay"), ("x->z.delay", "z"), ("x", "x->h.0"),
        ("x->h.0", "h"), ("h", "h->o.0"), ("h->o.0", "o"), ("h", "h->q.0"), ("h->q.0", "q"),
        ("o", "output_o"), ("q", "output_q"), ("z", "output_z")])
    n = graph.nodes
    assert list(n["x"].input_type["input"]) == [4]
    # every parameter an array of the population's shape, float32
    for name, size in (("h", 3), ("o", 2), ("q", 2), ("z", 2)):
        for attr in ("r", "v_threshold", "v_reset"):
            array = getattr(n[name], attr)
            assert array.shape == (size,) and array.dtype == np.float32
    # LIF: tau = tau_steps · dt (4 steps), r = 1 (decay_input), v_leak = v_rest
    h = n["h"]
    assert values(h.tau) == {round(4 * dt, 7)} and values(h.r) == {1.0}
    assert values(h.v_leak) == {0.1} and values(h.v_threshold) == {0.5}
    assert h.metadata["reset"] == "soft"
    # CubaLIF(c_decay, v_decay): τ = dt / (1 − decay), w_in = τ_syn/dt, r = τ_mem/dt
    o = n["o"]
    assert values(o.tau_syn) == {round(2 * dt, 7)} and values(o.w_in) == {2.0}
    assert values(o.tau_mem) == {round(4 * dt, 7)} and values(o.r) == {4.0}
    assert values(o.v_leak) == {0.0} and o.metadata["reset"] == "hard"
    # LIF via exp_current(τs = 6 steps): CubaLIF with the Euler τ of the same decay
    q, decay = n["q"], np.exp(-1 / 6)
    np.testing.assert_allclose(q.tau_syn, dt / (1 - decay), rtol=1e-6)
    np.testing.assert_allclose(q.w_in, 1 / (1 - decay), rtol=1e-6)
    assert values(q.tau_mem) == {round(6 * dt, 7)} and values(q.r) == {6.0}  # decay_input f.
    assert q.metadata["snnc_tau_exact"] == pytest.approx(3e-3)
    # IF: r = 1; delay 2 steps after the ops
    assert values(n["z"].v_threshold) == {2.0} and values(n["z"].v_reset) == {-1.0}
    assert values(n["x->z.delay"].delay) == {round(2 * dt, 7)}
    state = snnc.compile(path, backend="softbp")().state_dict()
    np.testing.assert_array_equal(n["x->h.0"].weight, state["connections.x->h.ops.0.weight"])
    np.testing.assert_array_equal(n["x->h.0"].bias, state["connections.x->h.ops.0.bias"])
    assert n["x->h.0"].weight.shape == (3, 4)


CHAIN = """\
    dt = 0.5 ms
    seed = 4
    input x[4]
    population h[6] = LIF(tau = 2 ms, v_threshold = 0.2, reset = soft)
    population q[5] = LIF(tau = 3 ms, v_threshold = 0.1)
    population z[5] = IF(v_threshold = 0.3)
    population o[3] = CubaLIF(c_decay = 0.5, v_decay = 0.75, v_threshold = 1.0)
    connect x -> h : dense(bias = true)
    connect h -> q : dense via exp_current(tau = 3 ms)
    connect x -> z : dense delay 2
    connect q -> o : dense
    connect z -> o : dense"""


def test_an_export_imports_back_into_snnc_with_the_same_spikes(tmp_path):
    """snnc import reads the export (docs/NIR.md both ways): every neuron written out
    with Euler at dt, exp_current as a CubaLIF, delays from the Delay nodes."""
    path = write(tmp_path, "chain", CHAIN)
    export(path)
    back = tmp_path / "back.snn"
    assert main(["import", str(path.with_suffix(".nir")), "-o", str(back)]) == 0
    torch.manual_seed(0)
    x = torch.rand(50, 2, 4) * 4
    ours = snnc.compile(path, backend="softbp")()(x).detach()
    assert 20 <= ours.sum() <= 0.8 * ours.numel()
    theirs = snnc.compile(back, backend="softbp")()(x).detach()
    assert torch.equal(theirs, ours)


def test_ops_sparse_one_to_one_scale_conv_pool_flatten(tmp_path):
    graph = export(write(tmp_path, "ops", """\
    seed = 2
    input x[2, 6, 6]
    population c[3, 6, 6] = IF
    population s[5] = IF
    population t[5] = IF
    connect x -> c : conv2d(k = 3, pad = 1) | scale(2)
    connect c -> s : avgpool(2) | flatten | sparse(p = 0.5)
    connect s -> t : one_to_one"""))
    n = graph.nodes
    assert type(n["x->c.0"]).__name__ == "Conv2d" and type(n["x->c.1"]).__name__ == "Scale"
    assert values(n["x->c.0"].bias) == {0.0} and n["x->c.0"].weight.shape == (3, 2, 3, 3)
    assert values(n["x->c.1"].scale) == {2.0} and n["x->c.1"].scale.shape == (3, 6, 6)
    pool, flat = n["c->s.0"], n["c->s.1"]
    assert list(pool.kernel_size) == [2, 2] and list(pool.stride) == [2, 2]
    assert (flat.start_dim, flat.end_dim) == (0, -1)
    assert list(flat.input_type["input"]) == [3, 3, 3]
    sparse = n["c->s.2"]
    assert type(sparse).__name__ == "Linear" and sparse.weight.shape == (5, 27)
    assert sparse.metadata["snnc_connectivity"] == "sparse"
    assert 0 < np.count_nonzero(sparse.weight) < 5 * 27
    assert type(n["s->t.0"]).__name__ == "Scale" and n["s->t.0"].scale.shape == (5,)


def test_encoder_and_dropout_are_exported_with_one_warning_each(tmp_path, capsys):
    graph = export(write(tmp_path, "enc", """\
    input img[4]
    encoder spk = poisson(img)
    population p[3] = LIF
    connect spk -> p : dropout(0.5) | dense"""))
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 2
    assert "encoder 'spk'" in err and "dropout" in err
    assert graph.nodes["spk"].metadata["snnc_encoder"] == "poisson"
    assert "img" not in graph.nodes
    assert ("spk", "spk->p.1") in graph.edges


# ------------------------------------------------------------------ peers
def run_peer(peer, x: torch.Tensor, stateful: bool) -> torch.Tensor:
    """A NIR import run one step at a time: Norse's modules take and give a state,
    snnTorch's keep theirs inside (init_hidden) and return (output, state) as nirtorch
    graphs do."""
    state, out = None, []
    with torch.no_grad():
        for t in range(len(x)):
            if stateful:
                spikes, state = peer(x[t], state)
            else:
                spikes = peer(x[t])[0]
            out.append(spikes.reshape(len(x[t]), -1))
    return torch.stack(out)


def norse_import(graph, dt: float):
    norse = pytest.importorskip("norse.torch")
    logging.getLogger().setLevel(logging.ERROR)  # Norse warns on r != 1
    return norse.from_nir(graph, dt=dt)


def snntorch_import(graph):
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir
    return import_from_nir(graph)


# snnTorch's importer fixes dt = 1e-4 s (β = 1 − dt/τ) whatever the graph says, and
# scales the threshold by 1/(r·dt/τ) instead of the input: so it runs our LIF
# (decay_input = true, r = 1) exactly only with dt = 0.1 ms; it resets to zero
# (reset_mechanism="zero") and ignores v_reset and v_leak, so v_reset = v_rest = 0.
FEED_FORWARD = """\
    dt = 0.1 ms
    seed = 3
    input x[6]
    population h[12] = LIF(tau = 0.5 ms, v_threshold = 0.2)
    population o[4] = LIF(tau = 0.4 ms, v_threshold = 0.1)
    connect x -> h : dense(bias = true)
    connect h -> o : dense"""


def test_norse_and_snntorch_import_our_export_with_the_same_spikes(tmp_path):
    path = write(tmp_path, "ff", FEED_FORWARD)
    graph = export(path)
    torch.manual_seed(0)
    x = torch.rand(60, 1, 6) * 8  # the input current, no encoder
    ours = snnc.compile(path, backend="softbp")()(x).detach()
    assert 20 <= ours.sum() <= 0.8 * ours.numel()  # neither silent nor saturated
    norse = run_peer(norse_import(graph, dt=1e-4), x, stateful=True)
    assert torch.equal(norse, ours)
    snntorch = run_peer(snntorch_import(nir.read(path.with_suffix(".nir"))), x, stateful=False)
    assert torch.equal(snntorch, ours)


# Norse's importer has no AvgPool2d (from_nir maps it to nothing, and the graph then
# fails or runs without it), and snnTorch's maps IF to Leaky(beta = 0.9, subtracting
# reset, init_hidden = False), whose (spikes, membrane) tuple the next node cannot take.
# So the IF conv net goes to Norse without the pooling, and the pooled one to snnTorch
# with LIF neurons. Both peers' Flatten(start_dim = 0) flattens the batch axis too: one
# sample at a time.
CONV = """\
    dt = {dt}
    seed = 5
    input x[2, 8, 8]
    population c[4, 8, 8] = {neuron}
    population o[3] = {neuron}
    connect x -> c : conv2d(k = 3, pad = 1, bias = true)
    connect c -> o : {pool}flatten | dense(w = uniform(-0.02, {w}))"""


@pytest.mark.parametrize("peer,dt,neuron,pool,w", [
    ("norse", "1 ms", "IF(v_threshold = 0.1)", "", 0.025),
    ("snntorch", "0.1 ms", "LIF(tau = 0.4 ms, v_threshold = 0.02)", "avgpool(2) | ", 0.02),
])
def test_a_conv_net_gives_a_peer_the_same_spikes(tmp_path, peer, dt, neuron, pool, w):
    path = write(tmp_path, "conv", CONV.format(dt=dt, neuron=neuron, pool=pool, w=w))
    graph = export(path)
    torch.manual_seed(0)
    x = (torch.rand(30, 1, 2, 8, 8) < 0.4).float()
    ours = snnc.compile(path, backend="softbp")()(x).detach()
    assert 10 <= ours.sum() <= 0.8 * ours.numel()
    module = norse_import(graph, dt=1e-3) if peer == "norse" else snntorch_import(graph)
    assert torch.equal(run_peer(module, x, stateful=peer == "norse"), ours)


# ------------------------------------------------------------------ refusals
HEAD = """\
    input i[1, 4, 4]
    population a[1, 4, 4] = LIF
    population b[2] = LIF
    connect i -> a
"""
REFUSED = {  # the connection a -> b, on line 6, and what the error names
    "learn": ("    connect a -> b : flatten | dense\n"
              "        learn stdp(tau_pre = 20 ms, tau_post = 20 ms, a_pre = 0.01, "
              "a_post = -0.01, w_min = 0, w_max = 1)", "plasticity"),
    "maxpool": ("    connect a -> b : maxpool(2) | flatten | dense", "maxpool"),
    "per-synapse delay": ("    connect a -> b : flatten | dense delay uniform(1, 3)",
                          "delay per synapse"),
}


def refused(capsys, path, out, line: int, needle: str) -> None:
    """Exit 1 with one error at `line` and its caret, no traceback, `out` not written
    nor, when it exists, changed."""
    assert main(["export", str(path), "--nir", str(out)]) == 1
    assert not out.exists()
    out.write_bytes(b"earlier")
    assert main(["export", str(path), "--nir", str(out)]) == 1
    assert out.read_bytes() == b"earlier"
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(re.findall(r": error: ", err)) == 2  # one a run
    assert re.search(rf"{re.escape(path.name)}:{line}:\d+: error: .*{needle}.*NIR has no node",
                     err)
    assert re.search(r"\n    +\^\n", err)


@pytest.mark.parametrize("case", REFUSED)
def test_what_nir_cannot_express_is_one_error_and_writes_nothing(tmp_path, capsys, case):
    clause, needle = REFUSED[case]
    path = write(tmp_path, "bad", HEAD + clause)
    refused(capsys, path, tmp_path / "bad.nir", 6, needle)


def test_a_tempotron_network_is_refused_at_its_population(tmp_path, capsys):
    sample = Path(__file__).resolve().parents[1] / "samples" / "tempotron_digits.snn"
    line = next(i for i, text in enumerate(sample.read_text().splitlines(), 1)
                if "= Tempotron(" in text)
    refused(capsys, sample, tmp_path / "t.nir", line, "Tempotron")


# ------------------------------------------------------------------ cycles
def test_a_cycle_keeps_its_delay_node(tmp_path):
    graph = export(write(tmp_path, "rec", """\
    input i[2]
    population a[3] = LIF
    population b[3] = LIF
    connect i -> a : dense
    connect a -> b : dense
    connect b -> a : dense delay 1"""))
    assert type(graph.nodes["b->a.delay"]).__name__ == "Delay"
    assert {("b", "b->a.0"), ("b->a.0", "b->a.delay"), ("b->a.delay", "a"),
            ("a", "a->b.0"), ("a->b.0", "b")} <= set(graph.edges)
    # every population feeds another: each is an output, as softbp's forward gives them
    assert {"output_a", "output_b"} <= set(graph.nodes)


# ------------------------------------------------------------------ --weights
def test_weights_file_is_what_gets_exported_and_a_misfit_is_refused(tmp_path, capsys):
    path = write(tmp_path, "ff", FEED_FORWARD)
    state = snnc.compile(path, backend="softbp")().state_dict()
    trained = {key: value * 3 + 1 for key, value in state.items()}
    torch.save(trained, tmp_path / "trained.pt")
    graph = export(path, "--weights", str(tmp_path / "trained.pt"))
    np.testing.assert_array_equal(graph.nodes["h->o.0"].weight,
                                  trained["connections.h->o.ops.0.weight"])
    np.testing.assert_array_equal(graph.nodes["x->h.0"].bias,
                                  trained["connections.x->h.ops.0.bias"])
    out = tmp_path / "ff.nir"
    before = out.read_bytes()
    wrong = dict(trained, **{"connections.h->o.ops.0.weight": torch.zeros(4, 5)})
    torch.save(wrong, tmp_path / "wrong.pt")
    missing = {k: v for k, v in trained.items() if "bias" not in k}
    torch.save(missing, tmp_path / "missing.pt")
    for name, needle in (("wrong.pt", "has shape [4, 5]"), ("missing.pt", "missing")):
        capsys.readouterr()
        assert main(["export", str(path), "--nir", str(out), "--weights",
                     str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err
        assert out.read_bytes() == before


RECURRENT = """\
    dt = 1 ms
    seed = 3
    input x[4]
    population a[6] = LIF(tau = 4 ms, v_threshold = 0.6)
    population b[5] = LIF(tau = 3 ms, v_threshold = 0.5, reset = soft)
    population o[3] = IF(v_threshold = 0.5)
    connect x -> a : dense(bias = true)
    connect a -> a : sparse(p = 0.5, w = uniform(-0.6, 0.6)) delay 3
    connect a -> b : dense(w = uniform(0.2, 1.2)) delay 2 via exp_current(tau = 3 ms)
    connect b -> a : dense delay 1
    connect b -> o : dense(w = uniform(0, 1))
    monitor a.spikes, b.spikes"""


def test_a_recurrent_net_round_trips_with_identical_spikes(tmp_path):
    """snnc -> NIR -> snnc: cycles (a self-connection with delay 3, a loop a -> b -> a),
    a soft reset, exp_current as CubaLIF, sparse as a dense matrix; every population's
    spikes equal at every step."""
    path = write(tmp_path, "rec", RECURRENT)
    export(path)
    back = tmp_path / "back.snn"
    assert main(["import", str(path.with_suffix(".nir")), "-o", str(back)]) == 0
    text = back.read_text()
    assert "delay 3" in text and "delay 2" in text and "delay 1" in text
    end = text.rindex("}")  # the network's
    back.write_text(text[:end] + "    monitor a.spikes, b.spikes\n" + text[end:])
    torch.manual_seed(0)
    x = torch.rand(80, 2, 4) * 3
    original, imported = snnc.compile(path)(), snnc.compile(back)()
    ours, theirs = original(x).detach(), imported(x).detach()
    assert torch.equal(theirs, ours) and ours.sum() > 10
    for pop in ("a", "b"):
        spikes = original.monitors[f"{pop}.spikes"]
        assert 10 < spikes.sum() < 0.9 * spikes.numel()
        assert torch.equal(imported.monitors[f"{pop}.spikes"], spikes)


SHARED = Path(__file__).resolve().parent / "data" / "nir"


def _numbers(node) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float64) for k, v in vars(node).items()
            if isinstance(v, np.ndarray) and k not in ("input_type", "output_type")}


@pytest.mark.parametrize("name, dt", [("cnn_sinabs", None), ("lif_norse", "0.1 ms")])
def test_an_imported_graph_exports_back_as_it_came(tmp_path, name, dt):
    """NIR -> snnc -> NIR: the models `snnc import` writes export as the nodes they came
    from, parameters and weights equal (SumPool2d comes back as AvgPool2d then Scale)."""
    snn = tmp_path / f"{name}.snn"
    assert main(["import", str(SHARED / f"{name}.nir"), "-o", str(snn),
                 *(["--dt", dt] if dt else [])]) == 0
    back = export(snn)
    original = nir.read(SHARED / f"{name}.nir")
    neurons = {k: v for k, v in original.nodes.items() if type(v).__name__ in ("LIF", "IF")}
    def weighted(graph):  # in one order for both: by type and weight
        nodes = [v for v in graph.nodes.values()
                 if type(v).__name__ in ("Affine", "Linear", "Conv2d")]
        return sorted(nodes, key=lambda v: (type(v).__name__, v.weight.shape,
                                            float(np.abs(v.weight).sum())))
    weighted, exported = weighted(original), weighted(back)
    assert len(neurons) >= 1 and len(weighted) == len(exported)
    for key, node in neurons.items():
        ours = back.nodes[f"n{key}"]
        assert type(ours) is type(node)
        for param, values in _numbers(node).items():
            np.testing.assert_allclose(_numbers(ours)[param], values, rtol=1e-6, atol=1e-9,
                                       err_msg=f"{key}.{param}")
    for theirs, ours in zip(weighted, exported, strict=True):
        assert type(ours) is type(theirs)
        np.testing.assert_array_equal(ours.weight, theirs.weight)


def test_a_model_named_as_an_imported_one_but_changed_is_refused(tmp_path, capsys):
    path = tmp_path / "fake.snn"
    path.write_text("neuron NirIF(r = 1.0, v_threshold = 1.0, v_reset = 0.0) {\n"
                    "    state v = v_reset\n    charge v = v + 2 * r * x\n"
                    "    fire v >= v_threshold\n    reset hard\n}\n"
                    "network fake {\n    input x[2]\n    population p[2] = NirIF\n"
                    "    connect x -> p : dense\n}\n")
    assert main(["export", str(path), "--nir", str(tmp_path / "f.nir")]) == 1
    assert "runs neuron model NirIF" in capsys.readouterr().err


def test_an_imported_leaky_integrator_exports_as_an_li_node_without_a_warning(tmp_path,
                                                                            capsys):
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])),
               "w": nir.Linear(np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)),
               "li": nir.LI(tau=np.full(2, 4e-3), r=np.full(2, 2.0), v_leak=np.full(2, 0.1)),
               "output": nir.Output(np.array([2]))},
        edges=[("input", "w"), ("w", "li"), ("li", "output")], metadata={"dt": 1e-3})
    nir.write(tmp_path / "li.nir", graph)
    assert main(["import", str(tmp_path / "li.nir"), "-o", str(tmp_path / "li.snn")]) == 0
    capsys.readouterr()
    back = export(tmp_path / "li.snn")
    assert "warning" not in capsys.readouterr().err
    li = back.nodes["li"]
    assert type(li).__name__ == "LI" and "reset" not in li.metadata
    np.testing.assert_allclose(li.tau, 4e-3, rtol=1e-6)
    np.testing.assert_allclose(li.r, 2.0)
    np.testing.assert_allclose(li.v_leak, 0.1, rtol=1e-6)
