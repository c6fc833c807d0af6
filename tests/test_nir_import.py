"""`snnc import IN.nir`: real graphs written by other tools (tests/data/nir), graphs
exported by snnTorch, and hostile files. Conventions: docs/NIR.md."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import snnc
from snnc.cli import main
from snnc.interchange.nir_import import import_file, parse_dt, write_import

nir = pytest.importorskip("nir")  # the `nir` extra: every test here reads or writes NIR

SHARED = Path(__file__).resolve().parent / "data" / "nir"  # the NIR paper's files


def imported(source, out: Path, dt: str | None = None, reset: str | None = None):
    """The generated class of a NIR file imported to `out`, and the text written."""
    result = import_file(source, out, dt_s=parse_dt(dt) if dt else None, reset=reset)
    write_import(result, out, Path(source))
    return snnc.compile(out), out.read_text()


def with_monitor(path: Path, line: str) -> None:
    text = path.read_text()
    path.write_text(text.replace("    connect", f"    {line}\n    connect", 1))


def trace(name: str) -> np.ndarray:
    return np.loadtxt(SHARED / f"{name}.csv", delimiter=",")


# ------------------------------------------------------------------ the NIR paper's LIF
def test_lif_norse_reproduces_norses_own_run(tmp_path):
    _, text = imported(SHARED / "lif_norse.nir", tmp_path / "lif.snn", dt="0.1 ms")
    assert "tau = 2.5 ms" in text and "dt = 0.1 ms" in text
    with_monitor(tmp_path / "lif.snn", "monitor n1.v")
    net = snnc.compile(tmp_path / "lif.snn")()
    norse = trace("lif_norse")
    spikes = net(torch.tensor(norse[:, :1], dtype=torch.float32)[:, None])
    voltage = net.monitors["n1.v"].reshape(-1).detach().numpy()
    assert np.array_equal(spikes.reshape(-1).detach().numpy(), norse[:, 2])
    assert norse[:, 2].sum() == 4
    np.testing.assert_allclose(voltage, norse[:, 1], atol=1e-6)


def test_lif_norse_against_snntorch_and_the_exact_solution(tmp_path):
    """The same spikes as snnTorch's run and the exact solution. snnTorch's import adds
    the input to v without Euler's dt/τ (its Leaky: v = βv + x), so its voltage is ours
    times τ/dt = 25; the exact solution differs from Euler's by under 1 % of threshold."""
    imported(SHARED / "lif_norse.nir", tmp_path / "lif.snn", dt="0.1 ms")
    with_monitor(tmp_path / "lif.snn", "monitor n1.v")
    net = snnc.compile(tmp_path / "lif.snn")()
    snntorch, exact = trace("lif_snntorch"), trace("lif_exact")
    spikes = net(torch.tensor(snntorch[:, :1], dtype=torch.float32)[:, None])
    voltage = net.monitors["n1.v"].reshape(-1).detach().numpy()
    assert np.array_equal(spikes.reshape(-1).detach().numpy(), snntorch[:, 2])
    assert np.array_equal(snntorch[:, 2], exact[:, 2])
    np.testing.assert_allclose(voltage * 25, snntorch[:, 1], atol=1e-4)
    assert 1e-3 < np.abs(voltage - exact[:, 1]).max() < 0.1 * 0.1


# ------------------------------------------------------------------ the NIR paper's CNN
def test_cnn_sinabs_imports_and_matches_norse(tmp_path):
    """Norse's importer turns NIR's Flatten(start_dim=0) into torch's Flatten(0), which
    flattens the batch axis too: it runs one sample at a time, so compare with B = 1."""
    norse = pytest.importorskip("norse.torch")
    Net, text = imported(SHARED / "cnn_sinabs.nir", tmp_path / "cnn.snn")
    assert "avgpool(2) | scale(4) | flatten | dense(bias = true)" in text
    graph = nir.read(SHARED / "cnn_sinabs.nir")
    logging.getLogger().setLevel(logging.ERROR)
    peer = norse.from_nir(graph, dt=1e-3)
    torch.manual_seed(0)
    steps = 60
    events = (torch.rand(steps, 1, 2, 34, 34) < 0.3).float()
    ours = Net()(events).detach()
    state, theirs = None, []
    with torch.no_grad():
        for t in range(steps):
            out, state = peer(events[t], state)
            theirs.append(out.reshape(1, -1))
    theirs = torch.stack(theirs)
    assert ours.sum() >= 20  # enough output spikes for the comparison to mean something
    assert torch.equal(ours, theirs)


