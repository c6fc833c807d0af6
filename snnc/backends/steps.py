"""A population's reference step (the oracle) and the reset forms every target prints."""
from __future__ import annotations

import itertools
import keyword
import re

from snnc.backends.common import literal
from snnc.ir import expr as ex
from snnc.ir.nodes import Population
from snnc.ir.values import Spec
from snnc.plan.nodes import RuleStep, SynapseStep
from snnc.printers import TorchPrinter, split_deep

# Names the step function uses itself, and its temporaries (_e0, _e1, ...) where an
# expression nests too deeply for one line: a model's name that is one of them, a Python
# keyword or `__debug__` (which cannot be assigned) gets a trailing `_`.
_OWN_NAMES = frozenset({"x", "spike", "fired", "rt", "torch", "__debug__"})
_TEMPORARY = re.compile(r"_e[0-9]+")


class _Body:
    """The lines of a population's step function as they are printed: its names, the
    temporaries of deep expressions (lines first), the charge."""

    def __init__(self, pop: Population):
        self.pop, self.states = pop, list(pop.model.states)
        self.local = local_names(self.states + list(pop.learnable))
        self.printer = TorchPrinter(lambda name: self.local.get(name, name), like="x")
        self.dynamic = {"x", *self.states}
        self.lines: list[str] = []
        self.fresh = _fresh()

    def expression(self, expr: ex.Expr) -> ex.Expr:
        """`expr`, its deep parts first assigned to temporaries (lines before)."""
        parts, root = split_deep(expr, self.fresh)
        self.lines.extend(f"{name} = {self.printer(part)}" for name, part in parts)
        return root

    def per_neuron(self, expr: ex.Expr) -> str:
        text = self.printer(self.expression(expr))
        return text if _reads(expr, self.dynamic) else f"rt.ops.full({text}, x)"

    def charge(self) -> None:
        for a in self.pop.equations.charge:
            self.lines.append(f"{self.local[a.target]} = {self.per_neuron(a.value)}")

    def args(self) -> list[str]:
        return ["x", *(self.local[s] for s in self.states),
                *(self.local[name] for name in self.pop.learnable)]

    def state_tuple(self) -> str:
        names = [self.local[s] for s in self.states]
        return f"({', '.join(names)}{',' if len(names) == 1 else ''})"


def step_function(pop: Population) -> dict:
    """The population's reference step: folded charge, fire through the surrogate, reset.
    This is the oracle every fused kernel must match.

    Every value it returns has the population's shape: an assignment or a fire argument
    that reads neither x nor a state (constants and learnable parameters only) is
    broadcast to x's shape (rt.ops.full), so that `fire w > 0.5` gives one spike per
    neuron, as the fused kernels do; what reads x or a state has that shape already."""
    body = _Body(pop)
    body.charge()
    eq = pop.equations
    spike = _fire(eq, pop.surrogate, body.printer, body.expression, body.per_neuron)
    body.lines.append(f"spike = {spike}")
    if eq.reset:
        body.lines.append("fired = spike.detach()" if pop.detach_reset else "fired = spike")
        for a in eq.reset:
            assign = ex.Assign(a.target, body.expression(a.value), pos=a.pos)
            body.lines.append(_reset_line(body.local[a.target], assign, body.printer))
    # the backend names and documents it: populations with the same step share one
    return {"args": body.args(), "lines": body.lines,
            "returns": f"spike, {body.state_tuple()}"}


def charge_function(pop: Population) -> dict:
    """The population's charge alone, `charge(x, *states, *learnable) -> states`: its
    dynamics below threshold, from which the event backend derives its kernels."""
    body = _Body(pop)
    body.charge()
    return {"args": body.args(), "lines": body.lines, "returns": body.state_tuple()}


def synapse_function(synapse: SynapseStep) -> dict:
    """A synapse's step: `step(x, *states, *learnable) -> (current, states)`, its
    equations (snnc.registry.synapses, parameters folded) printed line by line. Its names
    are the registry's own (i, r, u, out, w), never the user's."""
    printer = TorchPrinter(like="x")
    states = [name for name, _ in synapse.states]
    dynamic = {"x", *states, *(a.target for a in synapse.update)}

    def per_synapse(expr: ex.Expr) -> str:
        """`expr` with x's shape (`spike_current(amplitude = 0)` folds to a constant)."""
        text = printer(expr)
        return text if _reads(expr, dynamic) else f"rt.ops.full({text}, x)"

    lines = [f"{a.target} = {per_synapse(a.value)}" for a in synapse.update]
    return {"args": ["x", *states, *(name for name, _ in synapse.learnable)], "lines": lines,
            "returns": f"{per_synapse(synapse.output)}, ({', '.join(states)}"
                       f"{',' if len(states) == 1 else ''})"}


