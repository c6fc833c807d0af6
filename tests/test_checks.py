"""The check stage: one test per class of user error, asserting its message and position."""
from __future__ import annotations

import pytest

from conftest import net
from snnc.ir.values import Uniform

POPS = "population a[10] = LIF\npopulation b[10] = LIF\n"


def where(err):
    return err.line, err.col


# ------------------------------------------------------------------ unknown names
def test_misspelt_population_gets_suggestion(error_of):
    err = error_of(net("input img[784]\npopulation hidden[800] = LIF\n"
                       "connect img -> hiden : dense"))
    assert err.message == "unknown population 'hiden' — did you mean 'hidden'?"
    assert where(err) == (4, 16)


@pytest.mark.parametrize("body, message, pos", [
    ("population a[3] = LIFF", "unknown neuron model 'LIFF' — did you mean 'LIF'?", (2, 19)),
    (POPS + "connect a -> b : dense_", "unknown op 'dense_' — did you mean 'dense'?", (4, 18)),
    ("input i[3]\nencoder e = poison(i)", "unknown encoder 'poison' — did you mean 'poisson'?",
     (3, 13)),
    (POPS + "connect a -> b via exp_curent(tau = 2)",
     "unknown synapse 'exp_curent' — did you mean 'exp_current'?", (4, 20)),
    (POPS + "connect a -> b : dense learn stpd",
     "unknown learning rule 'stpd' — did you mean 'stdp'?", (4, 30)),
    (POPS + "readout b = rates", "unknown readout 'rates' — did you mean 'rate'?", (4, 13)),
    ("population a[3] = LIF(surrogate = atann(alpha = 2))",
     "unknown surrogate 'atann' — did you mean 'atan'?", (2, 35)),
    ("step = 100", "unknown setting 'step' — did you mean 'steps'?", (2, 1)),
    ("population a[3] = LIF(tua = 2.0)",
     "unknown parameter 'tua' of LIF — did you mean 'tau'?", (2, 23)),
    (POPS + "monitor a.vv", "unknown variable 'vv' of 'a' — did you mean 'v'?", (4, 9)),
    ("population a[3] = LIF(v_init = unifrom(0, 1))",
     "unknown function 'unifrom' — did you mean 'uniform'?", (2, 32)),
])
def test_unknown_names(error_of, body, message, pos):
    err = error_of(net(body))
    assert err.message == message
    assert where(err) == pos


def test_unknown_parameter_lists_accepted_ones(error_of):
    err = error_of(net("population a[3] = LIF(bogus = 1)"))
    assert err.message == "unknown parameter 'bogus' of LIF"
    assert err.hint.startswith("LIF accepts: tau, v_threshold, v_reset, v_rest, decay_input, "
                               "surrogate, detach_reset, refractory, reset, v_init")


# ------------------------------------------------------------------ wrong types and ranges
@pytest.mark.parametrize("body, message, pos", [
    (POPS + "connect a -> b : dense(bias = 1)", "dense(): 'bias' takes true or false, got a "
     "number (1)", (4, 31)),
    (POPS + "connect a -> b : scale(c = true)", "scale(): 'c' takes a number, got a boolean "
     "(true)", (4, 28)),
    (POPS + "connect a -> b : maxpool(k = 2.5)", "maxpool(): 'k' must be a whole number, "
     "got 2.5", (4, 30)),
    ("population a[3] = LIF(detach_reset = 2)", "LIF(): 'detach_reset' takes true or false, "
     "got a number (2)", (2, 38)),
    ("population a[3] = LIF(tau = uniform(1, 2))", "LIF(): 'tau' takes a number or true/false,"
     " got a random distribution", (2, 29)),
    ("backend = gpu", "unknown value 'gpu' of network(): 'backend'", (2, 11)),
])
def test_wrong_types(error_of, body, message, pos):
    err = error_of(net(body))
    assert err.message.startswith(message)
    assert where(err) == pos


