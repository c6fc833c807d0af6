"""The `snnc` command: output, formats and exit status (0 ok, 1 input error, 2 usage)."""
from __future__ import annotations

import json
import subprocess
import sys

import networkx as nx
import pytest

from conftest import net
from snnc import __version__
from snnc.cli import main
from snnc.limits import MAX_NESTING

GOOD = net("""input img[1, 28, 28]
    encoder s = poisson(img)
    population hidden[100] = LIF(tau = 2.0)
    population out[10] = LIF
    connect s -> hidden : flatten | dense
    connect hidden -> out : dense(bias = true)
    monitor out.spikes
    readout out = rate""", "mlp")


def snnc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "snnc", *args], capture_output=True, text=True,
                          cwd=cwd)


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.snn"
    path.write_text(GOOD)
    return path


def test_check_ok(good, capsys):
    assert main(["check", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: ok (mlp)\n"


def test_error_printed_like_a_compiler_without_traceback(tmp_path):
    bad = tmp_path / "bad.snn"
    bad.write_text("network n {\n    population hidden[10] = LIF\n    monitor hiden.v\n}\n")
    result = snnc("check", str(bad))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}:3:13: error: unknown population 'hiden' — did you mean 'hidden'?",
        "        monitor hiden.v",
        "                ^",
        "  hint: known: hidden",
    ]
    assert "Traceback" not in result.stderr


def test_missing_file_is_an_input_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.snn")]) == 1
    assert capsys.readouterr().err.strip() == f"error: no such file: {tmp_path / 'nope.snn'}"


def test_usage_errors_exit_2(good):
    assert snnc().returncode == 2
    assert snnc("frobnicate", str(good)).returncode == 2
    assert snnc("inspect", str(good), "--format", "yaml").returncode == 2
    assert snnc("check").returncode == 2


def test_version_and_help():
    result = snnc("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"snnc {__version__}"
    for command in ([], ["check"], ["inspect"]):
        result = snnc(*command, "--help")
        assert result.returncode == 0 and "usage: snnc" in result.stdout


def test_inspect_text_table(good, capsys):
    assert main(["inspect", str(good)]) == 0
    out = capsys.readouterr().out
    assert "network mlp" in out
    assert "│ hidden │ population │ [100]" in out
    assert "flatten -> [784] | dense(bias = false) -> [100]" in out
    # 784*100 + 100*10 + 10 bias; neurons 110; state 110 * 4 bytes
    assert "neurons 110  synapses 79,400  parameters 79,410  state memory per step 440 B" in out
    assert "schedule: img -> s -> hidden -> out" in out


def test_inspect_json_is_node_link_data(good, capsys):
    assert main(["inspect", str(good), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    graph = nx.node_link_graph(data, edges="links")
    assert isinstance(graph, nx.MultiDiGraph)
    assert sorted(graph.nodes) == ["hidden", "img", "out", "s"]
    assert graph.nodes["hidden"]["shape"] == [100]
    assert graph.nodes["hidden"]["node"]["equations"]["charge"] == ["v = v + (x - v) / 2"]
    assert data["graph"]["totals"]["parameters"] == 79410
    link = next(e for e in data["links"] if e["key"] == "s->hidden")
    assert [op["kind"] for op in link["conn"]["ops"]] == ["flatten", "dense"]


def test_inspect_dot(good, capsys):
    assert main(["inspect", str(good), "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('digraph "mlp" {')
    assert '"s" -> "hidden" [label="flatten | dense"];' in out
    assert '"hidden" [shape=ellipse, label="hidden\\nLIF [100]"];' in out


def test_inspect_one_network(tmp_path, capsys):
    path = tmp_path / "two.snn"
    path.write_text(net("population a[2] = LIF", "one") + net("population b[3] = IF", "two"))
    assert main(["inspect", str(path), "--network", "two", "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert '"b"' in out and '"a"' not in out


def test_allow_import_flag(tmp_path, capsys):
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    (lib_dir / "m.snn").write_text("neuron M() { state v = 0 charge v = x fire v >= 1 "
                                   "reset none }")
    main_dir = tmp_path / "main"
    main_dir.mkdir()
    path = main_dir / "n.snn"
    path.write_text('import "../lib/m.snn"\n' + net("population p[1] = M"))
    assert main(["check", str(path)]) == 1
    assert "refused" in capsys.readouterr().err
    assert main(["check", str(path), "-I", str(lib_dir)]) == 0


def test_binary_garbage_is_one_clean_error(tmp_path):
    path = tmp_path / "garbage.snn"
    path.write_bytes(bytes(range(256)) * 4)
    result = snnc("check", str(path))
    assert result.returncode == 1
    # byte 128 is the first invalid one; byte 10 ended line 1
    assert result.stderr.startswith(f"{path}:2:118: error: this file is not UTF-8 text")
    assert "Traceback" not in result.stderr


def test_parentheses_up_to_the_nesting_limit_are_fine(tmp_path, capsys):
    depth = MAX_NESTING - 1  # the network's own `{` is open too
    path = tmp_path / "parens.snn"
    path.write_text(net("steps = " + "(" * depth + "1" + ")" * depth))
    assert main(["check", str(path)]) == 0


def test_deep_nesting_is_one_clean_error(tmp_path):
    path = tmp_path / "deep.snn"
    path.write_text(net("steps = " + "abs(" * 20000 + "1" + ")" * 20000))
    result = snnc("check", str(path))
    assert result.returncode == 1
    assert "nested too deeply" in result.stderr
    assert "Traceback" not in result.stderr


def test_build_of_a_library_without_network_is_an_input_error(tmp_path, capsys):
    lib = tmp_path / "lib.snn"
    lib.write_text("neuron M() { state v = 0 charge v = x fire v >= 1 reset none }")
    assert main(["check", str(lib)]) == 0
    assert main(["build", str(lib)]) == 1
    assert "defines no network" in capsys.readouterr().err
    assert not (tmp_path / "lib.py").exists()
