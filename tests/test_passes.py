"""Graph IR and passes: constant folding and the schedule."""
from __future__ import annotations

import networkx as nx
import pytest

from conftest import net
from snnc.printers import to_snn


def equations(graph, name):
    eq = graph.nodes[name]["node"].equations
    return ([f"{a.target} = {to_snn(a.value)}" for a in eq.charge], to_snn(eq.fire),
            [f"{a.target} = {to_snn(a.value)}" for a in eq.reset])


@pytest.mark.parametrize("args, charge", [
    ("", "v = v + (x - v) / 2"),                                   # v_reset = v_rest = 0 folded
    ("decay_input = false", "v = v - v / 2 + x"),
    ("tau = 4.0, v_reset = -1.0", "v = v + (x - (v + 1)) / 4"),
    ("v_rest = 0.5, decay_input = false", "v = v - (v - 0.5) / 2 + x"),
])
def test_lif_folds_to_a_specialised_update(compile_text, args, charge):
    (g,) = compile_text(net(f"population p[2] = LIF({args})"))
    assert equations(g, "p")[0] == [charge]


def test_reset_kinds_spelt_out(compile_text):
    (g,) = compile_text(net("population h[2] = LIF(v_reset = -0.5)\n"
                            "population s[2] = LIF(reset = soft, v_threshold = 2)\n"
                            "population n[2] = IF(reset = none)\n"
                            "population z[2] = Izhikevich(d = 6)"))
    assert equations(g, "h")[2] == ["v = -0.5"]
    assert equations(g, "s")[1:] == ("v >= 2", ["v = v - 2"])
    assert equations(g, "n")[2] == []
    assert equations(g, "z")[2] == ["v = -65", "u = u + 6"]


def test_learnable_params_stay_symbolic(compile_text):
    (g,) = compile_text(net("population p[2] = PLIF(init_tau = 3.0)"))
    pop = g.nodes["p"]["node"]
    assert pop.learnable == {"w": pytest.approx(-0.6931471805599453)}
    assert equations(g, "p")[0] == ["v = v + (x - v) * sigmoid(w)"]


def test_kernel_model_folds_its_normalisation(compile_text):
    (g,) = compile_text(net("input i[3]\npopulation o[1] = Tempotron(tau = 2.0, tau_s = 1.0)\n"
                            "connect i -> o : dense"))
    pop = g.nodes["o"]["node"]
    kernel = pop.equations.kernel
    # K(t) = v0 (exp(-t/2) - exp(-t)) peaks at t = 2 ln 2 with value 1.
    assert pop.params["t_peak"] == pytest.approx(2 * 0.6931471805599453)
    assert to_snn(kernel).startswith("4 * (exp(-t / 2) - exp(-t))")


def test_dt_in_a_model_is_the_step_in_ms(compile_text):
    (g,) = compile_text("neuron D() { state v = 0 charge v = v + dt * x fire v >= 1 reset none }"
                        + net("dt = 0.25 ms\npopulation p[1] = D"))
    assert equations(g, "p")[0] == ["v = v + 0.25 * x"]


def test_schedule_is_topological_over_zero_delay_edges(compile_text):
    (g,) = compile_text(net("""input img[4]
        encoder e = poisson(img)
        population c[4] = LIF
        population b[4] = LIF
        population a[4] = LIF
        connect e -> c
        connect c -> b
        connect b -> a
        connect a -> c as back delay 1"""))
    assert g.graph["schedule"] == ["img", "e", "c", "b", "a"]


def test_graph_is_a_digraph_with_parallel_named_connections(compile_text):
    (g,) = compile_text(net("population a[3] = LIF\npopulation b[3] = LIF\n"
                            "connect a -> b\nconnect a -> b as two : scale(-1)"))
    assert isinstance(g, nx.DiGraph)
    assert g.number_of_edges("a", "b") == 2
    assert g.edges["a", "b", "two"]["conn"].ops[0].kind == "scale"


def test_several_networks_and_choosing_one(compile_text):
    text = net("population a[3] = LIF", "first") + net("population b[3] = IF", "second")
    assert [g.graph["name"] for g in compile_text(text)] == ["first", "second"]
    (g,) = compile_text(text, network="second")
    assert list(g.nodes) == ["b"]


def test_unknown_network_name(error_of):
    err = error_of(net("steps = 1", "mnist"), network="mnsit")
    assert err.message == "unknown network 'mnsit' — did you mean 'mnist'?"


def test_model_default_with_a_unit_converts_with_the_networks_dt(compile_text):
    (g,) = compile_text("neuron Slow(tau = 20 ms) { state v = 0 charge v = v - v / tau + x "
                        "fire v >= 1 reset none }" + net("dt = 0.5 ms\npopulation p[1] = Slow"))
    assert g.nodes["p"]["node"].params["tau"] == 40.0
