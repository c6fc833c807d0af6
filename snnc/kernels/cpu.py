"""Fused CPU kernels: C generated from a population's folded equations and sympy's
derivatives (snnc.runtime.fused compiles and calls them)."""
from __future__ import annotations

import sympy as sp
from sympy.printing.c import C99CodePrinter

from snnc import __version__
from snnc.backends.common import local_names, reset_line
from snnc.ir.nodes import Population
from snnc.kernels.symbolic import step_math
from snnc.printers import CPrinter
from snnc.templating import templates

_SURROGATES = {
    "sigmoid": "const real s = (real)1 / ((real)1 + exp(-(real){alpha!r} * h)); "
               "return (real){alpha!r} * s * ((real)1 - s);",
    "atan": "const real a = (real)(M_PI / 2 * {alpha!r}) * h; "
            "return (real)({alpha!r} / 2) / ((real)1 + a * a);",
    "piecewise": "return fabs(h) <= (real){c!r} ? (real){a!r} : (real){b!r};",
    "sign_swish": "const real bx = (real){beta!r} * h; "
                  "return (real){beta!r} * ((real)2 - bx * tanh(bx / 2)) / ((real)1 + cosh(bx));",
    "rect": "return fabs(h) < (real){width!r} / 2 ? (real)1 / (real){width!r} : (real)0;",
}


class _RealPrinter(C99CodePrinter):
    """sympy's C99 printer with every constant cast to `real`: a double literal would turn
    float kernels into double arithmetic (half the vector width, plus conversions)."""

    def _print_Float(self, expr: sp.Float) -> str:
        return f"(real){super()._print_Float(expr)}"

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"((real){expr.p} / (real){expr.q})"


def _c(expr: sp.Expr) -> str:
    return _RealPrinter().doprint(sp.sympify(expr)) if expr != 0 else "(real)0"


def kernel_source(pop: Population) -> str:
    """The C source of the population's forward and backward kernels; `real` is a macro
    (REAL=float or double) chosen when it is compiled (snnc.runtime.fused)."""
    math_ = step_math(pop)
    local = local_names([*math_.states, *math_.learnable])
    c_names = {name: ("s_" if name in math_.states else "p_") + local[name] for name in local}
    printer = CPrinter(lambda name: c_names.get(name, name))
    eq = pop.equations
    charge = [f"{c_names[a.target]} = {printer(a.value)};" for a in eq.charge]
    reset = [reset_line(c_names[a.target], a, printer, C_RESET) for a in eq.reset]
    fire = printer(eq.fire_difference())
    g = {k: sp.Symbol(f"g_{k}") for k in math_.states}
    gc = {k: sp.Symbol(f"gc_{k}") for k in math_.states}
    fire_g = sp.Symbol("fire_g")
    reset_jac, charge_jac, fire_grad = (math_.reset_jacobian(), math_.charge_jacobian(),
                                        math_.fire_gradient())

    states = [{"c": c_names[k], "key": k,
               "g_charged": _c(sum(g[r] * reset_jac[(r, k)] for r in math_.states)
                              + fire_g * fire_grad.get(k, 0)),
               "g_prev": _c(sum(gc[j] * charge_jac[(j, f"prev_{k}")] for j in math_.states))}
              for k in math_.states]
    params = [{"c": c_names[p], "key": p,
               "g": _c(fire_g * fire_grad.get(f"param_{p}", 0)
                      + sum(gc[j] * charge_jac[(j, f"param_{p}")] for j in math_.states))}
              for p in math_.learnable]
    return templates().get_template("kernels/cpu.c.j2").render(
        version=__version__, population=pop.name, model=pop.model.name,
        surrogate=_SURROGATES[pop.surrogate.kind].format(**pop.surrogate.params),
        charge=charge, fire=fire, reset=reset, states=states, params=params,
        refractory=pop.refractory,
        g_spike=_c(sum(g[r] * reset_jac[(r, "spike")] for r in math_.states)),
        g_x=_c(sum(gc[j] * charge_jac[(j, "x")] for j in math_.states)))


# The reset forms in C, in rt.blend's evaluation order: old * (1 - fired) + new * fired.
C_RESET = {"zero": "{t} = {t} * ((real)1.0 - spike);", "subtract": "{t} = {t} - spike * {v};",
           "blend": "{t} = {t} * ((real)1.0 - spike) + {v} * spike;"}


def supports(pop: Population) -> bool:
    """Fused kernels cover charge/fire/reset models whose fire is a comparison; ILC feedback
    (which mixes neighbouring neurons at every step) runs on the reference step."""
    fire = pop.equations.fire if pop.equations else None
    return (pop.equations is not None and pop.equations.kernel is None and not pop.feedback_group
            and getattr(fire, "op", None) in (">=", ">", "<=", "<"))
