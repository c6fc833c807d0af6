"""Graph -> Python source through a backend's context and its Jinja2 templates."""
from __future__ import annotations

from functools import lru_cache

import jinja2
import networkx as nx

from snnc import __version__
from snnc.backends import softbp
from snnc.backends.common import literal
from snnc.check import check_backend
from snnc.errors import SnnError
from snnc.ir import populations
from snnc.resources import data_dir

BACKENDS = {"softbp": softbp}


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["py"] = literal
    return env


def render(graph: nx.MultiDiGraph, backend: str | None = None) -> tuple[str, str]:
    """(class name, module source) of one network for `backend` (default: the network's)."""
    backend = backend or graph.graph["backend"]
    if backend not in BACKENDS:
        raise SnnError(f"the {backend} backend is not available in snnc {__version__} yet",
                       hint=f"available: {', '.join(BACKENDS)}")
    check_backend(populations(graph), backend, None)
    module = BACKENDS[backend]
    context = module.context(graph, __version__)
    source = _templates().get_template(f"{backend}/network.py.j2").render(**context)
    return context["class_name"], source

