"""One Lark Transformer: parse tree -> AST dataclasses. Nothing else reads Lark trees."""
from __future__ import annotations

from lark import Token, Transformer, v_args

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


@v_args(meta=True)
class ToAst(Transformer):
    """Builds the AST for one file; `file` goes into every position."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    # -------------------------------------------------------------- helpers
    def _pos(self, meta) -> Pos:
        return Pos(self.file, getattr(meta, "line", 0), getattr(meta, "column", 0))

    def _tpos(self, token: Token) -> Pos:
        return Pos(self.file, token.line, token.column)

    def _n(self, token: Token) -> str:
        return _name(token, self.file)

    # -------------------------------------------------------------- expressions
    def number(self, meta, children):
        (tok,) = children
        return ast.Number(_number(tok), pos=self._tpos(tok))

    def quantity(self, meta, children):
        (tok,) = children
        text = str(tok)
        unit = next(u for u in ("kHz", "Hz", "ms", "us", "s") if text.endswith(u))
        return ast.Quantity(_number(text[: -len(unit)]), unit, pos=self._tpos(tok))

    def name(self, meta, children):
        (tok,) = children
        return ast.Name(self._n(tok), pos=self._tpos(tok))

    def true(self, meta, children):
        return ast.Bool(True, pos=self._tpos(children[0]))

    def false(self, meta, children):
        return ast.Bool(False, pos=self._tpos(children[0]))

    def kwarg(self, meta, children):
        key, value = children
        # Not checked against keywords: `filter(learnable = true)` names a parameter of a
        # built-in; user-defined parameter names are checked where they are declared.
        return ast.Kwarg(str(key), value, pos=self._tpos(key))

    def call(self, meta, children):
        func, *rest = children
        args = [c for c in rest if c is not None and not isinstance(c, ast.Kwarg)]
        kwargs = [c for c in rest if isinstance(c, ast.Kwarg)]
        seen: set[str] = set()
        for kw in kwargs:
            if kw.name in seen:
                raise SnnError(f"argument '{kw.name}' given twice", kw.pos)
            seen.add(kw.name)
        return ast.Call(str(func), tuple(args), tuple(kwargs), pos=self._tpos(func))

    def bare(self, meta, children):
        (tok,) = children
        return ast.Call(self._n(tok), pos=self._tpos(tok))

    def unary(self, meta, children):
        op, operand = children
        return ast.Unary(str(op), operand, pos=self._tpos(op))

    def not_(self, meta, children):
        (operand,) = children
        return ast.Unary("not", operand, pos=self._pos(meta))

    def _fold_left(self, meta, children):
        left = children[0]
        for op, right in zip(children[1::2], children[2::2]):
            left = ast.Binary(str(op), left, right, pos=left.pos)
        return left

    binary = _fold_left
    compare = _fold_left

    def _chain(self, op: str, meta, children):
        left = children[0]
        for right in children[1:]:
            left = ast.Binary(op, left, right, pos=left.pos)
        return left

    def or_(self, meta, children):
        return self._chain("or", meta, children)

    def and_(self, meta, children):
        return self._chain("and", meta, children)

    # -------------------------------------------------------------- neurons
    def param_decl(self, meta, children):
        key, value = children
        return ast.ParamDecl(self._n(key), value, pos=self._tpos(key))

    def param_stmt(self, meta, children):
        key, value, learnable = children
        return ast.ParamStmt(self._n(key), value, learnable is not None, pos=self._tpos(key))

    def state_stmt(self, meta, children):
        key, value = children
        return ast.StateStmt(self._n(key), value, pos=self._tpos(key))

    def assign(self, meta, children):
        key, value = children
        return ast.Assign(self._n(key), value, pos=self._tpos(key))

    def block(self, meta, children):
        return tuple(children)

    def charge_stmt(self, meta, children):
        (body,) = children
        return ("charge", body if isinstance(body, tuple) else (body,), self._pos(meta))

    def fire_stmt(self, meta, children):
        return ("fire", children[0], self._pos(meta))

    def reset_stmt(self, meta, children):
        (body,) = children
        if isinstance(body, tuple):
            return ("reset", ast.Reset(None, body, pos=self._pos(meta)), self._pos(meta))
        return ("reset", ast.Reset(str(body), pos=self._tpos(body)), self._pos(meta))

    def kernel_stmt(self, meta, children):
        return ("kernel", children[0], self._pos(meta))

    def feedback_stmt(self, meta, children):
        return ("feedback", children[0], self._pos(meta))

    def neuron_def(self, meta, children):
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
    def shape(self, meta, children):
        return tuple(children)

    def setting(self, meta, children):
        key, value = children
        return ast.Setting(self._n(key), value, pos=self._tpos(key))

    def input_decl(self, meta, children):
        key, shape = children
        return ast.InputDecl(self._n(key), shape, pos=self._tpos(key))

    def encoder_decl(self, meta, children):
        key, shape, model = children
        return ast.EncoderDecl(self._n(key), shape, model, pos=self._tpos(key))

    def population_decl(self, meta, children):
        key, shape, model = children
        return ast.PopulationDecl(self._n(key), shape, model, pos=self._tpos(key))

    def alias(self, meta, children):
        return ("alias", self._n(children[0]))

    def pipeline(self, meta, children):
        return ("ops", tuple(children))

    def delay(self, meta, children):
        return ("delay", children[0])

    def via(self, meta, children):
        return ("via", children[0])

    def learn(self, meta, children):
        return ("learn", children[0])

    def connect_stmt(self, meta, children):
        src, _arrow, dst, *clauses = children
        parts = dict(c for c in clauses if c is not None)
        return ast.Connect(
            ast.Name(self._n(src), pos=self._tpos(src)),
            ast.Name(self._n(dst), pos=self._tpos(dst)),
            parts.get("alias"), parts.get("ops", ()), parts.get("delay"),
            parts.get("via"), parts.get("learn"), pos=self._tpos(src))

    def probe(self, meta, children):
        target, var = children
        return ast.Probe(self._n(target), str(var), pos=self._tpos(target))

    def monitor_stmt(self, meta, children):
        return ast.Monitor(tuple(children), pos=self._pos(meta))

    def readout_stmt(self, meta, children):
        target, kind = children
        return ast.Readout(self._n(target), kind, pos=self._tpos(target))

    def network_def(self, meta, children):
        name, *body = children
        return ast.NetworkDef(self._n(name), tuple(body), pos=self._tpos(name))

    # -------------------------------------------------------------- files
    def import_stmt(self, meta, children):
        (tok,) = children
        return ast.Import(str(tok)[1:-1], pos=self._tpos(tok))

    def start(self, meta, children):
        return (
            tuple(c for c in children if isinstance(c, ast.Import)),
            tuple(c for c in children if isinstance(c, ast.NeuronDef)),
            tuple(c for c in children if isinstance(c, ast.NetworkDef)),
        )