def rule_functions(rule: RuleStep) -> dict[str, dict]:
    """A plasticity rule's steps (runtime.plasticity.STDP calls them): `decay` of both
    traces, and per pathway its trace's jump and the weight's change, printed from the
    rule's equations (snnc.registry.rules, parameters folded). Its names are the
    registry's own (x_pre, x_post, w)."""
    printer = TorchPrinter(like="w")

    def function(args: list[str], assigns) -> dict:
        lines = [f"{a.target} = {printer(a.value)}" for a in assigns]
        targets = list(dict.fromkeys(a.target for a in assigns))
        return {"args": args, "lines": lines, "returns": ", ".join(targets)}

    return {"decay": function(["x_pre", "x_post"], rule.decay),
            "pre_trace": function(["x_pre"], [rule.pre_trace]),
            "pre_weight": function(["w", "x_pre", "x_post"], [rule.pre_weight]),
            "post_trace": function(["x_post"], [rule.post_trace]),
            "post_weight": function(["w", "x_pre", "x_post"], [rule.post_weight])}


def local_names(names: list[str]) -> dict[str, str]:
    """Distinct Python names for a step function's variables: a name the function uses
    itself, a keyword or a temporary's gets a trailing `_`, and `lambda` and `lambda_`
    must not both become `lambda_`."""
    taken: set[str] = set()
    local = {}
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"not an identifier: {name!r}")  # the grammar makes this impossible
        candidate = name
        while (keyword.iskeyword(candidate) or candidate in _OWN_NAMES
               or _TEMPORARY.fullmatch(candidate) or candidate in taken
               or (candidate != name and candidate in names)):
            candidate += "_"
        taken.add(candidate)
        local[name] = candidate
    return local


def _fresh():
    counter = itertools.count()
    return lambda: f"_e{next(counter)}"


def _reads(expr: ex.Expr, names: set[str]) -> bool:
    return any(isinstance(node, ex.Name) and node.id in names
               for node in ex.subexpressions(expr))


def reset_form(assign: ex.Assign) -> tuple[str, ex.Expr | None]:
    """How `state = value` is applied where the neuron fired, in SpikingJelly's cheapest
    forms: ("zero", None) for a hard reset to 0, ("subtract", c) for `state - c`, else
    ("blend", value): state * (1 - fired) + value * fired. Every target prints the same
    form, so fused kernels evaluate exactly what the reference step does."""
    value = assign.value
    if isinstance(value, ex.Number) and value.value == 0:
        return "zero", None
    if isinstance(value, ex.Binary) and value.op == "-" and value.left == ex.Name(assign.target) \
            and isinstance(value.right, ex.Number):
        return "subtract", value.right
    return "blend", value


# Each target's spelling of the three reset forms ({t}: the state, {v}: the value).
TORCH_RESET = {"zero": "{t} = {t} * (1.0 - fired)", "subtract": "{t} = {t} - fired * {v}",
               "blend": "{t} = rt.blend(fired, {v}, {t})"}


def reset_line(target: str, assign: ex.Assign, printer, forms: dict[str, str]) -> str:
    """One reset assignment in a target's spelling of its form (see reset_form)."""
    form, value = reset_form(assign)
    # the value multiplies the spike in C's blend, so it is wrapped as a factor
    return forms[form].format(t=target, v=printer.wrap(value, 6) if value is not None else "")


def _reset_line(target: str, assign: ex.Assign, printer: TorchPrinter) -> str:
    return reset_line(target, assign, printer, TORCH_RESET)


def _fire(eq, surrogate: Spec, printer: TorchPrinter, expression, per_neuron) -> str:
    """The spike: Heaviside of the fire argument with the surrogate's gradient, or, for a
    condition that is no comparison, where it is non-zero, without a gradient."""
    difference = eq.fire_difference()
    if difference is None:
        return f"rt.ops.fired({printer(expression(eq.fire))}, x)"
    params = ", ".join(literal(float(v)) for v in surrogate.params.values())
    return f"rt.spike({per_neuron(difference)}, {surrogate.kind!r}, {params})"
