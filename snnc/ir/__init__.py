"""The IR: checked values (values.py), expressions (expr.py), the node dataclasses
(nodes.py) and the graph that holds them (graph.py). It imports no other stage."""
