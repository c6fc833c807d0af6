"""IR nodes: plain dataclasses that know their shapes. The graph (graph.py) holds them.

Shapes never include batch or time. Every value here is already checked and
converted to steps / probabilities per step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from snnc.errors import Pos
from snnc.ir import expr as ex
from snnc.ir.values import Spec, Uniform, Value
from snnc.registry import OPS, SYNAPSES

Shape = tuple[int, ...]
BYTES_PER_VALUE = 4  # float32 state


def numel(shape: Shape) -> int:
    return math.prod(shape)


@dataclass
class Input:
    name: str
    shape: Shape
    pos: Pos

    kind = "input"


@dataclass
class Encoder:
    name: str
    shape: Shape
    spec: Spec                 # kind + bound params
    source: str | None         # the input it encodes, if any
    pos: Pos

    kind = "encoder"


STDLIB = "stdlib"  # Model.origin of the models snnc ships


@dataclass(frozen=True)
class Model:
    """A neuron model as checked, its parameters not yet bound: what populations run.

    `origin` says where it was defined (STDLIB or the user file), so a user's model that
    shadows a stdlib name is never taken for the stdlib's."""

    name: str
    origin: str
    params: tuple[tuple[str, ex.Expr], ...]       # the signature's parameters and defaults
    states: tuple[str, ...]
    charge: tuple[ex.Assign, ...]
    fire: ex.Expr | None
    reset: tuple[ex.Assign, ...]                  # its `reset { ... }` block
    threshold: tuple[str, ex.Expr] | None         # (state, threshold): fire is STATE >= EXPR
    kernel: ex.Expr | None                        # spike-response models: PSP kernel in t
    pos: Pos

    @property
    def event_driven(self) -> bool:
        return self.kernel is not None

    def nonlinearity(self) -> ex.Expr | None:
        """What keeps a stepped model off the event backend: the first part of its charge
        that is not affine in its states and input, or its fire condition where that is
        not one state compared with a constant; None for a linear model (which the
        event backend runs through its derived kernel)."""
        variables = {"x", *self.states}
        for a in self.charge:
            term = ex.nonlinear_term(a.value, variables)
            if term is not None:
                return term
        fire = self.fire
        read = ex.names(fire) if fire is not None else set()
        if fire is None or getattr(fire, "op", None) not in (">=", ">", "<=", "<") \
                or len(read & set(self.states)) != 1 or read & {"x"}:
            return fire if fire is not None else ex.Name("fire")
        return None

    def default(self, param: str) -> ex.Expr | None:
        return dict(self.params).get(param)


@dataclass
class Population:
    name: str
    shape: Shape
    model: Model
    params: dict[str, Value]            # build-time parameters, defaults filled in
    learnable: dict[str, float]         # `param ... learnable`: initial values
    state_init: dict[str, Value]        # number, Uniform or Normal per state
    surrogate: Spec
    detach_reset: bool
    refractory: int                     # steps
    reset: str                          # hard | soft | none | block
    feedback_group: int | None          # ILC: neurons per feature
    pos: Pos
    equations: Equations | None = None  # filled by passes.fold

    kind = "population"

    @property
    def size(self) -> int:
        return numel(self.shape)

    @property
    def event_driven(self) -> bool:
        return self.model.event_driven

    def parameter_count(self) -> int:
        count = len(self.learnable)
        if self.feedback_group:
            # grouped conv1d(act_dim -> act_dim * g, kernel g, groups act_dim): weight + bias
            count += self.size * self.feedback_group + self.size
        return count

    def state_bytes(self) -> int:
        states = len(self.model.states) + (1 if self.refractory else 0)
        return states * self.size * BYTES_PER_VALUE


@dataclass(frozen=True)
class Equations:
    """A population's update with build-time parameters folded in (see passes.fold)."""

    charge: tuple[ex.Assign, ...]
    fire: ex.Expr | None
    reset: tuple[ex.Assign, ...]      # applied where the neuron fired
    kernel: ex.Expr | None = None

    def fire_difference(self) -> ex.Expr | None:
        """h with spike = Heaviside(h): `a - b` for `fire a >= b` (or `>`), `b - a` for
        `a <= b` (or `<`); None for other conditions, which carry no surrogate gradient."""
        fire = self.fire
        if not (isinstance(fire, ex.Binary) and fire.op in (">=", ">", "<=", "<")):
            return None
        above = fire.op in (">", ">=")
        hi, lo = (fire.left, fire.right) if above else (fire.right, fire.left)
        return ex.Binary("-", hi, lo, pos=fire.pos)


@dataclass
class Op:
    kind: str
    params: dict[str, Value]
    in_shape: Shape
    out_shape: Shape
    pos: Pos

    @property
    def weighted(self) -> bool:
        return OPS[self.kind].weighted

    def parameter_count(self) -> int:
        return OPS[self.kind].parameters(self.params, self.in_shape, self.out_shape)

    def synapse_count(self) -> int:
        """Connections from input to output elements this op makes (0: not a weighted op)."""
        return OPS[self.kind].synapses(self.params, self.in_shape, self.out_shape)


@dataclass
class Connection:
    name: str
    src: str
    dst: str
    ops: list[Op]
    delay: int | Uniform                 # steps; Uniform: one integer delay per synapse
    synapse: Spec | None
    rule: Spec | None
    in_shape: Shape
    out_shape: Shape
    pos: Pos
    channel: str | None = None           # the target's state it delivers into; None: x
    learnable_synapse: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.learnable_synapse = bool(self.synapse and self.synapse.params.get("learnable"))

    @property
    def min_delay(self) -> int:
        return int(self.delay.low) if isinstance(self.delay, Uniform) else self.delay

    @property
    def max_delay(self) -> int:
        return int(self.delay.high) if isinstance(self.delay, Uniform) else self.delay

    def parameter_count(self) -> int:
        return sum(op.parameter_count() for op in self.ops) + (1 if self.learnable_synapse else 0)

    def synapse_count(self) -> int:
        counts = [op.synapse_count() for op in self.ops if op.weighted]
        return sum(counts) if counts else numel(self.out_shape)  # identity: one per neuron

    def state_bytes(self) -> int:
        n = len(SYNAPSES[self.synapse.kind].states) if self.synapse else 0
        total = n * numel(self.out_shape)
        total += self.max_delay * numel(self.in_shape)      # delay line of the source's output
        if self.rule is not None:                            # pre and post traces
            total += numel(self.in_shape) + numel(self.out_shape)
        return total * BYTES_PER_VALUE


@dataclass
class Monitor:
    target: str
    var: str
    pos: Pos

    @property
    def key(self) -> str:
        return f"{self.target}.{self.var}"


@dataclass
class Readout:
    target: str
    spec: Spec
    out_shape: Shape
    pos: Pos


@dataclass(frozen=True)
class Weights:
    """The state_dict file a network's modules load (`weights "FILE"`), resolved."""

    path: str
    pos: Pos


@dataclass
class Network:
    """A checked network: what the graph is built from."""

    name: str
    file: str
    dt_ms: float
    steps: int
    backend: str
    seed: int | None
    inputs: list[Input]
    encoders: list[Encoder]
    populations: list[Population]
    connections: list[Connection]
    monitors: list[Monitor]
    readout: Readout | None
    pos: Pos
    weights: Weights | None = None

    def nodes(self) -> list[Input | Encoder | Population]:
        return [*self.inputs, *self.encoders, *self.populations]
