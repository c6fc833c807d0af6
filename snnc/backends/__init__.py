"""Backends: each turns the graph into a context dict that its templates render."""
