"""Graph -> Python source through a backend's context and its Jinja2 templates."""
from __future__ import annotations

import networkx as nx

from snnc import __version__
from snnc.backends import softbp
from snnc.check import check_backend
from snnc.errors import SnnError
from snnc.ir import populations
from snnc.templating import templates

BACKENDS = {"softbp": softbp}


def render(graph: nx.MultiDiGraph, backend: str | None = None) -> tuple[str, str]:
    """(class name, module source) of one network for `backend` (default: the network's)."""
    backend = backend or graph.graph["backend"]
    if backend not in BACKENDS:
        raise SnnError(f"the {backend} backend is not available in snnc {__version__} yet",
                       hint=f"available: {', '.join(BACKENDS)}")
    check_backend(populations(graph), backend, None)
    module = BACKENDS[backend]
    context = module.context(graph, __version__)
    source = templates().get_template(f"{backend}/network.py.j2").render(**context)
    return context["class_name"], source

