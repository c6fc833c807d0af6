"""The registry: every construct a network can name besides neurons, declared once.

Each entry holds its signature, its shape rule and counts (ops), its equations
(synapses, rules, surrogates), and the backends that run it. The checker binds calls
against it, `snnc inspect` and the budget count with it, the backends check with it what
they can run, the printers and the runtime take the equations from it. A new op is one
entry in ops.py plus its runtime module (snnc.runtime.factory); a new synapse one entry in
synapses.py, which every backend prints from.
"""
from __future__ import annotations

from snnc.ir.values import Spec, Symbol
from snnc.registry.core import CLOCK, EVENT, REQUIRED, SOFTBP, P, Param, Signature
from snnc.registry.encoders import ENCODERS
from snnc.registry.functions import FUNCTIONS, PUBLIC
from snnc.registry.ops import OPS
from snnc.registry.readouts import READOUTS
from snnc.registry.rules import RULES
from snnc.registry.surrogates import SURROGATES
from snnc.registry.synapses import SYNAPSES

SETTINGS = Signature("network", (
    P("dt", "positive", 1.0),  # milliseconds
    P("steps", "steps", 100),
    P("backend", "choice", Symbol("softbp"), CLOCK, SOFTBP, EVENT),
    P("seed", "seed", None)), "setting")

# What every population accepts whatever its model (LANGUAGE.md §4.4); `reset`
# overrides the model's reset (hard/soft/none) as SpikingJelly's v_reset=None does.
POPULATION_COMMON = (
    P("surrogate", "surrogate", Spec("sigmoid", {"alpha": 4.0})),
    P("detach_reset", "bool", False),
    P("refractory", "steps0", 0),
    P("reset", "choice", None, "hard", "soft", "none"),
)

# Every table by what it declares, for messages and for the backends' checks.
TABLES = {"op": OPS, "encoder": ENCODERS, "synapse": SYNAPSES, "rule": RULES,
          "readout": READOUTS, "surrogate": SURROGATES}

__all__ = ["ENCODERS", "FUNCTIONS", "OPS", "POPULATION_COMMON", "PUBLIC", "READOUTS",
           "REQUIRED", "RULES", "SETTINGS", "SURROGATES", "SYNAPSES", "TABLES", "Param",
           "Signature", "CLOCK", "EVENT", "SOFTBP"]
