"""One Lark Transformer: parse tree -> AST dataclasses. Nothing else reads Lark trees."""
from __future__ import annotations

from contextvars import ContextVar

from lark import Token, Transformer

from snnc.errors import Pos, SnnError
from snnc.frontend import ast

# LANGUAGE.md §1: these cannot be used as names.
KEYWORDS = frozenset({
    "network", "neuron", "input", "encoder", "population", "connect", "delay", "via",
    "learn", "monitor", "readout", "import", "param", "state", "charge", "fire", "reset",
    "learnable", "true", "false",
})
# Words the expression grammar uses as operators.
OPERATOR_WORDS = frozenset({"and", "or", "not"})


def _name(token: Token, file: str) -> str:
    """A validated identifier: a spec keyword is refused with its position."""
    if token in KEYWORDS or token in OPERATOR_WORDS:
        raise SnnError(f"'{token}' is a keyword and cannot be used as a name",
                       Pos(file, token.line, token.column), "choose another name")
    return str(token)


def _number(text: str) -> int | float:
    clean = text.strip()
    if clean.isdigit() and len(clean) <= 18:
        return int(clean)
    return float(clean)  # a huge literal becomes inf and is refused by the checks


# The file being parsed. The transformer runs inside the LALR parser (no parse tree is
# built), so it is shared by every parse and learns the file name from here.
CURRENT_FILE: ContextVar[str] = ContextVar("CURRENT_FILE", default="<string>")