def test_cnn_sinabs_builds_for_softbp_with_gradients(tmp_path):
    Net, _ = imported(SHARED / "cnn_sinabs.nir", tmp_path / "cnn.snn")
    net = Net()
    weights = dict(nir.read(SHARED / "cnn_sinabs.nir").nodes)["0"].weight
    first = net.state_dict()["connections.input_->n1.ops.0.weight"]
    assert np.array_equal(first.numpy(), weights)
    out = net((torch.rand(8, 2, 2, 34, 34) < 0.3).float())
    out.sum().backward()
    assert first.grad is None  # the state_dict's tensor is detached; the parameter has it
    grad = net.connection("input_->n1").ops[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0


# ------------------------------------------------------------------ snnTorch's export
def _snntorch_layer(snn, kind: str, n: int, output: bool = False):
    """A layer of n neurons that resets as NIR's default does (to v_reset = 0, at once:
    reset_mechanism="zero", reset_delay=False). A scalar β exports nodes of shape [] that
    NIR's own type inference refuses (the shapes bug peers report): β, α and the
    threshold are given per neuron."""
    common = dict(threshold=torch.ones(n), init_hidden=True, reset_mechanism="zero",
                  reset_delay=False, output=output)
    if kind == "Leaky":
        return snn.Leaky(beta=torch.full((n,), 0.8), **common)
    return snn.Synaptic(alpha=torch.full((n,), 0.6), beta=torch.full((n,), 0.85), **common)


@pytest.mark.parametrize("kind,model", [("Leaky", "NirLIF"), ("Synaptic", "NirCubaLIF")])
def test_snntorch_export_imports_with_the_same_spikes(tmp_path, kind, model):
    """A Linear-neuron-Linear-neuron net of snnTorch exported with its export_to_nir (which
    writes τ = dt/(1 − β), r = τ/dt, w_in = τ_syn/dt for dt = 1e-4 s and records no dt),
    imported with --dt 0.1 ms: Leaky as LIF, Synaptic as CubaLIF."""
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(6, 12), _snntorch_layer(snn, kind, 12),
                              torch.nn.Linear(12, 4), _snntorch_layer(snn, kind, 4, True))
    steps = 40
    x = torch.rand(steps, 3, 6) * 2
    nir.write(tmp_path / "peer.nir", export_to_nir(net, x[0, 0]))  # one sample's shape
    Net, text = imported(tmp_path / "peer.nir", tmp_path / "peer.snn", dt="0.1 ms")
    assert f"= {model}(" in text
    ours = Net()(x).detach()
    from snntorch import utils
    utils.reset(net)
    with torch.no_grad():
        theirs = torch.stack([net(x[t])[0] for t in range(steps)])
    assert ours.sum() >= 10
    assert torch.equal(ours, theirs)


# ------------------------------------------------------------------ recurrence
def _recurrent_graph(with_delay: bool):
    n = 3
    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(np.array([2])),
        "w_in": nir.Linear(weight=rng.normal(0, 1, (n, 2)).astype(np.float32)),
        "lif": nir.LIF(tau=np.full(n, 5e-3), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=np.full(n, 0.2), v_reset=np.zeros(n)),
        "w_rec": nir.Linear(weight=rng.normal(0, 1, (n, n)).astype(np.float32)),
        "output": nir.Output(np.array([n])),
    }
    edges = [("input", "w_in"), ("w_in", "lif"), ("lif", "output"), ("lif", "w_rec")]
    if with_delay:
        nodes["d"] = nir.Delay(np.full(n, 3e-3))
        edges += [("w_rec", "d"), ("d", "lif")]
    else:
        edges.append(("w_rec", "lif"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3})


