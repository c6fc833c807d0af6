"""A contextual lexer for the .snn grammar: one compiled regex instead of Lark's lexer.

It produces the same tokens as Lark's contextual lexer would for grammar/snn.lark
(the grammar stays the single definition of the syntax; this only scans it
faster): a word that is a keyword of the grammar becomes that keyword's token
only where the parser can accept the keyword, and a NAME elsewhere, so words
snnc adds (`as`, `kernel`, `feedback`) stay usable as names.

It also bounds how deeply brackets nest (snnc.limits.MAX_NESTING): the bound is
enforced here, at the bracket that exceeds it, so a file of ten megabytes of `(`
fails after 65 tokens instead of building a parse ten million levels deep.
"""
from __future__ import annotations

import re
from collections import deque
from contextvars import ContextVar

from lark.exceptions import UnexpectedCharacters
from lark.lexer import Lexer, Token

from snnc.errors import Pos, SnnError
from snnc.limits import MAX_NESTING

# Unambiguous (`\d+(\.\d*)?`, not `\d+\.?\d*`): no quadratic backtracking on long digit runs.
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_SCAN = re.compile("|".join([
    r"(?P<WS>[ \t\f\r\n]+)",
    r"(?P<COMMENT>#[^\n]*)",
    # A number with a unit on the same line is one token (see QUANTITY in the grammar).
    rf"(?P<QUANTITY>{_NUMBER}[ \t]*(?:ms|us|s|kHz|Hz)(?![A-Za-z0-9_]))",
    rf"(?P<NUMBER>{_NUMBER})",
    r"(?P<NAME>[A-Za-z_][A-Za-z0-9_]*)",
    r'(?P<STRING>"[^"\n]*")',
    r"(?P<OP>->|\*\*|>=|<=|==|!=|[-+*/<>=(){}\[\],.;:|])",
]))

# Operators the grammar groups into one terminal; other punctuation and the keywords
# are the grammar's string literals, whose terminal names Lark chooses.
_GROUPED = {">=": "COMP_OP", "<=": "COMP_OP", "==": "COMP_OP", "!=": "COMP_OP",
            ">": "COMP_OP", "<": "COMP_OP", "+": "ADD_OP", "-": "ADD_OP", "*": "MUL_OP",
            "/": "MUL_OP", "**": "POW_OP", "->": "ARROW"}
_OPEN, _CLOSE = frozenset("([{"), frozenset(")]}")

# The file being lexed and parsed (set by parser.parse_text): the lexer and the
# transformer are built once and shared by every parse, so they learn it from here.
CURRENT_FILE: ContextVar[str] = ContextVar("CURRENT_FILE", default="<string>")
# The last tokens produced, for messages about what came before an unexpected token
# (`5 mV`: the number before the word); None outside parser.parse_text.
RECENT_TOKENS: ContextVar[deque | None] = ContextVar("RECENT_TOKENS", default=None)


class SnnLexer(Lexer):
    __future_interface__ = 1  # lex(lexer_state, parser_state): we need the parser's state

    def __init__(self, conf):
        literals = {t.pattern.value: t.name for t in conf.terminals if t.pattern.type == "str"}
        self.keywords = {value: name for value, name in literals.items() if value.isidentifier()}
        self.punctuation = {**{v: n for v, n in literals.items() if not v.isidentifier()},
                            **_GROUPED}

    def lex(self, lexer_state, parser_state):
        text = getattr(lexer_state.text, "text", lexer_state.text)
        states = parser_state.parse_conf.parse_table.states
        recent = RECENT_TOKENS.get()
        line, line_start, pos, end, depth = 1, 0, 0, len(text), 0
        while pos < end:
            match = _SCAN.match(text, pos)
            if match is None:
                raise UnexpectedCharacters(text, pos, line, pos - line_start + 1,
                                           allowed=set(states[parser_state.position]))
            kind, value = match.lastgroup, match.group()
            if kind in ("WS", "COMMENT"):
                newlines = value.count("\n")
                if newlines:
                    line += newlines
                    line_start = pos + value.rindex("\n") + 1
                pos = match.end()
                continue
            col = pos - line_start + 1
            if kind == "OP":
                # Mismatched brackets are left to the parser, which names what it expected.
                if value in _OPEN:
                    depth += 1
                    if depth > MAX_NESTING:
                        raise _too_deep(line, col)
                elif value in _CLOSE and depth:
                    depth -= 1
                kind = self.punctuation[value]
            elif kind == "NAME" and value in self.keywords:
                keyword = self.keywords[value]
                accepted = states[parser_state.position]
                if keyword in accepted or "NAME" not in accepted:
                    kind = keyword
            pos = match.end()
            token = Token(kind, value, match.start(), line, col, line, col + len(value), pos)
            if recent is not None:
                recent.append(token)
            yield token


def _too_deep(line: int, col: int) -> SnnError:
    return SnnError(f"nested too deeply: more than {MAX_NESTING} brackets open",
                    Pos(CURRENT_FILE.get(), line, col), "split the expression into smaller parts")
