"""The backend-neutral plan (nodes.py) and the pass that lowers a graph to it (lower.py)."""
