"""Graph -> Python source through a backend's context and its Jinja2 templates."""
from __future__ import annotations

import networkx as nx

from snnc import __version__
from snnc.backends import clock, event, softbp
from snnc.backends.common import camel_case
from snnc.errors import SnnError
from snnc.plan.lower import lower
from snnc.plan.nodes import Plan
from snnc.plan.support import check_supported
from snnc.runtime.weights import WeightsError, read_state_dict
from snnc.templating import templates

BACKENDS = {"softbp": softbp, "clock": clock, "event": event}


def render_all(graphs: list[nx.MultiDiGraph], backend: str | None = None
               ) -> list[tuple[str, str]]:
    """(class name, module source) of each network; networks whose names give one class
    (`my_net`, `MyNet`, `my__net`) are refused, as their modules would replace each other."""
    _check_distinct_classes(graphs)
    return [render(graph, backend) for graph in graphs]


def _check_distinct_classes(graphs: list[nx.MultiDiGraph]) -> None:
    seen: dict[str, nx.MultiDiGraph] = {}
    for graph in graphs:
        name = camel_case(graph.graph["name"])
        if name in seen:
            first = seen[name].graph
            raise SnnError(f"networks {first['name']} and {graph.graph['name']} both compile "
                           f"to class {name}", graph.graph["pos"],
                           f"rename one of them (the first is at line {first['pos'].line})")
        seen[name] = graph


def render(graph: nx.MultiDiGraph, backend: str | None = None) -> tuple[str, str]:
    """(class name, module source) of one network for `backend` (default: the network's):
    the graph lowered to its plan, checked against what the backend runs, rendered."""
    backend = backend or graph.graph["backend"]
    if backend not in BACKENDS:
        raise SnnError(f"the {backend} backend is not available in snnc {__version__} yet",
                       hint=f"available: {', '.join(BACKENDS)}")
    plan = lower(graph)
    check_supported(plan, backend)
    check_weights(plan)
    context = BACKENDS[backend].context(plan, __version__)
    source = templates().get_template(f"{backend}/network.py.j2").render(**context)
    return context["class_name"], source


def check_weights(plan: Plan) -> dict | None:
    """A network's `weights "FILE"` holds exactly the plan's parameters and buffers, each
    of its shape (a sparse connection's synapses, drawn at build, of any length): its
    tensors, or None without one."""
    if plan.weights is None:
        return None
    at = plan.weights.pos
    try:
        state = read_state_dict(plan.weights.path)
    except WeightsError as err:
        raise SnnError(str(err), at, "write it with torch.save(net.state_dict(), FILE)") from None
    expected = {t.key: t for t in plan.layout}
    missing, extra = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or extra:
        raise SnnError(f"weights file {plan.weights.path} does not fit network {plan.name}: "
                       + "; ".join(part for part in (_listed("missing", missing),
                                                     _listed("unknown", extra)) if part), at,
                       "its keys must be the network's state_dict keys "
                       "(snnc inspect --format plan lists them)")
    for key, tensor in expected.items():
        if tensor.shape is not None and tuple(state[key].shape) != tuple(tensor.shape):
            raise SnnError(f"weights file {plan.weights.path}: {key} has shape "
                           f"{list(state[key].shape)}, the network needs {list(tensor.shape)}",
                           at)
    return state


def _listed(what: str, keys: list[str]) -> str:
    if not keys:
        return ""
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    return f"{what} {shown}"
