"""Hostile and odd input to the front end (issue 8): every one is an SnnError with a position,
found in bounded time and memory, before anything is built.

Each input is written to a file under tmp_path and goes through `snnc.compiler.frontend`
(and, where the printed message matters, `snnc check`).
"""
from __future__ import annotations

import itertools
import os
import re
import threading
import time
import tracemalloc

import pytest
import torch

from conftest import net
from snnc import cli
from snnc.check import shapes
from snnc.check.signatures import bind
from snnc.check.values import Evaluator
from snnc.compiler import compile as snnc_compile
from snnc.compiler import frontend
from snnc.errors import SnnError
from snnc.frontend.parser import parse_text
from snnc.limits import (
    MAX_ELEMENTS,
    MAX_EXPR_DEPTH,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_INT,
    MAX_NESTING,
    MAX_RANK,
    MAX_SEED,
    MAX_STEPS,
)
from snnc.registry import OPS
from snnc.runtime.factory import op as build_op
from snnc.runtime.layers import StepAware

POPS = "population a[10] = LIF\npopulation b[10] = LIF\n"
LIB_MODEL = "neuron {name}(v_reset = 0, v_threshold = {th}) {{ state v = 0; charge v = v + x\n" \
            "  fire v >= v_threshold; reset hard }}\n"


def where(err: SnnError) -> tuple[int, int]:
    return err.line, err.col


