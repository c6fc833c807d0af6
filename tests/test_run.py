"""`snnc run`: simulate on the clock backend, print rates, record, plot and save."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from rich.console import Console

from conftest import net
from snnc.cli import main
from snnc.run import RunResult, rates_table, run_network

PROBE = net("""steps = 200
    seed = 1
    backend = clock
    encoder src[50] = poisson(rate = 50 Hz)
    population p[20] = LIF(tau = 2.0)
    connect src -> p : dense(w = uniform(0, 0.4))""", "probe")


@pytest.fixture
def probe(tmp_path):
    path = tmp_path / "probe.snn"
    path.write_text(PROBE)
    return path


def table_rows(out: str) -> dict[str, list[str]]:
    """The rates table's rows by population: [neurons, spikes, mean, min, max]."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 6 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = cells[1:]
    return rows


def test_run_prints_each_populations_rates(probe, capsys):
    assert main(["run", str(probe)]) == 0
    captured = capsys.readouterr()
    assert "probe: 200 steps of 1 ms (200 ms of model time, batch 1)" in captured.out
    assert "steps/s" in captured.out
    rows = table_rows(captured.out)
    assert list(rows) == ["src", "p"]
    neurons, spikes, mean, low, high = rows["src"]
    assert neurons == "50"
    assert float(mean) == pytest.approx(50, rel=0.3)   # poisson(rate = 50 Hz)
    assert float(mean) == pytest.approx(int(spikes.replace(",", "")) / (50 * 0.2))
    assert float(low) <= float(mean) <= float(high)
    assert rows["p"][0] == "20"
    assert "run" in captured.err  # the progress bar, on stderr


@pytest.mark.parametrize("suffix", [".npz", ".pt"])
def test_record_and_save(probe, tmp_path, capsys, suffix):
    saved = tmp_path / f"run{suffix}"
    assert main(["run", str(probe), "--steps", "30", "--record", "p.v", "src.spikes",
                 "--save", str(saved)]) == 0
    assert f"wrote {saved}" in capsys.readouterr().out
    if suffix == ".npz":  # spikes as dense bool arrays
        data = dict(np.load(saved))
        assert data["src.spikes"].dtype == np.bool_
    else:  # spikes as the run keeps them: sparse COO tensors of the same shape
        data = torch.load(saved)
        assert data["src.spikes"].is_sparse and not data["p.v"].is_sparse
        data = {k: v.to_dense().numpy() if torch.is_tensor(v) else v for k, v in data.items()}
    assert data["p.v"].shape == (30, 1, 20)
    assert data["src.spikes"].shape == (30, 1, 50)
    assert float(data["dt_ms"]) == 1.0 and int(data["steps"]) == 30
    assert set(np.unique(data["src.spikes"])) == {0, 1}


def test_spikes_kept_as_events_are_those_of_one_dense_run(probe):
    """snnc run records spikes as events, chunk by chunk (1,000 steps each here): joined,
    they are the spikes a single run with dense monitors gives, and they are what the
    rates table counts."""
    from snnc.compiler import analyse, compile_graph
    program, graphs = analyse(probe, None, ())
    dense = compile_graph(program, graphs[0], "clock")(batch_size=1)
    expected = dense.run(2500, record=("src.spikes", "p.spikes", "p.v"))
    result = run_network(probe, steps=2500, record=("src.spikes", "p.spikes", "p.v"),
                         console=Console(file=io.StringIO()))
    for key in ("src.spikes", "p.spikes"):
        assert result.monitors[key].is_sparse
        assert torch.equal(result.monitors[key].to_dense(), expected[key])
    torch.testing.assert_close(result.monitors["p.v"], expected["p.v"])
    assert expected["p.spikes"].sum() > 100  # the probe fires: the comparison has spikes
    assert torch.equal(result.spike_counts["src"], expected["src.spikes"].sum(0))
    assert torch.equal(result.spike_counts["p"], expected["p.spikes"].sum(0))


def test_spike_events_beyond_the_memory_limit_stop_the_run(probe, capsys, monkeypatch):
    """Events grow with the spikes, so snnc run checks them after each chunk."""
    # the net fits in 300K; the events of 2.5 spikes a step (24 bytes each) soon do not
    monkeypatch.setenv("SNNC_MAX_MEMORY", "300K")
    assert main(["run", str(probe), "--steps", "100000", "--record", "src.spikes"]) == 1
    err = capsys.readouterr().err
    stopped = re.search(r"error: after ([\d,]+) steps the monitors hold .* \(spikes as "
                        r"events: .*\), more than the limit of 300 KiB", err)
    assert stopped and int(stopped[1].replace(",", "")) < 100_000  # stopped early


