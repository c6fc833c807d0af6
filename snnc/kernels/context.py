"""What the fused kernels of every target share: a population's step as C expressions and
sympy's derivatives of it, the context that each target's template renders (cpu.c.j2,
cuda.cu.j2). A target is a renderer over this context, not a fork of it."""
from __future__ import annotations

import sympy as sp
from sympy.printing.c import C99CodePrinter

from snnc import __version__
from snnc.backends.steps import local_names, reset_line
from snnc.ir.nodes import Population
from snnc.kernels.abi import KERNEL_ABI
from snnc.kernels.symbolic import StepMath, step_math
from snnc.printers import CPrinter

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

# The reset forms in C, in rt.blend's evaluation order: old * (1 - fired) + new * fired.
C_RESET = {"zero": "{t} = {t} * ((real)1.0 - spike);", "subtract": "{t} = {t} - spike * {v};",
           "blend": "{t} = {t} * ((real)1.0 - spike) + {v} * spike;"}


class _RealPrinter(C99CodePrinter):
    """sympy's C99 printer with every constant cast to `real`: a double literal would turn
    float kernels into double arithmetic (half the vector width, plus conversions). Symbols
    in `rename` (the learnable parameters) print as the kernels' variables."""

    def __init__(self, rename: dict[str, str]):
        super().__init__()
        self._rename = rename

    def __call__(self, expr: sp.Expr) -> str:
        return self.doprint(sp.sympify(expr)) if expr != 0 else "(real)0"

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self._rename.get(expr.name) or super()._print_Symbol(expr)

    def _print_Float(self, expr: sp.Float) -> str:
        return f"(real){super()._print_Float(expr)}"

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"((real){expr.p} / (real){expr.q})"

    # Derivatives of min/max/clamp are piecewise with true/false pieces: C's 1 and 0.
    def _print_BooleanTrue(self, expr) -> str:
        return "1"

    def _print_BooleanFalse(self, expr) -> str:
        return "0"


def supports(pop: Population) -> bool:
    """Fused kernels cover charge/fire/reset models whose fire is a comparison."""
    fire = pop.equations.fire if pop.equations else None
    return (pop.equations is not None and pop.equations.kernel is None
            and getattr(fire, "op", None) in (">=", ">", "<=", "<"))


def supports_cuda(pop: Population) -> bool:
    """The CUDA kernels do not (yet) carry ILC feedback, which the CPU's do."""
    return supports(pop) and not pop.feedback_group


def step_context(pop: Population) -> dict:
    """The target-independent part of the template context of the population's kernels:
    names, slots, sympy's derivatives (the costly part, so computed once for all targets);
    `real` is a macro (REAL=float or double) chosen when the kernels are compiled."""
    math_ = step_math(pop)
    local = local_names([*math_.states, *math_.learnable])
    c_names = {name: ("s_" if name in math_.states else "p_") + local[name] for name in local}
    states = [{"c": c_names[k], "key": k} for k in math_.states]
    # the rows of the state array: the model's states, the ILC feedback into the next
    # step's input, the refractory countdown
    slots = ([s["c"] for s in states] + (["carried"] if pop.feedback_group else [])
             + (["count"] if pop.refractory else []))
    group = pop.feedback_group or 0
    return dict(
        version=__version__, abi=KERNEL_ABI, population=pop.name, model=pop.model.name,
        surrogate=_SURROGATES[pop.surrogate.kind].format(**pop.surrogate.params),
        c_names=c_names, states=states,
        params=[{"c": c_names[p], "key": p} for p in math_.learnable],
        slots=slots, refractory=pop.refractory, spike_has_gradient=math_.spike_has_gradient(),
        # ILC: groups of `group` neighbouring neurons, which blocks of neurons never split
        group=group, size=pop.size, block=group * max(1, 256 // group) if group else 256,
        **_derivatives(math_, _RealPrinter({f"param_{p}": c_names[p] for p in math_.learnable})))


def printed_step(pop: Population, context: dict, printer_type: type[CPrinter]) -> dict:
    """The step's own expressions (charge, fire, reset) in C, printed by `printer_type` the
    way the target's PyTorch evaluates them (see CudaPrinter)."""
    c_names = context["c_names"]
    printer = printer_type(lambda name: c_names.get(name, name))
    eq = pop.equations
    return dict(charge=[f"{c_names[a.target]} = {printer(a.value)};" for a in eq.charge],
                fire=printer(eq.fire_difference()),
                reset=[reset_line(c_names[a.target], a, printer, C_RESET) for a in eq.reset])


def _derivatives(math_: StepMath, c: _RealPrinter) -> dict:
    """The reverse step's gradients in C, over the names the template declares: g_<state>
    (reaching the state after the step), gc_<state> (reaching the charged state), fire_g
    (reaching the surrogate's argument), prev_/charged_<state>, x and the parameters."""
    g = {k: sp.Symbol(f"g_{k}") for k in math_.states}
    gc = {k: sp.Symbol(f"gc_{k}") for k in math_.states}
    fire_g = sp.Symbol("fire_g")
    reset_jac, charge_jac, fire_grad = (math_.reset_jacobian(), math_.charge_jacobian(),
                                        math_.fire_gradient())
    return {
        "g_charged": {k: c(sum(g[r] * reset_jac[(r, k)] for r in math_.states)
                           + fire_g * fire_grad.get(k, 0)) for k in math_.states},
        "g_prev": {k: c(sum(gc[j] * charge_jac[(j, f"prev_{k}")] for j in math_.states))
                   for k in math_.states},
        "g_param": {p: c(fire_g * fire_grad.get(f"param_{p}", 0)
                         + sum(gc[j] * charge_jac[(j, f"param_{p}")] for j in math_.states))
                    for p in math_.learnable},
        "g_spike": c(sum(g[r] * reset_jac[(r, "spike")] for r in math_.states)),
        "g_x": c(sum(gc[j] * charge_jac[(j, "x")] for j in math_.states)),
    }