@pytest.mark.parametrize("body, message, pos", [
    ("population a[3] = LIF(tau = -2.0)", "LIF(): 'tau' is a time constant and must be "
     "positive, got -2", (2, 29)),
    ("population a[3] = LIF(tau = 0 ms)", "LIF(): 'tau' is a time constant and must be "
     "positive, got 0", (2, 29)),
    (POPS + "connect a -> b via exp_current(tau = -5 ms)", "exp_current(): 'tau' must be "
     "positive (a time constant), got -5", (4, 38)),
    (POPS + "connect a -> b : dense learn stdp(tau_pre = -1)", "stdp(): 'tau_pre' must be "
     "positive (a time constant), got -1", (4, 45)),
])
def test_negative_time_constants(error_of, body, message, pos):
    err = error_of(net(body))
    assert err.message == message
    assert where(err) == pos


@pytest.mark.parametrize("shape, message", [
    ("0", "the shape of population 'a' needs whole sizes >= 1, got 0"),
    ("-3", "the shape of population 'a' needs whole sizes >= 1, got -3"),
    ("2.5", "the shape of population 'a' needs whole sizes >= 1, got 2.5"),
    ("100000, 100000", "population 'a' is too large: 10000000000 elements"),
])
def test_bad_sizes(error_of, shape, message):
    err = error_of(net(f"population a[{shape}] = LIF"))
    assert err.message == message
    assert where(err) == (2, 14)


@pytest.mark.parametrize("body, message, pos", [
    (POPS + "connect a -> b : sparse(p = 1.5)", "sparse(): 'p' is a probability and must lie "
     "in [0, 1], got 1.5", (4, 29)),
    (POPS + "connect a -> b : dropout(-0.1)", "dropout(): 'p' is a probability and must lie in"
     " [0, 1], got -0.1", (4, 26)),
    ("encoder e[3] = poisson(rate = 2000 Hz)", "poisson(): 'rate' is a probability and must "
     "lie in [0, 1], got 2", (2, 31)),
])
def test_probabilities_outside_unit_interval(error_of, body, message, pos):
    err = error_of(net(body))
    assert err.message == message
    assert where(err) == pos


@pytest.mark.parametrize("delay, message", [
    ("-1", "a delay cannot be negative, got -1 steps"),
    ("-2 ms", "a delay cannot be negative, got -2 steps"),
    ("uniform(-3, 2)", "a delay cannot be negative, got -3 steps"),
])
def test_negative_delays(error_of, delay, message):
    err = error_of(net(POPS + f"connect a -> b delay {delay}"))
    assert err.message == message
    assert where(err) == (4, 22)


def test_huge_numbers_are_refused(error_of):
    err = error_of(net("population a[3] = LIF(v_threshold = 1e999)"))
    assert err.message == "number too large: inf"
    assert where(err) == (2, 37)
    err = error_of(net("steps = 99999999999999999999999999999999999"))
    assert err.message.startswith("number too large")


def test_division_by_zero_in_a_setting(error_of):
    err = error_of(net("steps = 1 / 0"))
    assert err.message == "division by zero"
    assert where(err) == (2, 13)


# ------------------------------------------------------------------ units
def test_units_convert_with_dt(compile_text):
    (g,) = compile_text(net("""dt = 0.1 ms
        input i[5]
        encoder e = poisson(rate = 15 Hz)
        encoder e2[5] = poisson(rate = 15 Hz)
        population a[5] = LIF(tau = 20 ms, refractory = 2 ms)
        connect i -> a delay 1.5 ms via exp_current(tau = 5 ms)
        connect e2 -> a as x delay uniform(1 ms, 2 ms)""").replace("encoder e = poisson(rate "
                                                                   "= 15 Hz)\n", ""))
    a = g.nodes["a"]["node"]
    assert a.params["tau"] == pytest.approx(200.0)
    assert a.refractory == 20
    e2 = g.nodes["e2"]["node"]
    assert e2.spec.params["rate"] == pytest.approx(0.0015)
    conns = {c.name: c for _, _, c in g.edges(data="conn")}
    assert conns["i->a"].delay == 15
    assert conns["i->a"].synapse.params["tau"] == pytest.approx(50.0)
    assert conns["x"].delay == Uniform(10, 20)


def test_unitless_time_is_steps(compile_text):
    (g,) = compile_text(net("dt = 0.5 ms\npopulation a[2] = LIF(tau = 2.0)"))
    assert g.nodes["a"]["node"].params["tau"] == 2.0
    assert g.graph["dt_ms"] == 0.5


