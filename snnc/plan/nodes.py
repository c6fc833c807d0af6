"""The plan: what a network computes, lowered once for every backend to render.

Plain dataclasses over the IR's nodes: per connection its projection (the weighted op,
its connectivity, where per-synapse delays sit, the delay, the synapse's equations and the
rule), the run mode, the order nodes are computed in, and the layout of the parameters
and buffers, so that every backend of a network has the same state_dict keys.
"""
from __future__ import annotations

from dataclasses import dataclass

from snnc.errors import Pos
from snnc.ir import expr as ex
from snnc.ir.nodes import Encoder, Input, Monitor, Op, Population, Readout, Shape, Weights
from snnc.ir.values import Spec

LAYERS, STEPS = "layers", "steps"  # run modes: whole sequences node by node, or step by step


@dataclass(frozen=True)
class Tensor:
    """One entry of a module's state_dict."""

    key: str
    shape: Shape | None    # None: drawn when the network is built (sparse(p)'s synapses)
    parameter: bool        # learnt (a parameter), else a buffer


@dataclass(frozen=True)
class SynapseStep:
    """A synapse's equations (snnc.registry.synapses) with its parameters folded in."""

    kind: str
    states: tuple[tuple[str, float], ...]        # (state, initial value)
    update: tuple[ex.Assign, ...]
    output: ex.Expr
    presynaptic: bool
    learnable: tuple[tuple[str, float], ...]     # (parameter, initial value)


@dataclass(frozen=True)
class RuleStep:
    """A plasticity rule's equations (snnc.registry.rules) with its parameters folded in:
    the traces' decay every step, then each pathway's trace jump and weight change, the
    weight change where the pathway's spike is or (`every_step`) at every synapse."""

    kind: str
    decay: tuple[ex.Assign, ...]
    pre_trace: ex.Assign
    pre_weight: ex.Assign
    post_trace: ex.Assign
    post_weight: ex.Assign
    every_step: bool = False
    pre_spike: str = "arrived"   # the pre trace jumps where a spike "arrived" or was "sent"


@dataclass(frozen=True)
class Projection:
    """A connection lowered: the source's output through `ops` to the target's input."""

    name: str
    src: str
    dst: str
    ops: tuple[Op, ...]
    weighted: int | None                  # the index of the op with the weights
    connectivity: str | None              # dense | sparse | one_to_one | conv | None
    delay: int                            # steps every synapse waits at least
    synapse_delays: tuple[int, int] | None  # per-synapse delays drawn in [low, high]
    synapse: SynapseStep | None
    rule: Spec | None
    learning: RuleStep | None
    channel: str | None                   # the target's state it delivers into; None: x
    in_shape: Shape
    out_shape: Shape
    pos: Pos

    @property
    def extra_delay(self) -> int:
        """What the per-synapse part adds to `delay` at most."""
        return self.synapse_delays[1] - self.synapse_delays[0] if self.synapse_delays else 0


@dataclass(frozen=True)
class Plan:
    name: str
    sources: tuple[tuple[str, str], ...]  # (file as shown, sha256): the main file first
    file: str | None
    dt_ms: float
    steps: int
    seed: int | None
    backend: str
    mode: str                             # LAYERS or STEPS
    order: tuple[str, ...]                # the nodes in the order they are computed
    inputs: tuple[Input, ...]
    encoders: tuple[Encoder, ...]
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    monitors: tuple[Monitor, ...]
    readout: Readout | None
    layout: tuple[Tensor, ...]
    pos: Pos
    weights: Weights | None = None        # the state_dict file its modules load

    def incoming(self, population: str) -> list[Projection]:
        return [p for p in self.projections if p.dst == population]

    def node(self, name: str) -> Input | Encoder | Population:
        return next(n for n in (*self.inputs, *self.encoders, *self.populations)
                    if n.name == name)
