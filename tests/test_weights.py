"""`weights "FILE"` (docs/EXTENSIONS.md): a network's parameters and buffers loaded from a
state_dict file when a module is made, on every backend, never running code from it."""
from __future__ import annotations

import pickle

import pytest
import torch

import snnc
from snnc.cli import main

NET = """network a {{
    steps = 5
    {weights}
    input x[3]
    population h[4] = LIF(tau = 2.0)
    connect x -> h : dense(bias = true)
}}
"""


def write(tmp_path, weights: str = "") -> str:
    path = tmp_path / "a.snn"
    path.write_text(NET.format(weights=weights))
    return str(path)


@pytest.fixture
def saved(tmp_path):
    """A state_dict of the network with weights no seed would draw."""
    state = {k: torch.arange(v.numel(), dtype=torch.float32).reshape(v.shape) / 7
             for k, v in snnc.compile(write(tmp_path))().state_dict().items()}
    torch.save(state, tmp_path / "w.pt")
    return state


@pytest.mark.parametrize("backend", ["softbp", "clock", "event"])
def test_every_backend_loads_the_file(tmp_path, saved, backend):
    net = snnc.compile(write(tmp_path, 'weights "w.pt"'), backend=backend)()
    assert net.state_dict().keys() == saved.keys()
    for key, value in saved.items():
        assert torch.equal(net.state_dict()[key], value)


def test_loaded_weights_are_still_learnable(tmp_path, saved):
    net = snnc.compile(write(tmp_path, 'weights "w.pt"'))()
    net(torch.ones(5, 1, 3) * 3).sum().backward()
    assert net.connection("x->h").ops[0].weight.grad is not None


def _refused(tmp_path, capsys, *needles, at="a.snn:3:5"):
    out = tmp_path / "a.py"
    assert main(["build", str(tmp_path / "a.snn"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and at in err and "^" in err
    for needle in needles:
        assert needle in err
    assert not out.exists()


def test_a_file_that_does_not_fit_is_refused_at_build(tmp_path, saved, capsys):
    torch.save({"x": torch.zeros(2)}, tmp_path / "w.pt")
    write(tmp_path, 'weights "w.pt"')
    _refused(tmp_path, capsys, "missing connections.x->h.ops.0.bias", "unknown x")


def test_a_shape_that_does_not_fit_is_refused_at_build(tmp_path, saved, capsys):
    torch.save({**saved, "connections.x->h.ops.0.weight": torch.zeros(4, 5)}, tmp_path / "w.pt")
    write(tmp_path, 'weights "w.pt"')
    _refused(tmp_path, capsys, "has shape [4, 5], the network needs [4, 3]")


class _Boom:
    def __reduce__(self):  # a pickle that would run code if unpickled freely
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path, capsys,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "w.pt", "wb") as file:
        pickle.dump({"connections.x->h.ops.0.weight": _Boom()}, file)
    write(tmp_path, 'weights "w.pt"')
    _refused(tmp_path, capsys, "is not a PyTorch state_dict file")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("data", [b"", b"hello", bytes(range(256)) * 4])
def test_junk_is_refused(tmp_path, capsys, data):
    (tmp_path / "w.pt").write_bytes(data)
    write(tmp_path, 'weights "w.pt"')
    _refused(tmp_path, capsys, "is not a PyTorch state_dict file")


def test_paths_follow_the_import_rules(tmp_path, capsys):
    write(tmp_path, 'weights "/etc/passwd"')
    _refused(tmp_path, capsys, "refused: an absolute path")
    write(tmp_path, 'weights "../w.pt"')
    _refused(tmp_path, capsys, "outside the folder of the main file")
    write(tmp_path, 'weights "none.pt"')
    _refused(tmp_path, capsys, "no such file")
    (tmp_path / "dir.pt").mkdir()
    write(tmp_path, 'weights "dir.pt"')
    _refused(tmp_path, capsys, "is a folder")


def test_twice_is_an_error_and_weights_stays_a_name_elsewhere(tmp_path, saved, capsys):
    write(tmp_path, 'weights "w.pt"; weights "w.pt"')
    _refused(tmp_path, capsys, "'weights' is given twice", at="a.snn:3:21")
    text = NET.format(weights="").replace("population h", "population weights").replace(
        "x -> h", "x -> weights")
    (tmp_path / "b.snn").write_text(text)
    assert snnc.compile(tmp_path / "b.snn")().populations["weights"] is not None


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_being_opened(tmp_path):
    """torch.load on a FIFO would wait for a writer forever (snnc export --weights)."""
    import os

    from snnc.runtime.weights import WeightsError, read_state_dict
    os.mkfifo(tmp_path / "w.pt")
    with pytest.raises(WeightsError, match="not a regular file"):
        read_state_dict(tmp_path / "w.pt")
