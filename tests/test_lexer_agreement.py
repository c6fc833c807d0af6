"""snnc's own lexer (snnc/frontend/lexer.py) yields the tokens Lark's contextual lexer would.

SnnLexer replaces Lark's lexer for speed only; grammar/snn.lark stays the definition of the
syntax. Both lexers are driven by the same LALR parser (through an interactive parse), so
each sees the parser state it would see in a real parse: that is what makes keywords
contextual (`kernel` is a keyword in a neuron body and a name in `input kernel[3]`).

The token type names need no mapping: SnnLexer takes the keyword and punctuation names
from the grammar's own terminals (LPAR, NETWORK, ...) and names the grouped operators
after the grammar's terminals (COMP_OP, ADD_OP, MUL_OP, POW_OP, ARROW).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
from lark import Lark

from conftest import ROOT
from snnc.frontend.parser import _lark
from snnc.resources import data_dir

SOURCES = sorted([*ROOT.glob("samples/*.snn"), *ROOT.glob("snnc/stdlib/*.snn")])


@lru_cache(maxsize=1)
def lark_contextual() -> Lark:
    """The grammar snnc parses with, and Lark's own contextual lexer instead of SnnLexer."""
    grammar = (data_dir("grammar") / "snn.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=True)


def tokens(parser: Lark, text: str) -> list[tuple]:
    """Every token the parser's lexer yields while parsing `text`, with its position."""
    return [(t.type, str(t), t.line, t.column, t.end_line, t.end_column, t.start_pos, t.end_pos)
            for t in parser.parse_interactive(text).iter_parse()]


def first_difference(ours: list[tuple], theirs: list[tuple]) -> str | None:
    for mine, larks in zip(ours, theirs, strict=False):  # a shorter stream: said below
        if mine != larks:
            return f"line {mine[2]}: snnc {mine}, Lark {larks}"
    if len(ours) != len(theirs):
        return f"snnc made {len(ours)} tokens, Lark {len(theirs)}"
    return None


def test_there_are_sources_to_compare():
    assert len(SOURCES) >= 10 and ROOT / "snnc/stdlib/neurons.snn" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_snnc_lexer_agrees_with_larks_contextual_lexer(path):
    text = path.read_text(encoding="utf-8")
    ours, theirs = tokens(_lark(), text), tokens(lark_contextual(), text)
    assert first_difference(ours, theirs) is None
    assert len(ours) > 50


# The context-dependent cases the samples may not reach.
SNIPPETS = {
    "snnc's added words as names": (
        "network n { input kernel[3]\npopulation feedback[3] = LIF\n"
        "connect kernel -> feedback as as }"),
    "keywords as keywords": (
        "neuron N(a = 1,) { param p = 1 learnable\nstate v = 0\n"
        "charge v = v + x * p ** 2 / 3 - -1\nfire v >= 1 and not (v < 0 or true)\n"
        "reset hard\nkernel p }"),
    "units on the same line, not the next": (
        "network n { dt = 0.5ms; t = .5 s; r = 1e3Hz; q = 2.5e-1\tkHz\nx = 1\ns = 3 }"),
    "imports, separators, probes": (
        'import "a.snn"\n;;\nnetwork m { monitor a.v, b.spikes; readout a = rate }'),
}


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_lexers_agree_where_the_parser_state_decides(name):
    text = SNIPPETS[name]
    assert first_difference(tokens(_lark(), text), tokens(lark_contextual(), text)) is None
