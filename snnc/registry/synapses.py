"""Synapses (`via`): how a connection's weighted spikes become the target's current, as
equations over the weighted input `x`, the synapse's states and its parameters. Each step
runs `update` in order (targets are states or temporaries) and delivers `output`; a
`presynaptic` synapse acts on the source's spikes `x` before the connection's ops (STP).
`learnable` names parameters learnt as `name = initial(params)` where the flag
`learnable` is set (filter's 1/tau as sigmoid(w))."""
from __future__ import annotations

from dataclasses import dataclass

from snnc.ir import expr as ex
from snnc.registry.core import EVENT, STEPPED, P, Signature, stable_taus, table
from snnc.registry.equations import add, c, call, cmp, div, let, mul, n, neg, sub


@dataclass(frozen=True)
class Synapse(Signature):
    states: tuple[tuple[str, ex.Expr], ...] = ()     # (state, initial value)
    update: tuple[ex.Assign, ...] = ()
    output: ex.Expr = n("x")
    presynaptic: bool = False
    learnable: tuple[tuple[str, ex.Expr], ...] = ()  # (parameter, initial value)
    backends: frozenset[str] = STEPPED


def _filter_checks(p, at) -> None:
    from snnc.errors import SnnError
    if p["learnable"] and p["tau"] <= 1:
        raise SnnError(f"with learnable = true, 'tau' must be above 1 step, got {p['tau']:g}",
                       at("tau"), "its 1/tau is learnt as sigmoid(w), which lies in (0, 1)")
    stable_taus("tau")(p, at)


_x, _i = n("x"), n("i")
# Every synapse may deliver into one of the target model's states instead of its input x
# (a conductance: `via spike_current(channel = ge)`, docs/EXTENSIONS.md).
CHANNEL = P("channel", "channel", None)
# linear in their states and input: the event backend folds them into a kernel
LINEAR = STEPPED | {EVENT}
_decay = call("exp", neg(div(c(1.0), n("tau"))))   # exact exponential decay per step

SYNAPSES: dict[str, Synapse] = table(
    Synapse("exp_current", (P("tau", "time", 5.0), CHANNEL), "synapse",
            "decays with tau, jumps by the weighted spikes (Vogels-Abbott CUBA)",
            states=(("i", c(0.0)),), update=(let("i", add(mul(_i, _decay), _x)),),
            output=_i, backends=LINEAR),
    Synapse("spike_current", (P("amplitude", "number", 1.0), CHANNEL), "synapse",
            "the weighted spikes times amplitude (SpikingFlow)",
            output=mul(_x, n("amplitude")), backends=LINEAR),
    Synapse("exp_decay_current", (P("tau", "time", 5.0), P("amplitude", "number", 1.0),
                                  CHANNEL),
            "synapse", "set to amplitude where a spike arrives, else decays (SpikingFlow)",
            states=(("i", c(0.0)),),
            update=(let("i", call("if", cmp("!=", _x, c(0.0)), n("amplitude"),
                                  mul(_i, _decay))),),
            output=_i),
    Synapse("stp", (P("v_base", "prob", 0.2), P("tau_f", "time", 750.0),
                    P("tau_d", "time", 50.0), CHANNEL), "synapse",
            "Tsodyks-Markram short-term plasticity on the presynaptic spikes (SpikingFlow)",
            combination=stable_taus("tau_f", "tau_d"),
            states=(("r", c(1.0)), ("u", n("v_base"))),
            update=(let("r", add(n("r"), div(sub(c(1.0), n("r")), n("tau_d")))),
                    let("u", add(n("u"), div(sub(n("v_base"), n("u")), n("tau_f")))),
                    let("u", add(n("u"), mul(n("v_base"), sub(c(1.0), n("u")), _x))),
                    let("out", mul(n("u"), n("r"), _x)),
                    let("r", sub(n("r"), n("out")))),
            output=n("out"), presynaptic=True),
    Synapse("filter", (P("tau", "time", 100.0), P("learnable", "bool", False), CHANNEL),
            "synapse",
            "SpikingJelly's SynapseFilter: I -= (1 - S) I / tau, plus S; tau learnable",
            combination=_filter_checks, states=(("i", c(0.0)),),
            update=(let("i", add(sub(_i, mul(sub(c(1.0), _x), _i,
                                              call("if", n("learnable"),
                                                   call("sigmoid", n("w")),
                                                   div(c(1.0), n("tau"))))), _x)),),
            output=_i,
            learnable=(("w", neg(call("log", sub(n("tau"), c(1.0))))),)),
)
