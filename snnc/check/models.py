"""A checked neuron definition as the IR's Model: AST expressions become IR expressions,
numbers with units become steps or probabilities per step with the network's dt."""
from __future__ import annotations

from snnc.check.neurons import fire_parts
from snnc.check.values import bounded, quantity_value
from snnc.frontend import ast
from snnc.ir import expr as ex
from snnc.ir.nodes import STDLIB, Model

STDLIB_FILES = "<stdlib>/"  # how the loader shows the stdlib's files


def model_of(defn: ast.NeuronDef, dt_ms: float) -> Model:
    """`defn` (already checked by check_neuron) as the IR's Model for a network of dt."""
    def expr(e: ast.Expr | None) -> ex.Expr | None:
        return None if e is None else to_expr(e, dt_ms)

    def assigns(items) -> tuple[ex.Assign, ...]:
        return tuple(ex.Assign(a.target, expr(a.value), pos=a.pos) for a in items)

    parts = fire_parts(defn)
    origin = STDLIB if defn.pos.file.startswith(STDLIB_FILES) else defn.pos.file
    return Model(
        name=defn.name, origin=origin,
        params=tuple((p.name, expr(p.default)) for p in defn.params),
        states=tuple(s.name for s in defn.states),
        charge=assigns(defn.charge or ()), fire=expr(defn.fire),
        reset=assigns(defn.reset.assigns if defn.reset else ()),
        threshold=(parts[0], expr(parts[1])) if parts else None,
        kernel=expr(defn.kernel), pos=defn.pos)


def to_expr(node: ast.Expr, dt_ms: float) -> ex.Expr:
    """An AST expression of a model as an IR expression (check_neuron has refused keyword
    arguments and unknown functions there)."""
    if isinstance(node, ast.Number):
        return ex.Number(node.value, pos=node.pos)
    if isinstance(node, ast.Bool):
        return ex.Bool(node.value, pos=node.pos)
    if isinstance(node, ast.Quantity):
        return ex.Number(bounded(quantity_value(node, dt_ms), node.pos), pos=node.pos)
    if isinstance(node, ast.Name):
        return ex.Name(node.id, pos=node.pos)
    if isinstance(node, ast.Unary):
        return ex.Unary(node.op, to_expr(node.operand, dt_ms), pos=node.pos)
    if isinstance(node, ast.Binary):
        return ex.Binary(node.op, to_expr(node.left, dt_ms), to_expr(node.right, dt_ms),
                         pos=node.pos)
    return ex.Call(node.func, tuple(to_expr(a, dt_ms) for a in node.args), pos=node.pos)