@pytest.mark.parametrize("with_delay,delay", [(False, 1), (True, 3)])
def test_a_cycle_gets_its_delay_nodes_or_one_step(tmp_path, with_delay, delay):
    nir.write(tmp_path / "rec.nir", _recurrent_graph(with_delay))
    Net, text = imported(tmp_path / "rec.nir", tmp_path / "rec.snn")
    assert f"connect lif -> lif : dense delay {delay}" in text
    assert "monitor lif.spikes" in text  # it feeds itself, so it is no sink
    net = Net()
    net(torch.ones(20, 1, 2))
    assert net.monitors["lif.spikes"].shape == (20, 1, 3)


def test_soft_reset_from_metadata_and_from_the_command_line(tmp_path):
    graph = _recurrent_graph(False)
    nir.write(tmp_path / "a.nir", graph)
    _, text = imported(tmp_path / "a.nir", tmp_path / "a.snn", reset="soft")
    assert "reset = soft" in text
    graph.nodes["lif"].metadata["reset"] = "hard"
    nir.write(tmp_path / "b.nir", graph)
    _, text = imported(tmp_path / "b.nir", tmp_path / "b.snn", reset="soft")
    assert "reset = soft" not in text  # the graph's own word wins


# ------------------------------------------------------------------ the command line
def test_cli_import_and_inspect(tmp_path, capsys):
    out = tmp_path / "lif.snn"
    assert main(["import", str(SHARED / "lif_norse.nir"), "-o", str(out), "--dt",
                 "0.1 ms"]) == 0
    assert out.exists() and (tmp_path / "lif.weights.pt").exists()
    assert main(["check", str(out)]) == 0
    assert main(["inspect", str(SHARED / "cnn_sinabs.nir")]) == 0
    shown = capsys.readouterr().out
    assert "n10" in shown and "[256]" in shown and "cnn_sinabs.nir" in shown


