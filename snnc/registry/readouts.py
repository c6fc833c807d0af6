"""Readouts: what a network's forward() returns, from its readout population's record.
`needs_v` readouts read the membrane potential, the others its spikes."""
from __future__ import annotations

from dataclasses import dataclass

from snnc.registry.core import EVENT, STEPPED, P, Signature, table


@dataclass(frozen=True)
class Readout(Signature):
    needs_v: bool = False
    # the clock backend's run() returns the monitors: it builds a network with a readout
    # and leaves the readout to softbp's forward(); the event backend reads out its
    # populations' voltage and first spikes
    backends: frozenset[str] = STEPPED | {EVENT}


READOUTS: dict[str, Readout] = table(
    Readout("rate", what="readout", doc="spikes per step, over the run"),
    Readout("count", what="readout", doc="spikes over the run"),
    Readout("v", what="readout", doc="the membrane potential at the last step", needs_v=True),
    Readout("v_max", what="readout", doc="the highest membrane potential", needs_v=True),
    Readout("first_spike", what="readout", doc="the step of the first spike (T: none)"),
    Readout("voting", (P("k", "int+"),), "readout", "mean rate of each group of k neurons"),
)