class ToAst(Transformer):
    """Builds the AST; every position names CURRENT_FILE."""

    # -------------------------------------------------------------- helpers
    @property
    def file(self) -> str:
        return CURRENT_FILE.get()

    def _tpos(self, token: Token) -> Pos:
        return Pos(self.file, token.line, token.column)

    def _n(self, token: Token) -> str:
        return _name(token, self.file)

    # -------------------------------------------------------------- expressions
    def number(self, children):
        (tok,) = children
        return ast.Number(_number(tok), pos=self._tpos(tok))

    def quantity(self, children):
        (tok,) = children
        text = str(tok)
        unit = next(u for u in ("kHz", "Hz", "ms", "us", "s") if text.endswith(u))
        return ast.Quantity(_number(text[: -len(unit)]), unit, pos=self._tpos(tok))

    def name(self, children):
        (tok,) = children
        return ast.Name(self._n(tok), pos=self._tpos(tok))

    def true(self, children):
        return ast.Bool(True, pos=self._tpos(children[0]))

    def false(self, children):
        return ast.Bool(False, pos=self._tpos(children[0]))

    def kwarg(self, children):
        key, value = children
        # Not checked against keywords: `filter(learnable = true)` names a parameter of a
        # built-in; user-defined parameter names are checked where they are declared.
        return ast.Kwarg(str(key), value, pos=self._tpos(key))

    def call(self, children):
        func, *rest = children
        args = [c for c in rest if c is not None and not isinstance(c, ast.Kwarg)]
        kwargs = [c for c in rest if isinstance(c, ast.Kwarg)]
        seen: set[str] = set()
        for kw in kwargs:
            if kw.name in seen:
                raise SnnError(f"argument '{kw.name}' given twice", kw.pos)
            seen.add(kw.name)
        return ast.Call(str(func), tuple(args), tuple(kwargs), pos=self._tpos(func))

    def bare(self, children):
        (tok,) = children
        return ast.Call(self._n(tok), pos=self._tpos(tok))

    def unary(self, children):
        op, operand = children
        return ast.Unary(str(op), operand, pos=self._tpos(op))

    def not_(self, children):
        keyword, operand = children
        return ast.Unary("not", operand, pos=self._tpos(keyword))

    def binary(self, children):
        left, op, right = children
        return ast.Binary(str(op), left, right, pos=left.pos)

    def or_(self, children):
        left, right = children
        return ast.Binary("or", left, right, pos=left.pos)

    def and_(self, children):
        left, right = children
        return ast.Binary("and", left, right, pos=left.pos)

    # -------------------------------------------------------------- neurons
    def param_decl(self, children):
        key, value = children
        return ast.ParamDecl(self._n(key), value, pos=self._tpos(key))

    def param_stmt(self, children):
        key, value, learnable = children
        return ast.ParamStmt(self._n(key), value, learnable is not None, pos=self._tpos(key))

    def state_stmt(self, children):
        key, value = children
        return ast.StateStmt(self._n(key), value, pos=self._tpos(key))

    def assign(self, children):
        key, value = children
        return ast.Assign(self._n(key), value, pos=self._tpos(key))

    def block(self, children):
        return tuple(children)

    def charge_stmt(self, children):
        keyword, body = children
        return ("charge", body if isinstance(body, tuple) else (body,), self._tpos(keyword))

    def fire_stmt(self, children):
        keyword, expr = children
        return ("fire", expr, self._tpos(keyword))

    def reset_stmt(self, children):
        keyword, body = children
        pos = self._tpos(keyword)
        if isinstance(body, tuple):
            return ("reset", ast.Reset(None, body, pos=pos), pos)
        return ("reset", ast.Reset(str(body), pos=self._tpos(body)), pos)

    def kernel_stmt(self, children):
        keyword, expr = children
        return ("kernel", expr, self._tpos(keyword))

    def feedback_stmt(self, children):
        keyword, call = children
        return ("feedback", call, self._tpos(keyword))

    def neuron_def(self, children):
        name, *rest = children
        params = [c for c in rest if isinstance(c, ast.ParamDecl)]
        body_params = [c for c in rest if isinstance(c, ast.ParamStmt)]
        states = [c for c in rest if isinstance(c, ast.StateStmt)]
        clauses: dict[str, object] = {}
        for item in rest:
            if isinstance(item, tuple):
                kind, value, pos = item
                if kind in clauses:
                    raise SnnError(f"neuron '{name}' has more than one `{kind}`", pos,
                                   f"merge them into one `{kind} {{ ... }}` block"
                                   if kind in ("charge", "reset") else None)
                clauses[kind] = value
        return ast.NeuronDef(
            self._n(name), tuple(params), tuple(body_params), tuple(states),
            clauses.get("charge"), clauses.get("fire"), clauses.get("reset"),
            clauses.get("kernel"), clauses.get("feedback"), pos=self._tpos(name))

    # -------------------------------------------------------------- networks
    def shape(self, children):
        return tuple(children)

    def setting(self, children):
        key, value = children
        return ast.Setting(self._n(key), value, pos=self._tpos(key))

    def input_decl(self, children):
        key, shape = children
        return ast.InputDecl(self._n(key), shape, pos=self._tpos(key))

    def encoder_decl(self, children):
        key, shape, model = children
        return ast.EncoderDecl(self._n(key), shape, model, pos=self._tpos(key))

    def population_decl(self, children):
        key, shape, model = children
        return ast.PopulationDecl(self._n(key), shape, model, pos=self._tpos(key))

    def alias(self, children):
        return ("alias", self._n(children[0]))

    def pipeline(self, children):
        return ("ops", tuple(children))

    def delay(self, children):
        return ("delay", children[0])

    def via(self, children):
        return ("via", children[0])

    def learn(self, children):
        return ("learn", children[0])

    def connect_stmt(self, children):
        src, _arrow, dst, *clauses = children
        parts = dict(c for c in clauses if c is not None)
        return ast.Connect(
            ast.Name(self._n(src), pos=self._tpos(src)),
            ast.Name(self._n(dst), pos=self._tpos(dst)),
            parts.get("alias"), parts.get("ops", ()), parts.get("delay"),
            parts.get("via"), parts.get("learn"), pos=self._tpos(src))

    def probe(self, children):
        target, var = children
        return ast.Probe(self._n(target), str(var), pos=self._tpos(target))

    def monitor_stmt(self, children):
        keyword, *probes = children
        return ast.Monitor(tuple(probes), pos=self._tpos(keyword))

    def readout_stmt(self, children):
        target, kind = children
        return ast.Readout(self._n(target), kind, pos=self._tpos(target))

    def network_def(self, children):
        name, *body = children
        return ast.NetworkDef(self._n(name), tuple(body), pos=self._tpos(name))

    # -------------------------------------------------------------- files
    def import_stmt(self, children):
        (tok,) = children
        return ast.Import(str(tok)[1:-1], pos=self._tpos(tok))

    def start(self, children):
        return (
            tuple(c for c in children if isinstance(c, ast.Import)),
            tuple(c for c in children if isinstance(c, ast.NeuronDef)),
            tuple(c for c in children if isinstance(c, ast.NetworkDef)),
        )
