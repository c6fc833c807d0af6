"""`snnc run`: simulate on the clock backend, print rates, record, plot and save."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from rich.console import Console

from conftest import net
from snnc.cli import main
from snnc.run import RunResult, rates_table, run_network

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

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
    assert "inputs img held at zero (give data with --input img=FILE.npy)" in out
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


# ------------------------------------------------------------------ --input
DRIVEN = net("""steps = 30
    backend = clock
    input rate[5]
    encoder src = poisson(rate)
    population p[2] = LIF(tau = 2.0)
    connect src -> p : dense(w = 0.5)""", "driven")


@pytest.fixture
def driven(tmp_path):
    path = tmp_path / "driven.snn"
    path.write_text(DRIVEN)
    return path


def saved_spikes(path) -> torch.Tensor:
    return torch.load(path)["src.spikes"].to_dense()


def test_an_input_file_of_the_inputs_shape_is_held_for_every_step(driven, tmp_path, capsys):
    """A spike probability of 1 on three of five inputs: they spike at every step."""
    rate = tmp_path / "rate.npy"
    np.save(rate, np.array([1.0, 0.0, 1.0, 0.0, 1.0]))
    saved = tmp_path / "run.pt"
    assert main(["run", str(driven), "--input", f"rate={rate}", "--record", "src.spikes",
                 "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "held at zero" not in out
    assert table_rows(out)["src"][1] == "90"  # 3 inputs x 30 steps
    assert torch.equal(saved_spikes(saved)[:, 0].sum(0), torch.tensor([30., 0, 30, 0, 30]))


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_an_input_file_with_one_entry_per_step_follows_the_run_across_chunks(
        driven, tmp_path, capsys, suffix):
    """[steps, *shape] (here with the batch axis of 1): step t's row drives step t, also
    past snnc run's chunks of 1,000 steps."""
    rows = torch.zeros(2500, 1, 5, dtype=torch.bool)
    rows[:1200, :, 1] = True   # input 1 for the first 1,200 steps
    rows[2000:, :, 4] = True   # input 4 from step 2,000
    rate = tmp_path / f"rate{suffix}"
    np.save(rate, rows.numpy()) if suffix == ".npy" else torch.save(rows, rate)
    saved = tmp_path / "run.pt"
    assert main(["run", str(driven), "--steps", "2500", "--input", f"rate={rate}",
                 "--record", "src.spikes", "--save", str(saved)]) == 0
    capsys.readouterr()
    assert torch.equal(saved_spikes(saved), rows.float())


def test_the_spikingflow_tutorials_pattern_runs_as_the_network_itself_does(tmp_path, capsys):
    """samples/spikingflow_stdp_module.npy is the STDPModule example's pre_spike; fed with
    --input it gives what the network's own run() gives with it, and the neuron fires."""
    from snnc.compiler import analyse, compile_graph
    sample = SAMPLES / "spikingflow_stdp.snn"
    pattern = np.load(SAMPLES / "spikingflow_stdp_module.npy")
    assert pattern.shape == (200, 2) and pattern[:100:2].all() and not pattern[1:100:2].any()
    assert pattern[100:, 1].all() and not pattern[100:, 0].any()
    saved = tmp_path / "run.pt"
    torch.manual_seed(7)  # the file sets no seed: both draw w from torch's generator
    assert main(["run", str(sample), "--input",
                 f"pattern={SAMPLES / 'spikingflow_stdp_module.npy'}", "--save", str(saved)]) == 0
    capsys.readouterr()
    program, graphs = analyse(sample, None, ())
    torch.manual_seed(7)
    own = compile_graph(program, graphs[0], "clock")(batch_size=1)
    expected = own.run(pattern=torch.from_numpy(pattern).float()[None])
    got = torch.load(saved)
    assert torch.equal(got["post.spikes"].to_dense(), expected["post.spikes"])
    assert torch.equal(got["pre.spikes"].to_dense()[:, 0], torch.from_numpy(pattern).float())
    assert expected["post.spikes"].sum() > 10


@pytest.mark.parametrize("option, message", [
    ("rate", "--input rate: expected NAME=FILE"),
    ("rate=x.csv", "--input rate=x.csv: not a file type snnc reads"),
    ("img=x.npy", "--input img=x.npy: unknown input 'img'"),
    ("rate=missing.npy", "--input rate: cannot read missing.npy"),
])
def test_bad_input_options_are_refused_before_running(driven, tmp_path, capsys, monkeypatch,
                                                      option, message):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(driven), "--input", option]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and "━" not in err


def test_an_input_of_the_wrong_shape_says_which_shapes_fit(driven, tmp_path, capsys):
    rate = tmp_path / "rate.npy"
    np.save(rate, np.zeros((30, 4)))
    assert main(["run", str(driven), "--input", f"rate={rate}"]) == 1
    err = capsys.readouterr().err
    assert f"--input rate: {rate} holds an array of shape [30, 4]; rate is [5]" in err
    assert "hint: give [5] (held for every step) or [30, 5] (one per step" in err


def test_an_input_header_claiming_too_much_is_refused_before_its_values_are_read(
        driven, tmp_path, capsys, monkeypatch):
    """A .npy header of [10,000,000, 5] float64 (400 MB) with no data behind it: refused
    from the header, by the memory limit, not by a failed read."""
    rate = tmp_path / "rate.npy"
    with rate.open("wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (10_000_000, 5)})
    monkeypatch.setenv("SNNC_MAX_MEMORY", "100M")
    assert main(["run", str(driven), "--steps", "10000000", "--input", f"rate={rate}"]) == 1
    err = capsys.readouterr().err
    assert f"--input rate: {rate} needs 381 MiB, more than the limit of 100 MiB" in err


def test_an_input_file_is_read_without_running_code_from_it(driven, tmp_path, capsys):
    """Pickled objects, in a .npy of dtype object or a .pt, are refused, never run."""
    ran = tmp_path / "ran"
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([Exploit(ran)] * 5, dtype=object), allow_pickle=True)
    assert main(["run", str(driven), "--input", f"rate={evil}"]) == 1
    assert "not numbers" in capsys.readouterr().err
    evil_pt = tmp_path / "evil.pt"
    torch.save({"x": Exploit(ran)}, evil_pt)
    assert main(["run", str(driven), "--input", f"rate={evil_pt}"]) == 1
    assert "is not a PyTorch file (torch.load: UnpicklingError)" in capsys.readouterr().err
    assert not ran.exists()


class Exploit:
    """Unpickling it would create the file `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))
