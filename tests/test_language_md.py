"""Every .snn code block of the language reference (docs/LANGUAGE.md, a copy of the
contract) checks: whole files as they are, statement blocks inside a network."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT, net
from snnc.errors import SnnError
from snnc.frontend.parser import parse_text

BLOCKS = [body for lang, body in
          re.findall(r"```(\w*)\n(.*?)```", (ROOT / "docs" / "LANGUAGE.md").read_text(), re.S)
          if lang == ""]

# Blocks that show syntax with placeholders (`...`, `[optional]`) or shell commands.
SKETCHES = ('import "mylib.snn"', "connect SRC -> DST", "snnc build NET.snn")
# Statement blocks need the names they refer to declared first.
PRELUDES = {
    "encoder s": "input img[1, 28, 28]\ninput pattern[20, 100]\ninput x[4]",
    "monitor exc.spikes": "population exc[3200] = LIF\npopulation out[10] = LIF",
}


def _kind(block: str) -> str:
    first = block.lstrip().splitlines()[0]
    if first.startswith(SKETCHES):
        return "sketch"
    if first.startswith("neuron") or first.startswith("network"):
        return "file"
    return "statements"


def test_the_reference_has_the_expected_blocks():
    kinds = [_kind(b) for b in BLOCKS]
    assert kinds.count("file") == 1 and kinds.count("statements") == 5
    assert kinds.count("sketch") == 3


@pytest.mark.parametrize("block", [b for b in BLOCKS if _kind(b) == "file"])
def test_whole_file_blocks_check(compile_text, block):
    compile_text(block)
    assert {n.name for n in parse_text(block).neurons} == {"LIF", "CubaLIF", "PLIF", "Izhikevich"}


def _statements(block: str) -> list[str]:
    """A block's statements; some blocks list alternatives (`encoder s = ...` twice), so each
    statement is checked on its own. Continuation lines start with a space."""
    return [m.strip() for m in re.split(r"\n(?=\S)", block.strip())]


STATEMENTS = [(b, s) for b in BLOCKS if _kind(b) == "statements" for s in _statements(b)]


@pytest.mark.parametrize("block, statement", STATEMENTS)
def test_statements_check_inside_a_network(compile_text, block, statement):
    prelude = next((p for key, p in PRELUDES.items() if block.lstrip().startswith(key)), "")
    graphs = compile_text(net(prelude + "\n" + statement))
    assert len(graphs) == 1


def test_every_statement_was_found():
    assert len(STATEMENTS) == 4 + 1 + 6 + 4 + 2


@pytest.mark.parametrize("block", [b for b in BLOCKS if _kind(b) == "sketch"])
def test_sketches_are_not_valid_code(block):
    with pytest.raises(SnnError):
        parse_text(block)
