"""The IR on its own: importable without the front end or the checker, and a graph made
of IR nodes alone (as a NIR import will make one) renders and runs."""
import hashlib
import subprocess
import sys

import torch

from snnc.codegen import render
from snnc.compiler import analyse
from snnc.errors import Pos
from snnc.ir import expr as ex
from snnc.ir.graph import to_graph
from snnc.ir.nodes import STDLIB, Connection, Input, Model, Network, Op, Population
from snnc.ir.values import Spec
from snnc.passes import fold_constants, schedule

HERE = Pos("<memory>", 1, 1)


def test_ir_imports_without_the_front_end_or_the_checker():
    code = ("import sys, snnc.ir, snnc.ir.nodes, snnc.ir.expr, snnc.ir.values\n"
            "loaded = sorted(m for m in sys.modules if m.startswith(('snnc.check', "
            "'snnc.frontend', 'snnc.backends', 'snnc.passes', 'torch', 'lark')))\n"
            "print(loaded)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def _leaky() -> Model:
    """v = v + (x - v) / tau; fire v >= v_th; reset to 0: written as IR, not parsed."""
    v, x, tau = ex.Name("v"), ex.Name("x"), ex.Name("tau")
    charge = ex.Assign("v", ex.Binary("+", v, ex.Binary("/", ex.Binary("-", x, v), tau)))
    return Model(name="Leaky", origin="memory", params=(("tau", ex.Number(2.0)),
                                                       ("v_th", ex.Number(1.0))),
                 states=("v",), charge=(charge,), fire=ex.Binary(">=", v, ex.Name("v_th")),
                 reset=(ex.Assign("v", ex.Number(0.0)),), threshold=("v", ex.Name("v_th")),
                 kernel=None, pos=HERE)


def _network() -> Network:
    pop = Population("p", (3,), _leaky(), params={"tau": 2.0, "v_th": 1.0}, learnable={},
                     state_init={"v": 0.0}, surrogate=Spec("sigmoid", {"alpha": 4.0}),
                     detach_reset=False, refractory=0, reset="block", feedback_group=None,
                     pos=HERE)
    conn = Connection("i->p", "i", "p", [Op("one_to_one", {"w": 1.0}, (3,), (3,), HERE)], 0,
                      None, None, (3,), (3,), HERE)
    return Network("made", None, 1.0, 4, "softbp", 0, [Input("i", (3,), HERE)], [], [pop],
                   [conn], [], None, HERE)


def test_a_graph_that_never_came_from_a_file_renders_and_runs():
    graph = schedule(fold_constants(to_graph(_network())))
    class_name, source = render(graph)
    assert "sha256" not in source.splitlines()[1] and "a graph built in memory" in source
    module: dict = {}
    exec(compile(source, "<made>", "exec"), module)
    net = module[class_name]()
    x = torch.tensor([[0.6, 1.0, 2.5]])
    spikes = net(i=x)
    # by hand: v_t = v + (x - v) / 2 from 0, a spike at v >= 1 resets to 0
    expected = []
    v = torch.zeros(3)
    for _ in range(4):
        v = v + (x[0] - v) / 2
        s = (v >= 1).float()
        v = torch.where(s > 0, torch.zeros(3), v)
        expected.append(s)
    assert torch.equal(spikes[:, 0], torch.stack(expected))
    assert spikes.sum() > 0


def test_a_population_records_where_its_model_came_from(tmp_path):
    (tmp_path / "mine.snn").write_text(
        "neuron LIF(tau = 2.0) { state v = 0 charge v = v + x / tau fire v >= 1 reset none }\n"
        "network n { input i[2]\n population mine[2] = LIF()\n connect i -> mine }\n")
    (tmp_path / "std.snn").write_text(
        "network n { input i[2]\n population std[2] = LIF()\n connect i -> std }\n")
    (_, (mine,)) = analyse(tmp_path / "mine.snn")
    (_, (std,)) = analyse(tmp_path / "std.snn")
    shadowing, stdlib = mine.nodes["mine"]["node"].model, std.nodes["std"]["node"].model
    assert (shadowing.name, stdlib.name) == ("LIF", "LIF")
    assert shadowing.origin.endswith("mine.snn") and stdlib.origin == STDLIB
    assert shadowing.states == ("v",) and "v" in stdlib.states
    assert shadowing != stdlib


def test_the_header_hashes_every_file_the_network_was_loaded_from(tmp_path):
    (tmp_path / "lib.snn").write_text(
        "neuron Mine() { state v = 0 charge v = v + x fire v >= 1 reset none }\n")
    main = tmp_path / "main.snn"
    main.write_text('import "lib.snn"\nnetwork n { input i[2]\n population p[2] = Mine()\n'
                    ' connect i -> p }\n')
    (_, (graph,)) = analyse(main)
    _, source = render(graph)
    lines = source.splitlines()
    digest = hashlib.sha256(main.read_bytes()).hexdigest()
    lib_digest = hashlib.sha256((tmp_path / "lib.snn").read_bytes()).hexdigest()
    assert lines[1] == f"# source sha256: {digest}"
    assert lines[2] == f"# imports lib.snn, sha256: {lib_digest}"
