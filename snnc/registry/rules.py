"""Plasticity rules (`learn`): trace-based STDP (Morrison et al. 2008) as equations per
synapse. Each step the traces (`x_pre` per source neuron, `x_post` per target) `decay`;
then `on_pre` runs where the source spiked and `on_post` where the target did, in that
order (the pre pathway first, as Brian2 counts a pre and a post spike of one step): each
jumps its own side's trace, then changes the weight `w` of each synapse.

`stdp` (Brian2's): the traces decay exactly (exp(-1/tau) per step), each pathway changes
the weights of the synapses its spike is at by the other side's trace and clips them to
[w_min, w_max]. With f_w multiplicative a change towards w_max is scaled by (w_max - w),
one towards w_min by (w - w_min) (soft bounds); the signs of a_pre and a_post say which way
each goes (anti-STDP by sign).

`spikingflow_stdp` (SpikingFlow's STDPModule and STDPUpdater): the traces decay by an Euler
step (x -= x / tau), the pre trace jumps where the source sends a spike (SpikingFlow's
pre_spike is its module's input, before the delays inside the module), and both weight
changes apply to every synapse at every step (`every_step`): w += lr f_w(w) x_pre after the
pre trace's jump, then w -= lr f_w(w) x_post after the post trace's, without clipping."""
from __future__ import annotations

from dataclasses import dataclass

from snnc.ir import expr as ex
from snnc.ir.values import Symbol
from snnc.registry.core import CLOCK, P, Signature, ordered, stable_taus, table
from snnc.registry.equations import add, c, call, cmp, div, let, mul, n, neg, sub

# Which presynaptic spike a rule's pre trace jumps at: where it reaches the synapse after
# the connection's (or the synapse's own) delay, or where the source sends it.
ARRIVED, SENT = "arrived", "sent"
# The sum over a connection's synapses (registry.functions): a rule's own, never per element.
SYNAPSE_SUM = "synapse_sum"


@dataclass(frozen=True)
class Rule(Signature):
    decay: tuple[ex.Assign, ...] = ()        # every step, per neuron
    on_pre: tuple[ex.Assign, ...] = ()       # where the source spiked: its trace, then w
    on_post: tuple[ex.Assign, ...] = ()      # where the target spiked: its trace, then w
    # True: each pathway's weight change applies to every synapse at every step (after its
    # trace's jump where its spike is), not only to the synapses its spike is at
    every_step: bool = False
    pre_spike: str = ARRIVED                 # ARRIVED | SENT: where the pre trace jumps


def _decayed(trace: str, tau: str) -> ex.Assign:
    return let(trace, mul(n(trace), call("exp", neg(div(c(1.0), n(tau))))))


def _euler(trace: str, tau: str) -> ex.Assign:
    """x -= x / tau: the trace's exponential decay by one Euler step (SpikingFlow's)."""
    return let(trace, sub(n(trace), div(n(trace), n(tau))))


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


def _spikingflow_f_w() -> ex.Expr:
    """f_w(w): `abs` |w| + 1e-6 (SpikingFlow's default), `normalized` |w| / (sum of |w|
    over the connection's synapses + 1e-6) (the STDPUpdater example's), else 1."""
    magnitude = call("abs", n("w"))
    return call("if", n("abs"), add(magnitude, c(1e-6)),
                call("if", n("normalized"),
                     div(magnitude, add(call(SYNAPSE_SUM, magnitude), c(1e-6))), c(1.0)))


_STDP_PARAMS = (P("tau_pre", "time", 20.0), P("tau_post", "time", 20.0),
                P("a_pre", "number", 0.01), P("a_post", "number", -0.0105),
                P("w_min", "number", 0.0), P("w_max", "number", 1.0),
                # LANGUAGE.md: `1` (additive, the default) or `multiplicative` (soft bounds)
                P("f_w", "weight_fn", Symbol("additive"), "additive", "multiplicative"))

# SpikingFlow's STDPModule(..., tau_pre, tau_post, learning_rate, f_w) and
# STDPUpdater(tau_pre, tau_post, learning_rate, f_w): no defaults but f_w's.
_SPIKINGFLOW_PARAMS = (P("tau_pre", "time"), P("tau_post", "time"),
                       P("learning_rate", "number"),
                       P("f_w", "weight_fn", Symbol("abs"), "additive", "abs", "normalized"))

RULES: dict[str, Rule] = table(
    Rule("stdp", _STDP_PARAMS, "rule", "trace-based STDP (Morrison et al. 2008)",
         combination=ordered("w_min", "w_max", strict=False), backends=frozenset({CLOCK}),
         decay=(_decayed("x_pre", "tau_pre"), _decayed("x_post", "tau_post")),
         # a pre spike meets the post trace (a_post < 0: depression), a post spike the pre
         on_pre=(_jumped("x_pre"), _bounded(mul(n("a_post"), n("x_post")), _room("a_post"))),
         on_post=(_jumped("x_post"), _bounded(mul(n("a_pre"), n("x_pre")), _room("a_pre")))),
    Rule("spikingflow_stdp", _SPIKINGFLOW_PARAMS, "rule",
         "SpikingFlow's trace STDP (learning.STDPModule, STDPUpdater): every weight changes "
         "at every step", combination=stable_taus("tau_pre", "tau_post"),
         backends=frozenset({CLOCK}), every_step=True, pre_spike=SENT,
         decay=(_euler("x_pre", "tau_pre"), _euler("x_post", "tau_post")),
         # trace_pre += pre_spike, w += lr f_w(w) trace_pre; trace_post += post_spike,
         # w -= lr f_w(w) trace_post (STDPUpdater.update's order; STDPModule's comes to the
         # same, its `w -=` of step t + 1 being due before anything else that reads w)
         on_pre=(_jumped("x_pre"),
                 let("w", add(n("w"), mul(n("learning_rate"), _spikingflow_f_w(), n("x_pre"))))),
         on_post=(_jumped("x_post"),
                  let("w", sub(n("w"), mul(n("learning_rate"), _spikingflow_f_w(),
                                           n("x_post")))))),
)
