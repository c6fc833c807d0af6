"""The schedule: the order in which one step updates the nodes.

Within a step a node must be updated after every node that reaches it with
delay 0; connections with a delay read the past and impose no order. The
check stage has already refused zero-delay cycles.
"""
from __future__ import annotations

import networkx as nx


def schedule(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy of `graph` with `graph.graph['schedule']`: node names in update order."""
    same_step = nx.DiGraph()
    same_step.add_nodes_from(graph.nodes)
    same_step.add_edges_from((u, v) for u, v, data in graph.edges(data=True)
                             if data["conn"].min_delay == 0)
    # An encoder reads its input in the same step.
    same_step.add_edges_from((data["node"].source, name) for name, data in graph.nodes(data=True)
                             if data["kind"] == "encoder" and data["node"].source)
    ordered = graph.copy()
    # Lexicographic among ready nodes, so the order (and generated code) is deterministic.
    ordered.graph["schedule"] = list(nx.lexicographical_topological_sort(same_step))
    return ordered