def test_record_a_connections_weights_every_n_steps(probe, tmp_path, capsys):
    saved = tmp_path / "run.npz"
    assert main(["run", str(probe), "--steps", "2500", "--record", "src->p.weight",
                 "--weight-every", "1000", "--save", str(saved)]) == 0
    capsys.readouterr()
    weights = np.load(saved)["src->p.weight"]
    assert weights.shape == (2, 20, 50)  # after steps 1000 and 2000, across the chunks
    assert weights.min() >= 0 and weights.max() <= 0.4 and np.all(weights[0] == weights[1])
    assert main(["run", str(probe), "--record", "src->p.weight", "--weight-every", "0"]) == 1
    assert "--weight-every 0: a number of steps from 1" in capsys.readouterr().err


def test_plot_is_a_picture(probe, tmp_path, capsys):
    png = tmp_path / "run.png"
    assert main(["run", str(probe), "--steps", "100", "--record", "p.v",
                 "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    image = imread(png)
    assert image.shape[0] > 500
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 10


def test_unknown_record_names_what_exists(probe, capsys):
    assert main(["run", str(probe), "--record", "p.vv"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: --record p.vv: unknown variable 'vv' of p — did you mean 'v'?",
        "  hint: known: spikes, v"]
    assert main(["run", str(probe), "--record", "pp.v"]) == 1
    assert "unknown population 'pp' — did you mean 'p'?" in capsys.readouterr().err
    assert main(["run", str(probe), "--record", "src.v"]) == 1
    assert "hint: known: spikes" in capsys.readouterr().err
    assert main(["run", str(probe), "--record", "p"]) == 1
    assert "expected POPULATION.VARIABLE" in capsys.readouterr().err
    assert main(["run", str(probe), "--record", "src->q.weight"]) == 1
    err = capsys.readouterr().err
    assert "unknown connection 'src->q'" in err and "hint: known: src->p" in err


def test_monitors_over_the_memory_limit_are_refused_before_running(probe, tmp_path, capsys,
                                                                    monkeypatch):
    # 1M holds the network itself (about 170 KiB); 1,000,000 steps of p.v need 76 MiB.
    monkeypatch.setenv("SNNC_MAX_MEMORY", "1M")
    saved = tmp_path / "run.npz"
    assert main(["run", str(probe), "--steps", "1000000", "--record", "p.v",
                 "--save", str(saved)]) == 1
    err = capsys.readouterr().err
    assert "the monitors of 1,000,000 steps need 76.3 MiB, more than the limit of 1 MiB" in err
    assert "━" not in err  # no progress bar: nothing ran
    assert not saved.exists()


def test_other_backends_are_simulated_on_the_clock_one(tmp_path, capsys):
    path = tmp_path / "trained.snn"
    path.write_text(net("""steps = 10
        backend = softbp
        input img[4]
        encoder s = poisson(img)
        population out[3] = LIF
        connect s -> out : dense""", "trained"))
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "trained is set to backend = softbp; snnc run simulates it on the clock backend" \
        in out
    assert "inputs img held at zero: snnc run feeds no data" in out
    assert table_rows(out)["s"][1] == "0"  # zero input: no spikes


@pytest.mark.parametrize("option, value, message", [
    ("--save", "run.csv", "--save run.csv: not a file type snnc writes"),
    ("--plot", "run.jpg", "--plot run.jpg: not a file type snnc writes"),
    ("--steps", "0", "--steps 0: a run has 1 to 10,000,000 steps"),
])
def test_bad_options_are_refused(probe, capsys, option, value, message):
    assert main(["run", str(probe), option, value]) == 1
    assert message in capsys.readouterr().err


def test_an_output_that_is_a_folder_is_refused(probe, tmp_path, capsys):
    (tmp_path / "out.png").mkdir()
    assert main(["run", str(probe), "--plot", str(tmp_path / "out.png")]) == 1
    assert "it exists and is not a regular file" in capsys.readouterr().err


def test_rates_table_by_hand():
    # 100 steps of 1 ms, one sample: 2, 0 and 4 spikes are 20, 0 and 40 Hz
    result = RunResult({}, {"a": torch.tensor([[2.0, 0.0, 4.0]])}, steps=100, batch=1,
                       dt_ms=1.0, wall_s=0.5)
    out = io.StringIO()
    Console(file=out, width=100).print(rates_table(result, "n"))
    assert table_rows(out.getvalue())["a"] == ["3", "6", "20.00", "0.00", "40.00"]
    assert "simulated in 0.5 s: 0.2x real time, 200 steps/s" in out.getvalue()