def test_rate_where_time_expected(error_of):
    err = error_of(net(POPS + "connect a -> b via exp_current(tau = 5 Hz)"))
    assert err.message == "expected a time, got a rate (5 Hz)"
    assert where(err) == (4, 38)


# ------------------------------------------------------------------ shapes
def test_conv_pool_flatten_dense_inferred_from_targets(compile_text):
    (g,) = compile_text(net("""input img[3, 32, 32]
        population c1[64, 32, 32] = LIF
        population c2[128, 16, 16] = LIF
        population fc[10] = LIF
        connect img -> c1 : conv2d(k = 3, pad = 1) | batchnorm
        connect c1 -> c2 : conv2d(k = 3) | maxpool(2) | batchnorm
        connect c2 -> fc : maxpool(4) | flatten | dense"""))
    conns = {c.name: c for _, _, c in g.edges(data="conn")}
    assert [op.out_shape for op in conns["c1->c2"].ops] == [(128, 32, 32), (128, 16, 16),
                                                            (128, 16, 16)]
    assert [op.out_shape for op in conns["c2->fc"].ops] == [(128, 4, 4), (2048,), (10,)]
    assert conns["img->c1"].ops[0].parameter_count() == 64 * 3 * 9


def test_conv_then_flatten_infers_channels(compile_text):
    (g,) = compile_text(net("input img[1, 8, 8]\npopulation p[128] = LIF\n"
                            "connect img -> p : conv2d(k = 3, pad = 1) | maxpool(2) | flatten"))
    ops = next(iter(g.edges(data="conn")))[2].ops
    assert ops[0].out_shape == (8, 8, 8)


@pytest.mark.parametrize("body, message, pos", [
    ("input img[1, 28, 28]\npopulation h[800] = LIF\nconnect img -> h : dense",
     "shape mismatch in 'img->h': the ops produce [1, 28, 800] but 'h' has shape [800]",
     (4, 20)),
    ("input img[784]\npopulation h[8, 4, 4] = LIF\nconnect img -> h : conv2d",
     "`conv2d` expects [C, H, W] input, but gets [784] from 'img' in 'img->h'", (4, 20)),
    ("input img[3, 8, 8]\npopulation h[4, 9, 9] = LIF\nconnect img -> h : conv2d | maxpool(2)",
     "shape mismatch in 'img->h': the ops produce [4, 4, 4] but 'h' has shape [4, 9, 9]",
     (4, 29)),
    (POPS.replace("b[10]", "b[7]") + "connect a -> b",
     "connection 'a->b' has no ops, so 'a' [10] and 'b' [7] must have the same shape", (4, 9)),
    ("input img[3, 2, 2]\npopulation h[3, 1, 1] = LIF\nconnect img -> h : maxpool(3)",
     "`maxpool` kernel 3 does not fit an axis of size 2 (padding 0), but gets [3, 2, 2] from "
     "'img' in 'img->h'", (4, 20)),
    (POPS + "connect a -> b : dense | dense",
     "cannot infer the output size of `dense` in 'a->b': only the last sizing op takes its "
     "size from the target", (4, 18)),
])
def test_shape_mismatches_name_both_shapes_and_op(error_of, body, message, pos):
    err = error_of(net(body))
    assert err.message == message
    assert where(err) == pos


def test_explicit_out_allows_two_sizing_ops(compile_text):
    (g,) = compile_text(net(POPS + "connect a -> b : dense(out = 32) | dense"))
    ops = next(iter(g.edges(data="conn")))[2].ops
    assert [op.out_shape for op in ops] == [(32,), (10,)]


def test_encoder_shapes_are_inferred(compile_text):
    (g,) = compile_text(net("input x[4]\ninput pat[20, 6]\n"
                            "encoder g = gaussian_tuning(x, m = 5)\nencoder p = periodic(pat)"))
    assert g.nodes["g"]["shape"] == (4, 5)
    assert g.nodes["p"]["shape"] == (6,)


# ------------------------------------------------------------------ cycles
def test_cycle_without_delay_is_named(error_of):
    err = error_of(net("population a[3] = LIF\npopulation b[3] = LIF\npopulation c[3] = LIF\n"
                       "connect a -> b\nconnect b -> c\nconnect c -> a"))
    assert err.message == "cycle without delay: a -> b -> c -> a"
    assert where(err) == (5, 9)


