"""The pipeline, top-down: load -> checks -> graph -> passes -> a backend's module."""
from __future__ import annotations

import builtins
import contextlib
import types
from collections.abc import Iterable, Iterator
from pathlib import Path

import networkx as nx

from snnc.check import check_program
from snnc.check.budget import check_budget
from snnc.errors import SnnError
from snnc.frontend.loader import Program, load
from snnc.ir.graph import to_graph
from snnc.passes import fold_constants, schedule


def frontend(path: str | Path, network: str | None = None,
             allowed: Iterable[str | Path] = ()) -> list[nx.MultiDiGraph]:
    """One scheduled, constant-folded graph per network of `path` (or the one named)."""
    return analyse(path, network, allowed)[1]


def analyse(path: str | Path, network: str | None = None, allowed: Iterable[str | Path] = ()
            ) -> tuple[Program, list[nx.MultiDiGraph]]:
    """The loaded program and its graphs. Each graph records the files it was loaded from
    with their sha256 (graph.graph["sources"], the main file first)."""
    program = load(path, allowed)
    with sources_shown(program):
        networks = check_program(program, network)
        for net in networks:
            check_budget(net)  # before anything of the network is allocated
        graphs = [schedule(fold_constants(to_graph(net))) for net in networks]
    digests = program.digests()
    for graph in graphs:
        graph.graph["sources"] = digests
    return program, graphs


@contextlib.contextmanager
def sources_shown(program: Program) -> Iterator[None]:
    """An error raised by any stage after loading shows the line it points at."""
    try:
        yield
    except SnnError as err:
        if err.file in program.sources:
            err.with_source(program.sources[err.file])
        raise


def generate(path: str | Path, backend: str | None = None, network: str | None = None,
             allowed: Iterable[str | Path] = ()) -> list[tuple[str, str]]:
    """(class name, Python source) for each network of `path`: the front end, then codegen."""
    return build_sources(path, backend, network, allowed)[1]


def build_sources(path: str | Path, backend: str | None = None, network: str | None = None,
                  allowed: Iterable[str | Path] = ()
                  ) -> tuple[Program, list[tuple[str, str]]]:
    """The program and (class name, Python source) for each of its networks."""
    from snnc.codegen import render_all
    program, graphs = analyse(path, network, allowed)
    with sources_shown(program):
        return program, render_all(graphs, backend)


def compile(path: str | Path, backend: str | None = None, network: str | None = None,
            allowed: Iterable[str | Path] = ()) -> type:
    """The generated class of one network (the first, or `network`), without writing a file."""
    chosen = generate(path, backend, network, allowed)
    if not chosen:
        raise SnnError(f"{path} defines no network", hint="add `network NAME { ... }`")
    return load_class(*chosen[0])


def compile_graph(program: Program, graph: nx.MultiDiGraph, backend: str | None = None
                  ) -> type:
    """The generated class of one analysed network (see analyse) for `backend`."""
    from snnc.codegen import render
    with sources_shown(program):
        return load_class(*render(graph, backend))


def load_class(class_name: str, source: str) -> type:
    """The class `class_name` of a module snnc generated, executed in memory."""
    module = types.ModuleType(f"snnc_generated_{class_name}")
    module.__file__ = f"<snnc {class_name}>"
    # The source is snnc's own output: names are validated identifiers, values literals,
    # text from the input appears only escaped inside comments.
    exec(builtins.compile(source, module.__file__, "exec"), module.__dict__)
    return getattr(module, class_name)
