"""One Lark Transformer: parse tree -> AST dataclasses. Nothing else reads Lark trees."""
from __future__ import annotations

import math

from lark import Token, Transformer

from snnc.errors import Pos, SnnError
from snnc.frontend import ast
from snnc.frontend.lexer import CURRENT_FILE
from snnc.limits import MAX_EXPR_DEPTH, MAX_MAGNITUDE

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


# An integer literal stays exact while it fits an int64 (a 63-bit seed keeps its last
# digit); beyond, it is a float: PyTorch refuses Python ints that do not fit an int64.
_MAX_EXACT_INT = 2**63 - 1


def _number(text: str, pos: Pos) -> int | float:
    """A literal's value; one that is not finite or beyond ±MAX_MAGNITUDE is refused
    here, where it was written, even where nothing evaluates it at build time."""
    clean = text.strip()
    exact = clean.isdigit() and len(clean) <= 19 and int(clean) <= _MAX_EXACT_INT
    value = int(clean) if exact else float(clean)
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise SnnError(f"number too large: {value:g}", pos,
                       f"values must lie within ±{MAX_MAGNITUDE:g}")
    return value


def _bounded_depth(node: ast.Expr, at: Pos) -> ast.Expr:
    """`node`, or an SnnError at `at` (its operator or call) when it nests operators and
    calls deeper than MAX_EXPR_DEPTH: the first node to exceed it is the one reported."""
    if node.depth > MAX_EXPR_DEPTH:
        raise SnnError(f"this expression is nested too deeply: more than {MAX_EXPR_DEPTH} "
                       "operators and calls inside each other", at,
                       "split it into smaller parts (a long sum: several `param`s or "
                       "assignments)")
    return node


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
        pos = self._tpos(tok)
        return ast.Number(_number(tok, pos), pos=pos)

    def quantity(self, children):
        (tok,) = children
        text, pos = str(tok), self._tpos(tok)
        unit = next(u for u in ("kHz", "Hz", "ms", "us", "s") if text.endswith(u))
        return ast.Quantity(_number(text[: -len(unit)], pos), unit, pos=pos)

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
        call = self.model_call(children)
        return _bounded_depth(call, call.pos)

    def model_call(self, children):
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
        pos = self._tpos(op)
        return _bounded_depth(ast.Unary(str(op), operand, pos=pos), pos)

    def not_(self, children):
        keyword, operand = children
        pos = self._tpos(keyword)
        return _bounded_depth(ast.Unary("not", operand, pos=pos), pos)

    def binary(self, children):
        # A binary node is placed at its left operand (where the expression starts);
        # a depth error at the operator, which tells the terms of a long sum apart.
        left, op, right = children
        return _bounded_depth(ast.Binary(str(op), left, right, pos=left.pos), self._tpos(op))

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

    def weights_stmt(self, children):
        keyword, path = children
        return ast.Weights(str(path)[1:-1], pos=self._tpos(keyword))

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