def test_self_loop_without_delay(error_of):
    err = error_of(net("population a[3] = LIF\nconnect a -> a"))
    assert err.message == "cycle without delay: a -> a"


def test_cycle_with_a_delay_is_fine_and_scheduled(compile_text):
    (g,) = compile_text(net("population a[3] = LIF\npopulation b[3] = LIF\n"
                            "connect b -> a delay 1\nconnect a -> b"))
    assert g.graph["schedule"] == ["a", "b"]


def test_uniform_delay_starting_at_zero_counts_as_zero(error_of):
    err = error_of(net(POPS + "connect a -> b delay uniform(0, 3)\nconnect b -> a"))
    assert err.message == "cycle without delay: a -> b -> a"


# ------------------------------------------------------------------ duplicates, structure
def test_duplicate_declarations(error_of):
    err = error_of(net("population a[3] = LIF\ninput a[3]"))
    assert err.message == "'a' is declared twice in network t"
    assert where(err) == (3, 7)
    assert err.hint == "first declared at line 2"


def test_duplicate_connection_needs_alias(error_of, compile_text):
    err = error_of(net(POPS + "connect a -> b\nconnect a -> b : scale(2)"))
    assert err.message == "connection 'a->b' is declared twice"
    assert "as NAME" in err.hint
    (g,) = compile_text(net(POPS + "connect a -> b\nconnect a -> b as twice : scale(2)"))
    assert sorted(k for _, _, k in g.edges(keys=True)) == ["a->b", "twice"]


def test_connection_into_an_input_is_refused(error_of):
    err = error_of(net("input i[3]\npopulation a[3] = LIF\nconnect a -> i"))
    assert err.message == "'i' is an input; connections end at populations"


def test_learning_needs_a_weighted_op(error_of):
    err = error_of(net(POPS + "connect a -> b learn stdp"))
    assert err.message == "learn stdp needs exactly one op with weights in 'a->b'"
    assert where(err) == (4, 22)


def test_voting_must_divide(error_of):
    err = error_of(net(POPS + "readout b = voting(3)"))
    assert err.message == "voting(3) needs the last axis of 'b' [10] to be divisible by 3"


def test_backend_that_cannot_run_a_model_names_the_one_that_can(error_of):
    err = error_of(net("backend = softbp\ninput i[4]\npopulation o[2] = Tempotron\n"
                       "connect i -> o : dense"))
    assert err.message == "the softbp backend cannot run Tempotron (population 'o')"
    assert err.hint == "Tempotron runs on the event backend"
    assert where(err) == (2, 1)


def test_event_only_network_defaults_to_event_backend(compile_text):
    (g,) = compile_text(net("input i[4]\npopulation o[2] = Tempotron\nconnect i -> o : dense"))
    assert g.graph["backend"] == "event"


# ------------------------------------------------------------------ neuron definitions
@pytest.mark.parametrize("model, message, pos", [
    ("neuron N() { state v = 0 charge w = x fire v > 1 reset none }",
     "'w' is assigned but is not a state of N", (1, 33)),
    ("neuron N() { state v = 0 charge v = v + y fire v > 1 reset none }",
     "unknown name 'y' of the update of 'v' of N", (1, 41)),
    ("neuron N() { state v = 0 charge v = x reset none }", "neuron N has no `fire` condition",
     (1, 8)),
    ("neuron N(v_threshold = 1) { state v = 0 charge v = x fire v > 1 reset hard }",
     "`reset hard` sets the state to `v_reset`, which this neuron lacks", (1, 71)),
    ("neuron N() { state v = 0 charge v = x fire v > 1 reset hrad }",
     "unknown reset 'hrad' — did you mean 'hard'?", (1, 56)),
    ("neuron N(x = 1) { state v = 0 charge v = x fire v > 1 }",
     "'x' is the neuron's input current and cannot be redefined", (1, 10)),
    ("neuron N() { state v = 0 state v = 1 charge v = x fire v > 1 }",
     "'v' is declared twice in neuron N", (1, 32)),
    ("neuron N() { state v = 0 charge v = exp(x, 2) fire v > 1 }",
     "exp() takes 1 argument, got 2", (1, 37)),
])
def test_neuron_definition_errors(error_of, model, message, pos):
    err = error_of(model + "\n" + net("population p[2] = N"))
    assert err.message == message
    assert where(err) == pos


