"""What every backend needs: literals, names, headers and the neuron step functions."""
from __future__ import annotations

import hashlib
import keyword
from pathlib import Path

import networkx as nx

from snnc.check.values import Symbol
from snnc.distributions import Normal, Uniform

# Names generated code uses itself; a model's name that collides gets a trailing `_`.
_TAKEN = {"spike", "fired", "rt", "torch", "nn", "self"}  # `x` is the input, as in .snn


def py_name(name: str) -> str:
    """A language identifier as a safe Python identifier (keywords get a trailing `_`)."""
    if not name.isidentifier():
        raise ValueError(f"not an identifier: {name!r}")  # the grammar makes this impossible
    return f"{name}_" if keyword.iskeyword(name) or name in _TAKEN else name


def camel_case(name: str) -> str:
    """`mnist_mlp` -> `MnistMlp` (LANGUAGE.md §3)."""
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
    camel = camel or "Network"
    return f"N{camel}" if camel[0].isdigit() else camel


def literal(value) -> str:
    """A checked value as Python source; nothing from the input is pasted unchecked."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Symbol):
        return repr(value.name)
    if isinstance(value, Uniform):
        return f"rt.Uniform({value.low!r}, {value.high!r})"
    if isinstance(value, Normal):
        return f"rt.Normal({value.mean!r}, {value.std!r})"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    if isinstance(value, str):
        return repr(value)
    raise TypeError(f"no literal for {value!r}")


def header(graph: nx.MultiDiGraph, backend: str, version: str) -> dict:
    source = Path(graph.graph["file"])
    return {"source": source.name, "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "version": version, "backend": backend}
