"""The grammar and the AST: what parses, into what, with which positions."""
from __future__ import annotations

import pytest

from snnc.errors import SnnError
from snnc.frontend import ast
from snnc.frontend.parser import parse_text


def test_numbers_units_and_comments():
    f = parse_text("network n { dt = 0.1 ms  # step\n steps = 1e3; seed = 42 }", "a.snn")
    settings = f.networks[0].of(ast.Setting)
    assert settings[0].value == ast.Quantity(0.1, "ms")
    assert settings[1].value == ast.Number(1000.0)
    assert settings[2].value == ast.Number(42)
    assert (settings[1].pos.line, settings[1].pos.col) == (2, 2)


def test_unit_must_follow_on_the_same_line():
    # `1` then a new statement `s = 2`: a unit never swallows the next line's name.
    f = parse_text("network n { steps = 1\n s = 2 }")
    assert [s.name for s in f.networks[0].of(ast.Setting)] == ["steps", "s"]


@pytest.mark.parametrize("text, unit", [("15 Hz", "Hz"), ("2kHz", "kHz"), ("5 us", "us"),
                                        ("1 s", "s"), (".5 ms", "ms")])
def test_every_unit(text, unit):
    f = parse_text(f"network n {{ dt = {text} }}")
    assert f.networks[0].of(ast.Setting)[0].value.unit == unit


def test_operator_precedence_and_associativity():
    f = parse_text("neuron N(a = 1) { state v = 0 charge v = -a + 2 * v ** 2 ** 3 - x / 4 "
                   "fire v >= a and not v < 0 or false reset none }")
    charge = f.neurons[0].charge[0].value
    # ((-a) + (2 * (v ** (2 ** 3)))) - (x / 4)
    assert charge.op == "-" and charge.right == ast.Binary("/", ast.Name("x"), ast.Number(4))
    plus = charge.left
    assert plus.left == ast.Unary("-", ast.Name("a"))
    power = plus.right.right
    assert power == ast.Binary("**", ast.Name("v"), ast.Binary("**", ast.Number(2), ast.Number(3)))
    fire = f.neurons[0].fire
    assert fire.op == "or" and fire.left.op == "and"
    assert fire.left.right == ast.Unary("not", ast.Binary("<", ast.Name("v"), ast.Number(0)))


def test_statement_spanning_lines_and_semicolons():
    f = parse_text("""network n {
        population a[10] = LIF(tau = 2.0,
                               v_threshold = 1.0); population b[10] = LIF
        connect a -> b
            as ab
            : dense | scale(2)
            delay 1
    }""")
    conn = f.networks[0].of(ast.Connect)[0]
    assert conn.name == "ab" and [op.func for op in conn.ops] == ["dense", "scale"]
    assert conn.delay == ast.Number(1)


def test_connection_default_name_and_clauses():
    f = parse_text("network n { connect a -> b : flatten via exp_current(tau = 5 ms) "
                   "learn stdp }")
    conn = f.networks[0].of(ast.Connect)[0]
    assert conn.name == "a->b"
    assert conn.via == ast.Call("exp_current", (), (ast.Kwarg("tau", ast.Quantity(5, "ms")),))
    assert conn.learn == ast.Call("stdp")


def test_neuron_clauses():
    f = parse_text("""neuron Izh(a = 0.02, c = -65) {
        param w = a * 2 learnable
        state v = c
        charge { v = v + x; v = v * 2 }
        fire v >= 30
        reset { v = c }
    }""")
    n = f.neurons[0]
    assert [p.name for p in n.params] == ["a", "c"]
    assert n.body_params[0] == ast.ParamStmt("w", ast.Binary("*", ast.Name("a"), ast.Number(2)),
                                             True)
    assert [a.target for a in n.charge] == ["v", "v"]
    assert n.reset.kind is None and n.reset.assigns[0].target == "v"