def test_model_arguments_that_break_its_formulas_are_reported_at_the_population(error_of):
    err = error_of(net("population p[2] = PLIF(init_tau = 0.5)"))
    assert err.message == "with these arguments, PLIF: log() is undefined for -0.5"
    assert where(err) == (2, 19)


# ------------------------------------------------------------------ imports
def test_relative_import(tmp_path, compile_text):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "models.snn").write_text(
        "neuron Mine(k = 0.5) { state v = 0 charge v = v * k + x fire v >= 1 reset soft }")
    (g,) = compile_text('import "lib/models.snn"\n' + net("population p[2] = Mine(k = 0.25)"))
    assert g.nodes["p"]["node"].model.name == "Mine"
    assert g.nodes["p"]["node"].reset == "soft"


def test_absolute_import_is_refused_unless_allowed(tmp_path, error_of, compile_text):
    other = tmp_path.parent / f"{tmp_path.name}_other"
    other.mkdir()
    lib = other / "lib.snn"
    lib.write_text("neuron Mine() { state v = 0 charge v = x fire v >= 1 reset none }")
    text = f'import "{lib}"\n' + net("population p[2] = Mine")
    err = error_of(text)
    assert err.message == f"import of {str(lib)!r} refused: an absolute path"
    assert where(err) == (1, 8)
    assert err.hint == f"allow its folder on the command line: -I {other}"
    (g,) = compile_text(text, allowed=[other])
    assert "p" in g.nodes


def test_out_of_tree_import_is_refused(tmp_path, error_of):
    err = error_of('import "../../etc/passwd"\n' + net("steps = 1"))
    assert err.message == "import of '../../etc/passwd' refused: outside the folder of the " \
                          "main file"


def test_error_in_imported_file_names_that_file(tmp_path, error_of):
    (tmp_path / "bad.snn").write_text("neuron Bad( { }")
    err = error_of('import "bad.snn"\n' + net("steps = 1"))
    assert err.file.endswith("bad.snn") and (err.line, err.col) == (1, 13)
    assert "neuron Bad( { }" in err.render()


@pytest.mark.parametrize("f_w, kind", [("1", "additive"), ("additive", "additive"),
                                       ("multiplicative", "multiplicative")])
def test_stdp_weight_function(compile_text, f_w, kind):
    (g,) = compile_text(net(POPS + f"connect a -> b : dense learn stdp(f_w = {f_w})"))
    assert g.edges["a", "b", "a->b"]["conn"].rule.params["f_w"].name == kind


def test_stdp_weight_function_unknown(error_of):
    err = error_of(net(POPS + "connect a -> b : dense learn stdp(f_w = abs)"))
    assert err.message == "unknown value 'abs' of stdp(): 'f_w'"


@pytest.mark.parametrize("charge", ["1 / 0", "10 ** 400", "0 ** -1", "(-8) ** 0.5",
                                    "v + 1 / m"])
def test_constant_arithmetic_errors_in_a_model_are_errors_at_their_place(error_of, charge):
    err = error_of(f"neuron N(m = 0) {{ state v = 0 charge v = {charge} fire v >= 1 }}\n"
                   + net("population a[1] = N"))
    assert err.pos.line == 1 and err.pos.col >= 31  # inside the charge


@pytest.mark.parametrize("body", ["population a[1] = LIF(refractory = 1e999 ms)",
                                  "dt = 1e-320 ms\npopulation a[1] = LIF(refractory = 1 ms)",
                                  POPS + "connect a -> b via exp_current(tau = 1e999 s)"])
def test_infinite_times_are_refused(error_of, body):
    assert error_of(net(body)).message.startswith("number too large")


def test_inferred_encoder_shape_is_bounded(error_of):
    err = error_of(net("input i[4]\nencoder g = gaussian_tuning(i, m = 999999999)"))
    assert err.message == "encoder 'g' is too large: 3999999996 elements"
