"""The pipeline, top-down: parse -> checks -> graph -> passes (-> backends, issue 3)."""
from __future__ import annotations

import builtins
import types
from collections.abc import Iterable
from pathlib import Path

import networkx as nx

from snnc.check import check_program
from snnc.errors import Pos, SnnError
from snnc.frontend.loader import load
from snnc.ir import to_graph
from snnc.passes import fold_constants, schedule


def frontend(path: str | Path, network: str | None = None,
             allowed: Iterable[str | Path] = ()) -> list[nx.MultiDiGraph]:
    """One scheduled, constant-folded graph per network of `path` (or the one named)."""
    try:
        return _frontend(path, network, allowed)
    except RecursionError as exc:
        raise SnnError("this expression is nested too deeply to compile", _deepest(path),
                       "split very long expressions into several statements") from exc


def _deepest(path: str | Path, limit: int = 100) -> Pos:
    """Where parentheses first nest `limit` deep: the place to point at."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    depth, line, col = 0, 1, 0
    for char in text:
        col += 1
        if char == "\n":
            line, col = line + 1, 0
        depth += (char == "(") - (char == ")")
        if depth >= limit:
            return Pos(str(path), line, col)
    return Pos(str(path), 1, 1)


def _frontend(path, network, allowed) -> list[nx.MultiDiGraph]:
    program = load(path, allowed)
    try:
        networks = check_program(program, network)
    except SnnError as err:
        if err.file in program.sources:
            err.with_source(program.sources[err.file])
        raise
    return [schedule(fold_constants(to_graph(net))) for net in networks]


def generate(path: str | Path, backend: str | None = None, network: str | None = None,
             allowed: Iterable[str | Path] = ()) -> list[tuple[str, str]]:
    """(class name, Python source) for each network of `path`: the front end, then codegen."""
    from snnc.codegen import render
    return [render(graph, backend) for graph in frontend(path, network, allowed)]


def compile(path: str | Path, backend: str | None = None, network: str | None = None,
            allowed: Iterable[str | Path] = ()) -> type:
    """The generated class of one network (the first, or `network`), without writing a file."""
    chosen = generate(path, backend, network, allowed)
    if not chosen:
        raise SnnError(f"{path} defines no network", hint="add `network NAME { ... }`")
    class_name, source = chosen[0]
    module = types.ModuleType(f"snnc_generated_{class_name}")
    module.__file__ = f"<snnc {Path(path).name}>"
    # The source is snnc's own output: names are validated identifiers, values literals.
    exec(builtins.compile(source, module.__file__, "exec"), module.__dict__)
    return getattr(module, class_name)
