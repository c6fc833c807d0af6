"""The one error type for mistakes in a user's input, printed like a compiler's."""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Pos:
    """Where something was written: file, 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class SnnError(Exception):
    """A user error in a .snn file or on the command line, with its position and a hint."""

    def __init__(self, message: str, pos: Pos | None = None, hint: str | None = None,
                 source: str | None = None):
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint
        self.source = source

    @property
    def file(self) -> str | None:
        return self.pos.file if self.pos else None

    @property
    def line(self) -> int | None:
        return self.pos.line if self.pos else None

    @property
    def col(self) -> int | None:
        return self.pos.col if self.pos else None

    def with_source(self, source: str) -> SnnError:
        if self.source is None:
            self.source = source
        return self

    def render(self) -> str:
        """`file:line:col: error: message`, the offending line, a caret, the hint. Every part
        is shown with its control characters escaped: a file name or a message quoting the
        input must not move the terminal's cursor or change its colours."""
        head = f"{self.pos}: error: {self.message}" if self.pos else f"error: {self.message}"
        lines = [printable(head)]
        if self.pos and self.source is not None:
            shown = _source_line(self.source, self.pos.line, self.pos.col)
            if shown is not None:
                text, col = shown
                lines.append(f"    {text}")
                lines.append("    " + _caret_padding(text, col) + "^")
        if self.hint:
            lines.append(printable(f"  hint: {self.hint}"))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def printable(text: str) -> str:
    """`text` with every character that is not printable (control characters, line and
    paragraph separators, the surrogates that stand for undecodable bytes of a file name)
    written as a Python escape, so it stays on one line and cannot drive a terminal."""
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


SHOWN_COLUMNS = 160  # of a long line, the part around the caret


def _source_line(source: str, line: int, col: int) -> tuple[str, int] | None:
    """The line `line` as shown under the message, and the caret's column in it: control
    characters as U+FFFD (they could rewrite the user's terminal), and of a long line
    (a whole file on one line) only the part around `col`, cut ends marked with `…`."""
    lines = source.split("\n")  # as the lexer counts lines; splitlines() also splits on \f...
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1].rstrip()
    start = max(0, min(col - 1 - SHOWN_COLUMNS // 2, len(text) - SHOWN_COLUMNS))
    part = text[start:start + SHOWN_COLUMNS]
    head = "…" if start > 0 else ""
    tail = "…" if start + SHOWN_COLUMNS < len(text) else ""
    shown = "".join(c if c.isprintable() or c == "\t" else "\ufffd" for c in part)
    return head + shown + tail, col - start + len(head)


def _caret_padding(text: str, col: int) -> str:
    # Keep tabs so the caret lines up however the terminal renders them.
    return "".join(c if c == "\t" else " " for c in text[: max(0, col - 1)])


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A suggestion for a misspelt name, or None when nothing is close."""
    match = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return match[0] if match else None


def unknown(kind: str, name: str, candidates: Iterable[str], pos: Pos | None,
            owner: str | None = None) -> SnnError:
    """`unknown population 'hiden' — did you mean 'hidden'?`, listing the choices as the hint."""
    candidates = sorted(set(candidates))
    guess = did_you_mean(name, candidates)
    message = f"unknown {kind} '{name}'" + (f" of {owner}" if owner else "")
    if guess:
        message += f" — did you mean '{guess}'?"
    hint = f"known: {', '.join(candidates)}" if candidates else None
    return SnnError(message, pos, hint)
