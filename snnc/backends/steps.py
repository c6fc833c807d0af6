"""A population's reference step (the oracle) and the reset forms every target prints."""
from __future__ import annotations

from snnc.backends.common import literal, py_name
from snnc.check.values import Spec
from snnc.frontend import ast
from snnc.ir.nodes import Population
from snnc.printers import TorchPrinter


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