def test_import_and_monitor_and_readout():
    f = parse_text('import "lib.snn"\nnetwork n { monitor a.spikes, a.v  readout a = voting(10) }')
    assert f.imports[0].path == "lib.snn"
    monitor = f.networks[0].of(ast.Monitor)[0]
    assert [(p.target, p.var) for p in monitor.probes] == [("a", "spikes"), ("a", "v")]
    assert f.networks[0].of(ast.Readout)[0].kind == ast.Call("voting", (ast.Number(10),))


@pytest.mark.parametrize("word", ["network", "population", "input", "delay", "learnable", "true"])
def test_keywords_are_not_names(word):
    with pytest.raises(SnnError) as info:
        parse_text(f"network n {{ population {word}[3] = LIF }}", "k.snn")
    err = info.value
    assert err.message == f"'{word}' is a keyword and cannot be used as a name"
    assert (err.line, err.col) == (1, 24)


def test_keyword_as_population_name_is_refused_with_position():
    with pytest.raises(SnnError) as info:
        parse_text("network n {\n  population input[3] = LIF\n}", "k.snn")
    assert info.value.message == "'input' is a keyword and cannot be used as a name"
    assert (info.value.line, info.value.col) == (2, 14)


def test_unexpected_token_reports_position_and_expectation():
    with pytest.raises(SnnError) as info:
        parse_text("network n {\n  population b[10 = LIF\n}", "p.snn")
    err = info.value
    assert err.message == "unexpected '='"
    assert (err.file, err.line, err.col) == ("p.snn", 2, 19)
    assert "']'" in err.hint
    rendered = err.render()
    assert rendered.splitlines()[0] == "p.snn:2:19: error: unexpected '='"
    assert rendered.splitlines()[2].index("^") == rendered.splitlines()[1].index("=")


def test_truncated_file_is_unexpected_end():
    with pytest.raises(SnnError) as info:
        parse_text("network n {\n  population a[10] = LIF(tau = ", "t.snn")
    assert info.value.message == "unexpected end of file"
    assert info.value.line == 2


def test_unexpected_character():
    with pytest.raises(SnnError) as info:
        parse_text("network n { steps = 3 $ }", "c.snn")
    assert info.value.message == "unexpected character '$'"
    assert info.value.col == 23


def test_strings_only_in_import():
    with pytest.raises(SnnError) as info:
        parse_text('network n { steps = "3" }', "s.snn")
    assert "import" in info.value.hint


def test_positions_do_not_affect_equality():
    a = parse_text("network n { steps = 3 }").networks[0]
    b = parse_text("\n\n  network n {\n steps =\n 3 }").networks[0]
    assert a == b


@pytest.fixture
def fresh_grammar(monkeypatch):
    """The parser built again (from SNNC_CACHE as the test sets it), and after the test."""
    from snnc.frontend import parser
    parser._lark.cache_clear()
    yield monkeypatch
    parser._lark.cache_clear()


def _parses_a_network():
    f = parse_text("network n { dt = 0.5 ms }")
    assert f.networks[0].of(ast.Setting)[0].value == ast.Quantity(0.5, "ms")


def test_a_corrupted_grammar_cache_is_built_again(fresh_grammar, tmp_path):
    fresh_grammar.setenv("SNNC_CACHE", str(tmp_path))
    cached = tmp_path / "grammar" / "snn.lark"
    cached.parent.mkdir()
    cached.write_bytes(b"not a cache\n\x80\x04garbage")
    _parses_a_network()
    assert cached.read_bytes()[:64] != b"not a cache\n\x80\x04garbage"[:64]  # written anew
    from snnc.frontend import parser
    parser._lark.cache_clear()
    _parses_a_network()                                  # and read back


def test_the_parser_builds_where_nothing_can_be_cached(fresh_grammar, tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_text("")
    fresh_grammar.setenv("SNNC_CACHE", str(blocked))     # no folder can be made under it
    _parses_a_network()
