"""The graph IR: a networkx MultiDiGraph (a DiGraph that allows parallel connections).

Nodes are inputs, encoders and populations (attribute `node`: the IR
dataclass); edges are connections keyed by their name (attribute `conn`).
Graph attributes hold the network's settings, monitors and readout. Later
stages read only this graph.
"""
from __future__ import annotations

import networkx as nx

from snnc.ir.nodes import Network


def to_graph(net: Network) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    # Set after construction: networkx reads a `backend` keyword as its own dispatch option.
    graph.graph.update(
        name=net.name, file=net.file, dt_ms=net.dt_ms, steps=net.steps, backend=net.backend,
        seed=net.seed, monitors=net.monitors, readout=net.readout, pos=net.pos,
        weights=net.weights)
    for node in net.nodes():
        graph.add_node(node.name, kind=node.kind, shape=node.shape, node=node)
    for conn in net.connections:
        graph.add_edge(conn.src, conn.dst, key=conn.name, conn=conn, delay=conn.delay)
    return graph


def populations(graph: nx.MultiDiGraph):
    return [data["node"] for _, data in graph.nodes(data=True) if data["kind"] == "population"]


def connections(graph: nx.MultiDiGraph):
    return [data["conn"] for _, _, data in graph.edges(data=True)]
