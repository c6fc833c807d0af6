"""Text -> AST for one file, with Lark's errors turned into friendly `SnnError`s."""
from __future__ import annotations

from collections import deque
from functools import lru_cache

from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from snnc.errors import Pos, SnnError
from snnc.frontend import ast
from snnc.frontend.lexer import CURRENT_FILE, RECENT_TOKENS, SnnLexer
from snnc.frontend.transformer import ToAst
from snnc.resources import cache_dir, data_dir

# How the grammar's terminals read in an error message.
_TERMINAL_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "QUANTITY": "a number with a unit",
    "STRING": 'a "string"', "ARROW": "'->'", "COMP_OP": "a comparison",
    "ADD_OP": "'+' or '-'", "MUL_OP": "'*' or '/'", "POW_OP": "'**'",
    "LPAR": "'('", "RPAR": "')'", "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['",
    "RSQB": "']'", "COMMA": "','", "EQUAL": "'='", "COLON": "':'", "SEMICOLON": "';'",
    "VBAR": "'|'", "DOT": "'.'", "TRUE": "'true'", "FALSE": "'false'",
    "LEARNABLE": "'learnable'", "OR": "'or'", "AND": "'and'", "NOT": "'not'",
    "$END": "end of file",
}

# Words written after a number as a unit that .snn does not have (LANGUAGE.md §1):
# physical units of voltage, current, conductance, resistance and capacitance, which
# are plain numbers, and spellings of time and rate units other than the language's.
_PHYSICAL_UNITS = frozenset(
    f"{prefix}{unit}" for unit in ("V", "A", "S", "F", "ohm", "Ohm", "mho")
    for prefix in ("", "f", "p", "n", "u", "m", "k", "M", "G"))
_OTHER_TIME_UNITS = frozenset({
    "sec", "secs", "second", "seconds", "msec", "msecs", "usec", "usecs", "ns", "ps", "min",
    "minute", "minutes", "h", "hr", "hour", "hz", "khz", "KHz", "kHZ", "MHz", "mHz", "Mhz",
})
_UNIT_HINTS = {
    **{word: "voltages, currents and conductances are plain numbers in .snn "
             "(LANGUAGE.md §1): write `-65`, not `-65 mV`" for word in _PHYSICAL_UNITS},
    **{word: "times take s, ms or us, and rates Hz or kHz" for word in _OTHER_TIME_UNITS},
}


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = (data_dir("grammar") / "snn.lark").read_text(encoding="utf-8")
    # The transformer runs inside the parser, so no parse tree is built, and SnnLexer
    # scans with one regex: together about 4x faster than Lark's defaults. The LALR
    # tables are cached (Lark checks the file against the grammar, its options and its
    # version): building them costs more than parsing the standard library.
    folder = cache_dir("grammar")
    return Lark(grammar, parser="lalr", lexer=SnnLexer, maybe_placeholders=True,
                transformer=ToAst(), cache=False if folder is None else str(folder / "snn.lark"))


def parse_text(text: str, file: str = "<string>") -> ast.File:
    """Parse one file's text (imports are not followed here; see loader)."""
    token = CURRENT_FILE.set(file)
    recent = deque(maxlen=3)
    recent_token = RECENT_TOKENS.set(recent)
    try:
        imports, neurons, networks = _lark().parse(text)
    except UnexpectedInput as exc:
        raise (_unknown_unit(exc, recent, text, file) or _friendly(exc, text, file)) from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, SnnError):
            raise exc.orig_exc.with_source(text) from None
        raise
    except SnnError as err:
        raise err.with_source(text) from None
    finally:
        CURRENT_FILE.reset(token)
        RECENT_TOKENS.reset(recent_token)
    return ast.File(file, imports, neurons, networks)


def _describe(terminal: str) -> str:
    if terminal in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[terminal]
    # Keyword literals are named after themselves (NETWORK, POPULATION, ...).
    return f"'{terminal.lower()}'" if terminal.isalpha() else terminal


def _token(token) -> str:
    if token.type in ("NAME", "NUMBER", "QUANTITY", "STRING"):
        return f"{_describe(token.type).removeprefix('a ')} {str(token)!r}"
    return repr(str(token))


def _expected(terminals: set[str]) -> str:
    words = sorted({_describe(t) for t in terminals if not t.startswith("__")})
    if len(words) > 8:
        words = words[:8] + ["..."]
    return ", ".join(words)


def _unknown_unit(exc: UnexpectedInput, recent: deque, text: str,
                  file: str) -> SnnError | None:
    """`5 mV`: a unit word right after a number, where the parse failed at the word or
    at the token after it (`dt = 5 mV` followed by another statement)."""
    if not isinstance(exc, UnexpectedToken):
        return None
    # The unexpected token is the last the lexer made, except the parser's own $END.
    tokens = [*recent, exc.token] if exc.token.type == "$END" else list(recent)
    for i in (len(tokens) - 1, len(tokens) - 2):
        if i >= 1 and tokens[i - 1].type == "NUMBER" and tokens[i].type == "NAME" \
                and str(tokens[i]) in _UNIT_HINTS:
            word = tokens[i]
            return SnnError(f"unknown unit '{word}'", Pos(file, word.line, word.column),
                            _UNIT_HINTS[str(word)], text)
    return None


def _friendly(exc: UnexpectedInput, text: str, file: str) -> SnnError:
    pos = Pos(file, max(exc.line, 1) if exc.line else 1, max(exc.column, 1) if exc.column else 1)
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        message = f"unexpected character {char!r}"
        hint = f"expected {_expected(exc.allowed)}" if exc.allowed else None
        return SnnError(message, pos, hint, text)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            pos = _end_pos(text, file)
            message = "unexpected end of file"
        else:
            message = f"unexpected {_token(token)}"
        accepted = getattr(exc, "accepts", None) or exc.expected
        hint = f"expected {_expected(accepted)}"
        if token.type == "STRING":
            hint = 'strings are only allowed in `import "file.snn"`'
        return SnnError(message, pos, hint, text)
    return SnnError("unexpected end of file", _end_pos(text, file), None, text)


def _end_pos(text: str, file: str) -> Pos:
    lines = text.splitlines() or [""]
    return Pos(file, len(lines), len(lines[-1]) + 1)
