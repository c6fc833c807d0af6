"""What every backend needs: literals, names, headers and the neuron step functions."""
from __future__ import annotations

import hashlib
import keyword
from pathlib import Path

import networkx as nx

from snnc.check.values import Spec, Symbol
from snnc.distributions import Normal, Uniform
from snnc.frontend import ast
from snnc.ir.nodes import Population
from snnc.printers import TorchPrinter

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


def step_function(pop: Population) -> dict:
    """The population's reference step: folded charge, fire through the surrogate, reset.
    This is the oracle every fused kernel must match."""
    local = local_names([s.name for s in pop.model.states] + list(pop.learnable))
    printer = TorchPrinter(lambda name: local.get(name, name))
    eq = pop.equations
    lines = [f"{local[a.target]} = {printer(a.value)}" for a in eq.charge]
    lines.append(f"spike = {_fire(eq, pop.surrogate, printer)}")
    if eq.reset:
        lines.append("fired = spike.detach()" if pop.detach_reset else "fired = spike")
        lines += [_reset_line(local[a.target], a, printer) for a in eq.reset]
    states = [local[s.name] for s in pop.model.states]
    learnable = [local[name] for name in pop.learnable]
    return {"name": f"step_{pop.name}", "args": ["x", *states, *learnable], "lines": lines,
            "returns": f"spike, ({', '.join(states)}{',' if len(states) == 1 else ''})",
            "doc": f"{pop.model.name} population '{pop.name}': one step."}


def local_names(names: list[str]) -> dict[str, str]:
    """Distinct Python names for a step function's variables: `lambda` and `lambda_` must
    not both become `lambda_`."""
    taken: set[str] = set()
    local = {}
    for name in names:
        candidate = py_name(name)
        while candidate in taken or (candidate != name and candidate in names):
            candidate += "_"
        taken.add(candidate)
        local[name] = candidate
    return local


def reset_form(assign: ast.Assign) -> tuple[str, ast.Expr | None]:
    """How `state = value` is applied where the neuron fired, in SpikingJelly's cheapest
    forms: ("zero", None) for a hard reset to 0, ("subtract", c) for `state - c`, else
    ("blend", value): state * (1 - fired) + value * fired. Every target prints the same
    form, so fused kernels evaluate exactly what the reference step does."""
    value = assign.value
    if isinstance(value, ast.Number) and value.value == 0:
        return "zero", None
    if isinstance(value, ast.Binary) and value.op == "-" and value.left == ast.Name(assign.target) \
            and isinstance(value.right, ast.Number):
        return "subtract", value.right
    return "blend", value


# Each target's spelling of the three reset forms ({t}: the state, {v}: the value).
TORCH_RESET = {"zero": "{t} = {t} * (1.0 - fired)", "subtract": "{t} = {t} - fired * {v}",
               "blend": "{t} = rt.blend(fired, {v}, {t})"}


def reset_line(target: str, assign: ast.Assign, printer, forms: dict[str, str]) -> str:
    """One reset assignment in a target's spelling of its form (see reset_form)."""
    form, value = reset_form(assign)
    # the value multiplies the spike in C's blend, so it is wrapped as a factor
    return forms[form].format(t=target, v=printer.wrap(value, 6) if value is not None else "")


def _reset_line(target: str, assign: ast.Assign, printer: TorchPrinter) -> str:
    return reset_line(target, assign, printer, TORCH_RESET)


def _fire(eq, surrogate: Spec, printer: TorchPrinter) -> str:
    difference = eq.fire_difference()
    if difference is None:
        return f"rt.truth({printer(eq.fire)}).detach()"  # no surrogate for other conditions
    params = ", ".join(literal(float(v)) for v in surrogate.params.values())
    return f"rt.spike({printer(difference)}, {surrogate.kind!r}, {params})"
