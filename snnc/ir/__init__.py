"""The graph IR and its node dataclasses."""
from snnc.ir.graph import connections, populations, to_graph

__all__ = ["to_graph", "populations", "connections"]
