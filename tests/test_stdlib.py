"""The standard library: every required model exists, checks, and folds."""
from __future__ import annotations

import pytest

from conftest import net
from snnc.check.neurons import backends_of, check_neuron
from snnc.frontend.loader import stdlib_models

REQUIRED = ["IF", "LIF", "PLIF", "RIF", "CubaLIF", "Izhikevich", "Tempotron", "ILCIF", "ILCLIF",
            "ILCCubaLIF", "SFIF", "SFLIF"]


def test_required_models_are_present_and_valid():
    models = stdlib_models()
    assert set(REQUIRED) <= set(models)
    for defn in models.values():
        check_neuron(defn)


@pytest.mark.parametrize("name", REQUIRED)
def test_each_model_builds_a_population(compile_text, name):
    body = f"input i[8]\npopulation p[8] = {name}\nconnect i -> p : dense"
    (g,) = compile_text(net(body))
    pop = g.nodes["p"]["node"]
    assert pop.equations is not None
    assert g.graph["backend"] == ("event" if name == "Tempotron" else "softbp")
    # stepped models run on the event backend too where they are linear below threshold
    linear = {"IF", "LIF", "PLIF", "RIF", "CubaLIF", "ILCIF", "ILCLIF", "ILCCubaLIF"}
    expected = ("event",) if name == "Tempotron" else \
        ("clock", "softbp", "event") if name in linear else ("clock", "softbp")
    assert backends_of(pop.model) == expected


def test_lif_matches_the_specification_signature():
    lif = stdlib_models()["LIF"]
    assert [p.name for p in lif.params] == ["tau", "v_threshold", "v_reset", "v_rest",
                                           "decay_input"]


def test_ilc_feedback_group_must_divide_the_population(compile_text, error_of):
    (g,) = compile_text(net("population p[12] = ILCLIF(dec_pop_dim = 4)"))
    pop = g.nodes["p"]["node"]
    assert pop.feedback_group == 4
    # grouped conv1d(3 -> 12, kernel 4, groups 3): 12 * 1 * 4 weights + 12 biases
    assert pop.parameter_count() == 12 * 4 + 12
    err = error_of(net("population p[10] = ILCIF(dec_pop_dim = 4)"))
    assert err.message == "ILCIF groups 4 neurons per feature, which does not divide 'p' [10]"


def test_spikingflow_neurons_clip_and_spike_a_step_late(compile_text):
    from snnc.printers import to_snn
    (g,) = compile_text(net("population p[2] = SFLIF(r = 9.0, tau = 20.0)"))
    charge = [f"{a.target} = {to_snn(a.value)}" for a in g.nodes["p"]["node"].equations.charge]
    assert charge == ["out = due", "v = if(due, 0, v)", "v = v + (9 * x - v) / 20",
                      "due = v >= 1", "v = clamp(v, 0, 1)"]


def test_state_init_override(compile_text):
    from snnc.ir.values import Uniform
    (g,) = compile_text(net("population p[2] = Izhikevich(v_init = uniform(-70, -60), "
                            "u_init = -14)"))
    assert g.nodes["p"]["node"].state_init == {"v": Uniform(-70.0, -60.0), "u": -14}
