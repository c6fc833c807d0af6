"""sympy's derivatives of each neuron's step match autograd on the reference step code."""
from __future__ import annotations

import random

import pytest
import sympy as sp
import torch

from conftest import net
from snnc.backends.common import py_name
from snnc.printers import TorchPrinter
from snnc.runtime import ops as rt_ops
from symbolic_step import step_math

MODELS = ["IF", "LIF(tau = 3.0, v_reset = -0.2)", "LIF(decay_input = false, v_rest = 0.3)",
          "PLIF(init_tau = 2.5)", "RIF", "CubaLIF", "Izhikevich(d = 6)", "ILCLIF(v_decay = 0.6)",
          "SFLIF(r = 2.0, tau = 4.0)", "LIF(reset = soft)"]

_NUMERIC = {f"cmp_{n}": f for n, f in (("ge", lambda a, b: float(a >= b)),
                                        ("gt", lambda a, b: float(a > b)),
                                        ("le", lambda a, b: float(a <= b)),
                                        ("lt", lambda a, b: float(a < b)),
                                        ("eq", lambda a, b: float(a == b)),
                                        ("ne", lambda a, b: float(a != b)))}
_NUMERIC |= {"Heaviside": lambda v, h=0.5: float(v > 0) + (h if v == 0 else 0.0)}


def evaluate(expr: sp.Expr, point: dict) -> float:
    symbols = sorted(expr.free_symbols, key=str)
    fn = sp.lambdify(symbols, expr, modules=[_NUMERIC, "math"])
    return float(fn(*(point[str(s)] for s in symbols)))


def torch_function(name: str, args: list[str], lines: list[str], returns: str):
    source = f"def {name}({', '.join(args)}):\n" + "".join(f"    {line}\n" for line in lines) \
        + f"    return {returns}\n"
    scope = {"rt": rt_ops, "torch": torch}
    exec(source, scope)  # the test's own code, built like the generated step functions
    return scope[name]


@pytest.mark.parametrize("model", MODELS)
def test_derivatives_match_autograd_of_the_reference_step(compile_text, model):
    (g,) = compile_text(net(f"population p[1] = {model}"))
    pop = g.nodes["p"]["node"]
    math_ = step_math(pop)
    printer = TorchPrinter(py_name)
    states = [py_name(s) for s in math_.states]
    params = [py_name(p) for p in math_.learnable]
    charge = torch_function("charge", ["x", *states, *params],
                            [f"{py_name(a.target)} = {printer(a.value)}"
                             for a in pop.equations.charge], f"({', '.join(states)},)")
    rng = random.Random(0)
    for _ in range(5):
        point = {"x": rng.uniform(-1, 2), **{f"prev_{s}": rng.uniform(-1, 1) for s in
                                            math_.states},
                 **{f"param_{p}": rng.uniform(-1, 1) for p in math_.learnable}}
        inputs = [torch.tensor(point["x"], dtype=torch.float64, requires_grad=True)]
        inputs += [torch.tensor(point[f"prev_{s}"], dtype=torch.float64, requires_grad=True)
                   for s in math_.states]
        inputs += [torch.tensor(point[f"param_{p}"], dtype=torch.float64, requires_grad=True)
                   for p in math_.learnable]
        charged = charge(*inputs)
        names = ["x", *(f"prev_{s}" for s in math_.states),
                 *(f"param_{p}" for p in math_.learnable)]
        jacobian = math_.charge_jacobian()
        for k, value in zip(math_.states, charged, strict=True):
            assert evaluate(math_.charged[k], point) == pytest.approx(value.item(), abs=1e-9)
            if not value.requires_grad:
                continue
            grads = torch.autograd.grad(value, inputs, retain_graph=True, allow_unused=True)
            for name, grad in zip(names, grads, strict=True):
                expected = 0.0 if grad is None else float(grad)
                assert evaluate(jacobian[(k, name)], point) == pytest.approx(expected, abs=1e-9), \
                    (k, name)


@pytest.mark.parametrize("model, fire, reset", [
    ("LIF(v_threshold = 0.8)", {"v": 1}, {("v", "v"): "1 - spike", ("v", "spike"): "-charged_v"}),
    ("LIF(reset = soft)", {"v": 1}, {("v", "v"): "1", ("v", "spike"): "-1"}),
    ("Izhikevich(c = -60, d = 5)", {"v": 1, "u": 0},
     {("u", "u"): "1", ("u", "spike"): "5", ("v", "spike"): "-charged_v - 60"}),
])
def test_fire_and_reset_derivatives(compile_text, model, fire, reset):
    (g,) = compile_text(net(f"population p[1] = {model}"))
    math_ = step_math(g.nodes["p"]["node"])
    assert {k: int(v) for k, v in math_.fire_gradient().items()} == fire
    jac = math_.reset_jacobian()
    for key, text in reset.items():
        assert sp.simplify(jac[key] - sp.sympify(text)) == 0, key


@pytest.mark.parametrize("model, expected", [
    ("LIF", True), ("PLIF", True), ("Izhikevich", True), ("CubaLIF", True),
    ("SFIF", False), ("SFLIF", False),  # they fire on a comparison kept in a state
])
def test_which_spikes_carry_a_gradient(compile_text, model, expected):
    """The reference step builds no autograd graph for SpikingFlow's clock-driven spikes;
    the kernels must know that too (runtime.fused detaches their inputs)."""
    (g,) = compile_text(net(f"population p[1] = {model}"))
    assert step_math(g.nodes["p"]["node"]).spike_has_gradient() is expected
