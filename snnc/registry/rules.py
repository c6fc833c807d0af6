"""Plasticity rules (`learn`): trace-based STDP (Morrison et al. 2008) as equations per
synapse. Each step the traces (`x_pre` per source neuron, `x_post` per target) `decay`
exactly; then `on_pre` runs where the source spiked and `on_post` where the target did, in
that order (the pre pathway first, as Brian2 counts a pre and a post spike of one step):
each jumps its own side's trace, then changes the weight `w` of each synapse by the other
side's trace and clips it to [w_min, w_max]. With f_w multiplicative a change towards
w_max is scaled by (w_max - w), one towards w_min by (w - w_min) (soft bounds); the signs of
a_pre and a_post say which way each goes (anti-STDP by sign)."""
from __future__ import annotations

from dataclasses import dataclass

from snnc.ir import expr as ex
from snnc.ir.values import Symbol
from snnc.registry.core import CLOCK, P, Signature, ordered, table
from snnc.registry.equations import add, c, call, cmp, div, let, mul, n, neg, sub


@dataclass(frozen=True)
class Rule(Signature):
    decay: tuple[ex.Assign, ...] = ()        # every step, per neuron
    on_pre: tuple[ex.Assign, ...] = ()       # where the source spiked: its trace, then w
    on_post: tuple[ex.Assign, ...] = ()      # where the target spiked: its trace, then w


def _decayed(trace: str, tau: str) -> ex.Assign:
    return let(trace, mul(n(trace), call("exp", neg(div(c(1.0), n(tau))))))


def _jumped(trace: str) -> ex.Assign:
    return let(trace, add(n(trace), c(1.0)))


def _room(coefficient: str) -> ex.Expr:
    """How far w may still go the way `coefficient`'s sign moves it."""
    return call("if", cmp("<", n(coefficient), c(0.0)), sub(n("w"), n("w_min")),
                sub(n("w_max"), n("w")))


def _bounded(change: ex.Expr, room: ex.Expr) -> ex.Assign:
    """w += change (times the room left where f_w is multiplicative), clipped."""
    scaled = call("if", n("multiplicative"), mul(change, room), change)
    return let("w", call("clamp", add(n("w"), scaled), n("w_min"), n("w_max")))


_STDP_PARAMS = (P("tau_pre", "time", 20.0), P("tau_post", "time", 20.0),
                P("a_pre", "number", 0.01), P("a_post", "number", -0.0105),
                P("w_min", "number", 0.0), P("w_max", "number", 1.0),
                # LANGUAGE.md: `1` (additive, the default) or `multiplicative` (soft bounds)
                P("f_w", "weight_fn", Symbol("additive"), "additive", "multiplicative"))

RULES: dict[str, Rule] = table(
    Rule("stdp", _STDP_PARAMS, "rule", "trace-based STDP (Morrison et al. 2008)",
         combination=ordered("w_min", "w_max", strict=False), backends=frozenset({CLOCK}),
         decay=(_decayed("x_pre", "tau_pre"), _decayed("x_post", "tau_post")),
         # a pre spike meets the post trace (a_post < 0: depression), a post spike the pre
         on_pre=(_jumped("x_pre"), _bounded(mul(n("a_post"), n("x_post")), _room("a_post"))),
         on_post=(_jumped("x_post"), _bounded(mul(n("a_pre"), n("x_pre")), _room("a_pre")))),
)