# ------------------------------------------------------------------ hostile files
def _refused(capsys, tmp_path, source: Path, *needles: str) -> None:
    out = tmp_path / "out.snn"
    assert main(["import", str(source), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(re.findall(r"(?:^|: )error: ", err, re.M)) == 1
    for needle in needles:
        assert needle in err
    assert not out.exists() and not (tmp_path / "out.weights.pt").exists()


def test_not_hdf5_is_refused(tmp_path, capsys):
    (tmp_path / "x.nir").write_text("hello")
    _refused(capsys, tmp_path, tmp_path / "x.nir", "not HDF5")


def test_truncated_hdf5_is_refused(tmp_path, capsys):
    nir.write(tmp_path / "a.nir", _recurrent_graph(False))
    data = (tmp_path / "a.nir").read_bytes()
    (tmp_path / "cut.nir").write_bytes(data[: len(data) // 2])
    _refused(capsys, tmp_path, tmp_path / "cut.nir", "not a readable NIR graph")


def test_huge_arrays_are_refused_before_reading(tmp_path, capsys, monkeypatch):
    import h5py
    nir.write(tmp_path / "a.nir", _recurrent_graph(False))
    with h5py.File(tmp_path / "a.nir", "a") as file:  # 8 TB of zeros, compressed
        file.create_dataset("node/nodes/w_rec/huge", shape=(2**20, 2**20), dtype="f8",
                            chunks=(1024, 1024), compression="gzip")
    _refused(capsys, tmp_path, tmp_path / "a.nir", "more than the memory limit")


def test_edges_to_nowhere_and_missing_nodes(tmp_path, capsys):
    graph = _recurrent_graph(False)
    graph.edges.append(("lif", "ghost"))
    nir.write(tmp_path / "a.nir", graph)
    _refused(capsys, tmp_path, tmp_path / "a.nir")  # nir.read or our check: one error


def test_wrong_shapes_are_refused(tmp_path, capsys):
    graph = _recurrent_graph(False)
    graph.nodes["w_rec"] = nir.Linear(weight=np.ones((3, 5), dtype=np.float32))
    nir.write(tmp_path / "a.nir", graph)  # a [3, 5] weight after 3 neurons
    _refused(capsys, tmp_path, tmp_path / "a.nir")


def test_per_neuron_thresholds_and_unknown_nodes_are_named(tmp_path, capsys):
    graph = _recurrent_graph(False)
    graph.nodes["lif"].v_threshold = np.array([0.1, 0.2, 0.3])
    nir.write(tmp_path / "a.nir", graph)
    _refused(capsys, tmp_path, tmp_path / "a.nir", "v_threshold of node 'lif' differs")
    graph = _recurrent_graph(False)
    graph.nodes["w_rec"] = nir.Threshold(np.ones(3))
    nir.write(tmp_path / "b.nir", graph)
    _refused(capsys, tmp_path, tmp_path / "b.nir", "Threshold")


def test_an_existing_output_is_untouched_by_a_failed_import(tmp_path, capsys):
    (tmp_path / "out.snn").write_text("keep me")
    (tmp_path / "x.nir").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    assert main(["import", str(tmp_path / "x.nir"), "-o", str(tmp_path / "out.snn")]) == 1
    assert (tmp_path / "out.snn").read_text() == "keep me"
    assert "Traceback" not in capsys.readouterr().err


def test_node_names_cannot_write_into_the_file(tmp_path):
    """A NIR name holding a newline and `.snn` text stays inside its comment."""
    graph = _recurrent_graph(False)
    evil = "lif\n    connect input_ -> lif : dense\n#"
    graph.nodes[evil] = graph.nodes.pop("lif")
    graph.edges[:] = [tuple(evil if n == "lif" else n for n in e) for e in graph.edges]
    nir.write(tmp_path / "evil\nname.nir", graph)
    _, text = imported(tmp_path / "evil\nname.nir", tmp_path / "a.snn")
    lines = text.splitlines()
    assert sum(line.startswith("    connect ") for line in lines) == 2  # in, and recurrent
    assert "    connect input_ -> lif : dense" not in lines
    assert "\\x0a    connect input_ -> lif : dense" in text  # escaped, in its comment
    assert "evil\\x0aname.nir" in text


def test_an_output_that_reads_the_input_is_refused(tmp_path, capsys):
    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([2])),
                                "output": nir.Output(np.array([2]))},
                         edges=[("input", "output")])
    nir.write(tmp_path / "a.nir", graph)
    _refused(capsys, tmp_path, tmp_path / "a.nir", "without a neuron node")


def test_a_delay_between_steps_is_rounded_with_one_warning(tmp_path, capsys):
    graph = _recurrent_graph(True)
    graph.nodes["d"] = nir.Delay(np.full(3, 2.6e-3))  # 2.6 steps of 1 ms
    nir.write(tmp_path / "a.nir", graph)
    assert main(["import", str(tmp_path / "a.nir"), "-o", str(tmp_path / "a.snn")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "is 2.6 steps of dt; rounded to 3" in err
    assert "connect lif -> lif : dense delay 3" in (tmp_path / "a.snn").read_text()


@pytest.mark.parametrize("kind", ["LI", "I"])
def test_a_leaky_integrator_at_the_output_is_read_out_as_its_voltage(tmp_path, kind):
    """NIR's LI (tau dv/dt = v_leak - v + r x) and I (dv/dt = r x) never fire: the import
    reads their voltage out (the last step's; every step's in the monitors); it is the
    Euler recurrence computed here by hand."""
    w = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
    node = (nir.LI(tau=np.full(2, 4e-3), r=np.full(2, 2.0), v_leak=np.full(2, 0.1))
            if kind == "LI" else nir.I(r=np.full(2, 2.0)))
    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([2])), "w": nir.Linear(w),
                                "li": node, "output": nir.Output(np.array([2]))},
                         edges=[("input", "w"), ("w", "li"), ("li", "output")],
                         metadata={"dt": 1e-3})
    nir.write(tmp_path / "li.nir", graph)
    Net, text = imported(tmp_path / "li.nir", tmp_path / "li.snn")
    assert f"Nir{kind}(" in text and "readout li = v" in text
    x = torch.rand(30, 1, 2)
    net = Net()
    last = net(x).detach()
    ours = net.monitors["li.v"].detach().reshape(30, 2).double()
    v = torch.full((2,), 0.1 if kind == "LI" else 0.0, dtype=torch.float64)
    expected = []
    for t in range(30):
        current = torch.from_numpy(w).double() @ x[t, 0].double()
        v = v + ((0.1 - v + 2.0 * current) / 4.0 if kind == "LI" else 2.0 * current)
        expected.append(v)
    torch.testing.assert_close(ours, torch.stack(expected), rtol=1e-5, atol=1e-5)
    assert torch.equal(last.reshape(2).double(), ours[-1])
