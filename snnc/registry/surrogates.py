"""Surrogate gradients: spike = Heaviside(h) forward, `derivative` (an expression in h and
the surrogate's parameters) backward. The formulas are SpikingFlow's / SpikingJelly's
(seed 003, soft_pulse_function); the fused kernels print them to C and the runtime to
PyTorch from here, so the two cannot differ."""
from __future__ import annotations

import math
from dataclasses import dataclass

from snnc.ir import expr as ex
from snnc.registry.core import STEPPED, P, Signature, table
from snnc.registry.equations import add, c, call, cmp, div, let, mul, n, power, sub

H = "h"  # the variable of every derivative: h = v - v_threshold (spike = Heaviside(h))


@dataclass(frozen=True)
class Surrogate(Signature):
    derivative: ex.Expr = c(0.0)
    # temporaries the derivative reads, computed first (each once: exp is the cost)
    steps: tuple[ex.Assign, ...] = ()
    # a clock simulation has no backward pass: it runs any surrogate by ignoring it
    backends: frozenset[str] = STEPPED


_SIGMOID = (let("s", call("sigmoid", mul(n("alpha"), n(H)))),)


def _sigmoid() -> ex.Expr:
    return mul(n("alpha"), n("s"), sub(c(1.0), n("s")))


def _atan() -> ex.Expr:
    a = mul(c(math.pi / 2), n("alpha"), n(H))
    return div(div(n("alpha"), c(2.0)), add(c(1.0), power(a, c(2.0))))


_SIGN_SWISH = (let("bx", mul(n("beta"), n(H))),)


def _sign_swish() -> ex.Expr:
    bx = n("bx")
    return div(mul(n("beta"), sub(c(2.0), mul(bx, call("tanh", div(bx, c(2.0)))))),
               add(c(1.0), call("cosh", bx)))


SURROGATES: dict[str, Surrogate] = table(
    Surrogate("sigmoid", (P("alpha", "positive", 4.0),), "surrogate",
              "the derivative of sigmoid(alpha h)", derivative=_sigmoid(),
              steps=_SIGMOID),
    Surrogate("atan", (P("alpha", "positive", 2.0),), "surrogate",
              "the derivative of atan(pi/2 alpha h) / pi + 1/2", derivative=_atan()),
    Surrogate("piecewise", (P("a", "positive", 1.0), P("b", "nonneg", 0.01),
                            P("c", "positive", 0.5)), "surrogate",
              "bilinear leaky ReLU: slope a on [-c, c], b outside",
              derivative=call("if", cmp("<=", call("abs", n(H)), n("c")), n("a"), n("b"))),
    Surrogate("sign_swish", (P("beta", "positive", 5.0),), "surrogate",
              "the derivative of SignSwish (Darabi et al.)", derivative=_sign_swish(),
              steps=_SIGN_SWISH),
    Surrogate("rect", (P("width", "positive", 1.0),), "surrogate",
              "1/width on |h| < width/2, 0 outside",
              derivative=call("if", cmp("<", call("abs", n(H)), div(n("width"), c(2.0))),
                              div(c(1.0), n("width")), c(0.0))),
)