def position(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """(line, column) of the nth occurrence of `needle` in `text`, as the lexer counts."""
    at = -1
    for _ in range(nth):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def error_in(tmp_path, text: str | bytes) -> SnnError:
    """The SnnError that the front end raises for `text` written to tmp_path/net.snn."""
    path = tmp_path / "net.snn"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(SnnError) as info:
        frontend(path)
    return info.value


def check_output(path, capsys) -> tuple[int, str]:
    code = cli.main(["check", str(path)])
    return code, capsys.readouterr().err


def within(seconds: float, work):
    """`work()`'s result; fails (rather than hangs) if it takes longer than `seconds`."""
    result: dict = {}

    def run():
        try:
            result["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            result["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not return within {seconds} s"
    if "error" in result:
        raise result["error"]
    return result["value"]


# ------------------------------------------------------------------ 1. nesting and depth
def test_brackets_beyond_the_limit_fail_at_the_bracket(tmp_path):
    # The network's `{` is the first bracket open, so the 64th `(` is one too many.
    text = net("steps = " + "(" * 100 + "1" + ")" * 100)
    err = error_in(tmp_path, text)
    assert err.message == f"nested too deeply: more than {MAX_NESTING} brackets open"
    assert where(err) == position(text, "(", MAX_NESTING)


def test_brackets_at_the_limit_are_fine(tmp_path):
    depth = MAX_NESTING - 1  # inside the network's braces
    path = tmp_path / "net.snn"
    path.write_text(net("steps = " + "(" * depth + "1" + ")" * depth))
    (graph,) = frontend(path)
    assert graph.graph["steps"] == 1


def test_megabytes_of_open_brackets_fail_fast_in_little_memory(tmp_path):
    warm = tmp_path / "warm.snn"
    warm.write_text(net("population a[1] = LIF"))
    frontend(warm)  # the parser and the stdlib are built once, on first use
    path = tmp_path / "parens.snn"
    path.write_text("network n { steps = " + "(" * 10_000_000)
    start = time.perf_counter()
    with pytest.raises(SnnError) as info:
        frontend(path)
    elapsed = time.perf_counter() - start
    assert info.value.message.startswith("nested too deeply")
    assert where(info.value) == (1, 21 + MAX_NESTING - 1)
    assert elapsed < 0.5  # about 0.02 s: reading and decoding 10 MB
    tracemalloc.start()
    with pytest.raises(SnnError):
        frontend(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 2**20  # the bytes read and their text: 20 MB


def test_a_flat_sum_of_3000_terms_fails_at_the_operator_beyond_the_depth(tmp_path):
    # `x + x + ...` is a left-deep tree: its 201st `+` nests 201 operators.
    text = ("neuron N(v_reset = 0) { state v = 0\n  charge v = " + " + ".join(["x"] * 3000)
            + "\n  fire v >= 1; reset hard }\n" + net("population a[1] = N"))
    err = error_in(tmp_path, text)
    assert err.message == (f"this expression is nested too deeply: more than {MAX_EXPR_DEPTH} "
                           "operators and calls inside each other")
    assert where(err) == position(text, "+", MAX_EXPR_DEPTH + 1)
    assert err.hint.startswith("split it into smaller parts")


@pytest.mark.parametrize("expression, operator", [
    ("- " * 300 + "1", "-"),
    ("1 ** " * 300 + "1", "**"),
    ("a or " * 300 + "b", "or"),
    ("not " * 300 + "true", "not"),
    ("1 < " * 300 + "1", None),  # comparisons do not chain: a syntax error, not a crash
])
def test_deep_operator_chains_are_positioned_errors(tmp_path, expression, operator):
    text = net(f"seed = {expression}")
    err = error_in(tmp_path, text)
    if operator is None:
        assert err.message.startswith("unexpected")
        return
    assert err.message.startswith("this expression is nested too deeply")
    # The innermost operator is built first: the one beyond the limit, counted from
    # the right for right-nested chains, from the left for left-nested ones.
    count = expression.count(operator if operator != "-" else "- ")
    nth = MAX_EXPR_DEPTH + 1 if operator == "or" else count - MAX_EXPR_DEPTH
    assert where(err) == position(text, operator + " ", nth)


def test_expressions_at_the_depth_limit_pass_every_stage(tmp_path):
    deep = " + ".join(["1"] * MAX_EXPR_DEPTH) + " + 0"  # 200 operators
    model = ("neuron N(v_reset = 0, k = " + deep + ") { state v = 0\n  charge v = "
             + " + ".join(["v"] * MAX_EXPR_DEPTH) + " + x\n  fire v >= 1; reset hard }\n")
    path = tmp_path / "net.snn"
    path.write_text(model + net(f"steps = {deep}\npopulation a[1] = N(k = {deep})\n"
                                f"input i[1]\nconnect i -> a : scale({' + '.join(['1'] * 199)})"
                                f" delay {deep} ms"))
    (graph,) = frontend(path)
    assert graph.graph["steps"] == MAX_EXPR_DEPTH


def test_nesting_errors_never_fall_back_to_the_unpositioned_message(tmp_path, capsys):
    path = tmp_path / "deep.snn"
    path.write_text(net("steps = " + "x + " * 20_000 + "1"))
    code, err = check_output(path, capsys)
    assert code == 1
    assert err.startswith(f"{path}:2:")
    assert "to compile" not in err and "Traceback" not in err


# ------------------------------------------------------------------ 2. imports
def _chain(tmp_path, length: int):
    """c0 imports c1 ... imports c{length}; each defines M{i}, the last the network."""
    for i in range(length):
        (tmp_path / f"c{i}.snn").write_text(f'import "c{i + 1}.snn"\n'
                                            + LIB_MODEL.format(name=f"M{i}", th=1))
    (tmp_path / f"c{length}.snn").write_text(LIB_MODEL.format(name="Last", th=1))
    (tmp_path / "c0.snn").write_text((tmp_path / "c0.snn").read_text()
                                     + net(f"population a[1] = M{length - 1}"))
    return tmp_path / "c0.snn"


def test_an_import_chain_of_max_files_loads_without_recursion(tmp_path):
    (graph,) = frontend(_chain(tmp_path, MAX_FILES - 1))
    assert graph.nodes["a"]["node"].model.name == f"M{MAX_FILES - 2}"


def test_one_file_beyond_max_files_is_refused_at_its_import(tmp_path):
    main = _chain(tmp_path, MAX_FILES)
    with pytest.raises(SnnError) as info:
        frontend(main)
    err = info.value
    assert err.message == f"one file too many: a build reads at most {MAX_FILES} files"
    assert err.file.endswith(f"c{MAX_FILES - 1}.snn") and where(err) == (1, 8)


def test_total_source_bytes_are_bounded_at_the_import(tmp_path, monkeypatch):
    monkeypatch.setattr("snnc.frontend.loader.MAX_TOTAL_SOURCE_BYTES", 200)
    (tmp_path / "big.snn").write_text("# " + "x" * 150 + "\n")
    text = 'import "big.snn"\n' + net("population a[1] = LIF")
    err = error_in(tmp_path, text)
    assert err.message.startswith("this import takes the sources of the build over")
    assert where(err) == (1, 8) and err.source == text


def test_models_shadow_in_import_order_and_cycles_are_skipped(tmp_path):
    # main imports a, then b; a imports b, b imports a (a cycle: skipped), and main's own
    # import of b is skipped too, as already read.
    (tmp_path / "a.snn").write_text('import "b.snn"\n' + LIB_MODEL.format(name="M", th=2)
                                    + LIB_MODEL.format(name="OnlyA", th=7))
    (tmp_path / "b.snn").write_text('import "a.snn"\n' + LIB_MODEL.format(name="M", th=3)
                                    + LIB_MODEL.format(name="LIF", th=4))
    path = tmp_path / "net.snn"
    path.write_text('import "a.snn"\nimport "b.snn"\n'
                    + net("population m[1] = M\npopulation l[1] = LIF\n"
                          "population o[1] = OnlyA"))
    (graph,) = frontend(path)
    params = {name: graph.nodes[name]["node"].params["v_threshold"] for name in "mlo"}
    # b's models are added before a's, since a imports b: a's M shadows b's, and b's LIF
    # shadows the stdlib's.
    assert params == {"m": 2, "l": 4, "o": 7}
    path.write_text('import "a.snn"\n' + LIB_MODEL.format(name="M", th=5)
                    + net("population m[1] = M"))
    (graph,) = frontend(path)
    assert graph.nodes["m"]["node"].params["v_threshold"] == 5  # the file's own model


# ------------------------------------------------------------------ 3. reading
def test_a_sparse_six_gib_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.snn"
    path.touch()
    os.truncate(path, 6 * 2**30)
    start = time.perf_counter()
    with pytest.raises(SnnError) as info:
        within(5, lambda: frontend(path))
    assert time.perf_counter() - start < 1.0
    assert info.value.message == f"{path} is larger than {MAX_FILE_BYTES // 2**20} MiB"


def test_a_symlink_to_dev_zero_is_refused(tmp_path):
    path = tmp_path / "zero.snn"
    path.symlink_to("/dev/zero")
    with pytest.raises(SnnError) as info:
        within(5, lambda: frontend(path))
    assert info.value.message == f"{path} is a character device, not a regular file"


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "fifo.snn"
    os.mkfifo(path)
    with pytest.raises(SnnError) as info:
        within(5, lambda: frontend(path))
    assert info.value.message == f"{path} is a FIFO, not a regular file"


def test_an_imported_fifo_is_refused_at_the_import(tmp_path):
    os.mkfifo(tmp_path / "lib.snn")
    text = "# models\nimport \"lib.snn\"\n" + net("population a[1] = LIF")
    err = within(5, lambda: error_in(tmp_path, text))
    assert err.message.startswith("cannot import 'lib.snn': ")
    assert err.message.endswith("lib.snn is a FIFO, not a regular file")
    assert where(err) == (2, 8)


def test_a_binary_file_names_the_byte_and_echoes_nothing(tmp_path, capsys):
    path = tmp_path / "image.snn"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x1b[31m")
    with pytest.raises(SnnError) as info:
        frontend(path)
    err = info.value
    assert err.message == "this file is not UTF-8 text: byte 0x89 at 1:1 is not UTF-8"
    assert where(err) == (1, 1) and err.source is None
    code, printed = check_output(path, capsys)
    assert code == 1
    assert printed == (f"{path}:1:1: error: this file is not UTF-8 text: byte 0x89 at 1:1 is "
                       "not UTF-8\n  hint: a .snn file is plain UTF-8 text\n")


def test_a_bad_byte_after_text_is_placed_in_characters(tmp_path):
    err = error_in(tmp_path, "network n {\n  é".encode() + b"\xff }")  # é: two bytes, one column
    assert err.message == "this file is not UTF-8 text: byte 0xff at 2:4 is not UTF-8"
    assert where(err) == (2, 4)


def test_a_binary_imported_file_is_placed_in_that_file(tmp_path):
    (tmp_path / "lib.snn").write_bytes(b"neuron \xfe")
    err = error_in(tmp_path, 'import "lib.snn"\n')
    assert err.message == "this file is not UTF-8 text: byte 0xfe at 1:8 is not UTF-8"
    assert err.file.endswith("lib.snn") and err.source is None


# ------------------------------------------------------------------ 4. numbers
@pytest.mark.parametrize("literal, shown", [("1e309", "inf"), ("1e31", "1e+31"),
                                            ("1e999 ms", "inf"),
                                            ("9" * 400, "inf")])
def test_literals_beyond_the_magnitude_are_refused_where_written(tmp_path, literal, shown):
    # Nothing evaluates a charge at build time: the parser refuses the literal itself.
    text = ("neuron N(v_reset = 0) { state v = 0\n  charge v = v + x * " + literal
            + "\n  fire v >= 1; reset hard }\n" + net("population a[1] = N"))
    err = error_in(tmp_path, text)
    assert err.message == f"number too large: {shown}"
    assert where(err) == (2, 22)


# ------------------------------------------------------------------ 5. units
@pytest.mark.parametrize("body, needle, message", [
    ("population a[1] = LIF(tau = 20 Hz)", "20 Hz", "expected a time, got a rate (20 Hz)"),
    ("population a[1] = LIF(tau = 500 Hz)", "500 Hz", "expected a time, got a rate (500 Hz)"),
    ("population a[1] = LIF(tau = 2 * (1 + 5 Hz))", "5 Hz",
     "expected a time, got a rate (5 Hz)"),
    (POPS + "connect a -> b delay 3 Hz", "3 Hz", "expected a time, got a rate (3 Hz)"),
    (POPS + "connect a -> b delay uniform(1 ms, 3 Hz)", "3 Hz",
     "expected a time, got a rate (3 Hz)"),
    ("encoder e[3] = poisson(rate = 15 ms)", "15 ms", "expected a rate, got a time (15 ms)"),
    ("population a[1] = LIF(refractory = 2 Hz)", "2 Hz", "expected a time, got a rate (2 Hz)"),
    ("dt = 2 * 5 Hz", "5 Hz", "expected a time, got a rate (5 Hz)"),
    ("population a[1] = PLIF(init_tau = 2 kHz)", "2 kHz",
     "expected a time, got a rate (2 kHz)"),
    ("population a[1] = Tempotron(tau_s = 1 Hz)", "1 Hz", "expected a time, got a rate (1 Hz)"),
    ("input i[2]\nencoder s = latency(i, t_max = 5 Hz)", "5 Hz",
     "expected a time, got a rate (5 Hz)"),
    (POPS + "connect a -> b via stp(tau_f = 1 kHz)", "1 kHz",
     "expected a time, got a rate (1 kHz)"),
])
def test_a_quantity_of_the_wrong_kind_names_the_kind_expected(tmp_path, body, needle, message):
    text = net(body)
    err = error_in(tmp_path, text)
    assert err.message == message
    assert where(err) == position(text, needle)
    assert err.hint == ("times take s, ms or us" if "expected a time" in message
                        else "rates take Hz or kHz")


RATE_MODEL = ("neuron Driven(r = 10 Hz, tau_m = 20 ms, gain = 2, v_reset = 0) {\n"
              "  state v = 0; charge v = v + r + gain * x - v / tau_m\n"
              "  fire v >= 1; reset hard }\n")


@pytest.mark.parametrize("args, needle, message", [
    ("r = 5 ms", "5 ms", "expected a rate, got a time (5 ms)"),
    ("tau_m = 5 Hz", "5 Hz", "expected a time, got a rate (5 Hz)"),
])
def test_model_parameter_kinds_are_inferred(tmp_path, args, needle, message):
    text = RATE_MODEL + net(f"population a[1] = Driven({args})")
    err = error_in(tmp_path, text)
    assert err.message == message and where(err) == position(text, needle)


def test_model_parameters_of_the_right_kind_or_of_no_kind_are_accepted(tmp_path):
    path = tmp_path / "net.snn"
    path.write_text(RATE_MODEL + net("dt = 0.5 ms\npopulation a[1] = Driven(r = 1 kHz, "
                                     "tau_m = 10, gain = 100 Hz)"))
    (graph,) = frontend(path)
    params = graph.nodes["a"]["node"].params
    assert params["r"] == pytest.approx(0.5)
    assert params["tau_m"] == 10
    assert params["gain"] == pytest.approx(0.05)  # no kind: converted by its own unit


def test_a_model_default_of_the_wrong_kind_is_an_error_in_the_model(tmp_path):
    text = ("neuron N(tau_syn = 10 Hz, v_reset = 0) { state v = 0; charge v = v + x\n"
            "  fire v >= 1; reset hard }\n" + net("population a[1] = LIF"))
    err = error_in(tmp_path, text)
    assert err.message == "expected a time, got a rate (10 Hz)"
    assert where(err) == position(text, "10 Hz")


@pytest.mark.parametrize("unit", ["mV", "V", "uV", "nA", "pA", "mA", "A", "nS", "uS", "mS",
                                  "ohm", "Mohm", "kohm", "pF", "nF"])
def test_physical_units_say_that_they_are_plain_numbers(tmp_path, unit):
    text = net(f"population a[1] = LIF(v_threshold = -50 {unit})")
    err = error_in(tmp_path, text)
    assert err.message == f"unknown unit '{unit}'"
    line, col = position(text, f"-50 {unit}")
    assert where(err) == (line, col + len("-50 "))
    assert "voltages, currents and conductances are plain numbers" in err.hint


def test_a_unit_word_before_the_next_statement_is_reported_at_the_word(tmp_path):
    text = net("steps = 5 mV\npopulation a[1] = LIF")
    err = error_in(tmp_path, text)
    assert err.message == "unknown unit 'mV'" and where(err) == (2, 11)


@pytest.mark.parametrize("unit", ["sec", "msec", "hz", "MHz"])
def test_other_spellings_of_times_and_rates_name_the_units(tmp_path, unit):
    err = error_in(tmp_path, net(f"population a[1] = LIF(tau = 20 {unit})"))
    assert err.message == f"unknown unit '{unit}'"
    assert err.hint == "times take s, ms or us, and rates Hz or kHz"


# ------------------------------------------------------------------ 6. integer bounds
@pytest.mark.parametrize("body, needle, message", [
    ("input i[1, 8, 8]\npopulation a[1, 8, 8] = LIF\nconnect i -> a : conv2d(stride = 1e30)",
     "1e30", f"conv2d(): 'stride' must be at most {MAX_INT}, got 1e+30"),
    ("input i[4]\npopulation a[4] = LIF\nconnect i -> a : dense(out = 3000000000) | dense",
     "3000000000", f"dense(): 'out' must be at most {MAX_INT}, got 3000000000"),
    ("steps = 1e30", "1e30", f"network(): 'steps' must be at most {MAX_STEPS}, got 1e+30"),
    (f"steps = {MAX_STEPS + 1}", str(MAX_STEPS + 1),
     f"network(): 'steps' must be at most {MAX_STEPS}, got {MAX_STEPS + 1}"),
    ("seed = 1e30", "1e30", f"network(): 'seed' must be at most {MAX_SEED}, got 1e+30"),
    ("population a[1] = LIF(refractory = 1e20)", "1e20",
     f"LIF(): 'refractory' must be at most {MAX_STEPS}, got 1e+20"),
])
def test_whole_numbers_are_bounded(tmp_path, body, needle, message):
    text = net(body)
    err = error_in(tmp_path, text)
    assert err.message == message and where(err) == position(text, needle)


def test_the_largest_seed_is_kept_exactly(tmp_path):
    path = tmp_path / "net.snn"
    path.write_text(net(f"seed = {MAX_SEED}\nsteps = {MAX_STEPS}\npopulation a[1] = LIF"))
    (graph,) = frontend(path)
    assert graph.graph["seed"] == MAX_SEED and graph.graph["steps"] == MAX_STEPS
    torch.manual_seed(graph.graph["seed"])  # what the generated module does with it


def test_integer_arithmetic_beyond_int64_becomes_float(tmp_path):
    path = tmp_path / "net.snn"
    path.write_text("neuron N(v_reset = 0, g = 4000000000 * 4000000000) { state v = 0\n"
                    "  charge v = v + x * g; fire v >= 1; reset hard }\n"
                    + net("population a[1] = N"))
    (graph,) = frontend(path)
    g = graph.nodes["a"]["node"].params["g"]
    assert isinstance(g, float) and g == 1.6e19
    torch.ones(1) * g  # a Python int this large would not convert


# ------------------------------------------------------------------ 7. shapes and counts
def test_batchnorm_refuses_four_axes_naming_the_layouts(tmp_path):
    text = net("input i[2, 2, 2, 2]\npopulation a[2, 2, 2, 2] = LIF\nconnect i -> a : batchnorm")
    err = error_in(tmp_path, text)
    assert err.message == ("`batchnorm` expects [C], [C, L] or [C, H, W] input, but gets "
                           "[2, 2, 2, 2] from 'i' in 'i->a'")
    assert where(err) == position(text, "batchnorm")


def test_an_oversized_intermediate_shape_is_refused_at_its_op(tmp_path):
    text = net("input i[1, 1, 1]\npopulation a[1, 1, 1] = LIF\n"
               "connect i -> a : conv2d(pad = 100000) | maxpool(k = 100001)")
    err = error_in(tmp_path, text)
    assert err.message == ("`conv2d` in 'i->a' makes [1, 199999, 199999]: 39999600001 "
                           "elements per sample")
    assert where(err) == position(text, "conv2d") and err.hint == f"at most {MAX_ELEMENTS}"


@pytest.mark.parametrize("body, needle, start", [
    ("input i[1, 4]\npopulation a[1, 1] = LIF\nconnect i -> a : maxpool(k = 5)", "maxpool",
     "`maxpool` kernel 5 does not fit an axis of size 4"),
    ("input i[2, 4]\npopulation a[2, 4] = LIF\nconnect i -> a : dropout(p = 1)", "1)",
     "dropout(): 'p' must be below 1, got 1"),
    ("input i[1, 50000]\npopulation a[1, 50000] = LIF\nconnect i -> a : dct(k = 1)", "dct",
     "`dct` would build a 50000×50000 matrix"),
    ("input i[4]\npopulation a[2] = LIF\nconnect i -> a : channel_maxpool(k = 2)",
     "channel_maxpool", "`channel_maxpool` expects [C, L] or [C, H, W] input"),
    ("input i[2, 3]\npopulation a[2, 2] = LIF\nconnect i -> a : axat", "axat",
     "`axat` expects square matrices"),
    ("input i[" + ", ".join(["1"] * (MAX_RANK + 1)) + "]", "i[",
     f"input 'i' has {MAX_RANK + 1} axes"),
])
def test_shapes_the_runtime_cannot_build_are_refused(tmp_path, body, needle, start):
    text = net(body)
    err = error_in(tmp_path, text)
    assert err.message.startswith(start)
    line, col = position(text, needle)
    assert where(err) == (line, col + (2 if needle == "i[" else 0))


def test_edge_values_the_runtime_handles_are_accepted(tmp_path):
    path = tmp_path / "net.snn"
    path.write_text(net("input i[4, 6]\npopulation a[4, 6] = LIF\npopulation b[4, 3] = LIF\n"
                        "population c[4, 6] = LIF\n"
                        "connect i -> a : sparse(p = 0) | dropout(p = 0.999)\n"
                        "connect a -> b : maxpool(k = 2)\n"
                        "connect i -> c : batchnorm | one_to_one"))
    assert frontend(path)


CALLS = ["dense", "dense(out = 3)", "sparse(p = 0)", "sparse(p = 1)", "one_to_one", "conv1d",
         "conv1d(k = 1, pad = 0)", "conv2d", "conv2d(k = 2, stride = 2, pad = 0)", "maxpool",
         "maxpool(k = 1)", "avgpool(k = 3)", "flatten", "batchnorm", "dropout(p = 0)",
         "dropout(p = 0.5)", "scale(2)", "noise(0.1)", "channel_maxpool(k = 2)",
         "channel_maxpool(k = 1)", "dct(k = 2)", "dct(k = 1)", "axat", "axat(out = 3)"]
SHAPES = [s for rank in range(1, 4) for s in itertools.product((1, 2, 3), repeat=rank)] \
    + [(2, 2, 2, 2), (1, 2, 1, 2)]


@pytest.mark.parametrize("text", CALLS)
def test_every_shape_an_op_accepts_the_runtime_builds_and_runs(text):
    call = parse_text(net(f"connect a -> b : {text}")).networks[0].body[0].ops[0]
    params = bind(call, OPS[call.func], Evaluator(1.0))
    sizing = 0 if OPS[call.func].sizing and params.get("out") is None else None
    accepted = 0
    for shape in SHAPES:
        try:
            in_shape, out_shape = shapes._run([(call.func, params, call.pos)], shape, "a",
                                              sizing, 3, "a->b")
        except SnnError:
            continue
        accepted += 1
        module = build_op(call.func, in_shape, out_shape, **params).train()
        x = torch.rand(2, *in_shape)  # [T·B, *shape] with T = 2, B = 1
        y = module(x, 2) if isinstance(module, StepAware) else module(x)
        assert tuple(y.shape) == (2, *out_shape), (text, shape)
        assert torch.isfinite(y).all(), (text, shape)
    assert accepted


@pytest.mark.parametrize("limit, body, needle, message", [
    ("MAX_POPULATIONS", "input i[1]\nencoder e[1] = poisson(rate = 1 Hz)\n"
     "population a[1] = LIF\npopulation b[1] = LIF", "b[1]",
     "network t has more than 3 inputs, encoders and populations"),
    ("MAX_CONNECTIONS", POPS + "connect a -> b as x\nconnect a -> b as y\nconnect a -> b as z",
     "a -> b as w", "network t has more than 3 connections"),
])
def test_nodes_and_connections_are_bounded_at_the_first_beyond(tmp_path, monkeypatch, limit,
                                                               body, needle, message):
    monkeypatch.setattr(f"snnc.check.network.{limit}", 3)
    if limit == "MAX_CONNECTIONS":
        body += "\nconnect a -> b as w"
    text = net(body)
    err = error_in(tmp_path, text)
    assert err.message == message and where(err) == position(text, needle)


# ------------------------------------------------------------------ 8. parameter combinations
# `needle`: the first text at the error's position (the argument's value).
@pytest.mark.parametrize("body, needle, message", [
    (POPS + "connect a -> b via filter(tau = 1 ms, learnable = true)", "1 ms",
     "filter(): with learnable = true, 'tau' must be above 1 step, got 1"),
    (POPS + "dt = 0.5 ms\nconnect a -> b via filter(tau = 0.5 ms, learnable = true)", "0.5 ms,",
     "filter(): with learnable = true, 'tau' must be above 1 step, got 1"),
    (POPS + "connect a -> b via filter(tau = 0.25)", "0.25",
     "filter(): 'tau' must be at least 0.5 step, got 0.25"),
    (POPS + "connect a -> b via stp(tau_d = 0.1)", "0.1",
     "stp(): 'tau_d' must be at least 0.5 step, got 0.1"),
    (POPS + "connect a -> b via stp(0.2, 0.4 ms)", "0.4 ms",
     "stp(): 'tau_f' must be at least 0.5 step, got 0.4"),
    ("input i[2]\nencoder s = latency(i, t_max = 100, mode = log)", "100",
     "latency(): with mode = log, 't_max' must be at most 89.72 steps, got 100"),
    ("input i[2]\nencoder g = gaussian_tuning(i, x_min = 1, x_max = 1)", "1, x_max",
     "gaussian_tuning(): 'x_min' must be below 'x_max', got 1 and 1"),
    (POPS + "connect a -> b : dense learn stdp(w_min = 1, w_max = 0)", "1, w_max",
     "stdp(): 'w_min' must be at most 'w_max', got 1 and 0"),
])
def test_combinations_the_runtime_cannot_compute_are_refused(tmp_path, body, needle, message):
    text = net(body)
    err = error_in(tmp_path, text)
    assert err.message == message
    assert where(err) == position(text, needle)


def test_a_learnable_filter_just_above_one_step_is_accepted_and_runs(tmp_path):
    path = tmp_path / "net.snn"
    path.write_text(net(POPS + "connect a -> b via filter(tau = 1.01, learnable = true)"))
    synapse = snnc_compile(path)().connection("a->b").synapse
    current = synapse(torch.ones(3, 1, 10))
    assert torch.isfinite(current).all() and current.requires_grad


# ------------------------------------------------------------------ through the CLI
@pytest.mark.parametrize("body", [
    "population a[1] = LIF(tau = 20 Hz)",
    "seed = 1e30",
    "population a[1] = LIF(v_threshold = 5 mV)",
    POPS + "connect a -> b via filter(tau = 1 ms, learnable = true)",
])
def test_the_cli_prints_a_positioned_error_without_traceback(tmp_path, capsys, body):
    path = tmp_path / "net.snn"
    path.write_text(net(body))
    code, err = check_output(path, capsys)
    assert code == 1
    assert re.match(re.escape(str(path)) + r":\d+:\d+: error: ", err)
    assert "Traceback" not in err
