"""The memory a network's module will need, estimated before anything is allocated.

`check_budget` refuses a network whose estimate exceeds snnc.limits.max_memory_bytes()
(SNNC_MAX_MEMORY, default 16 GiB) with one SnnError that gives the estimate and its
largest parts, placed where the largest part was written: `dense [100000] -> [100000]`
must not ask the system for 40 GB at `Net()`, nor `conv2d(pad = 100000)` for 2 TB at the
first forward.

The estimate follows what snnc.runtime allocates for one sample (B = 1; a batch of B needs
about B times the run's part) and one run of `steps` steps, autograd on:
  - KEPT for the module's life: every op's parameters and buffers as the runtime builds
    them (`sparse`: per existing synapse, p × in × out of them, a weight and three
    indices; per-synapse delays: per synapse the op stores, the smallest integer that
    holds the connection's range, 1 byte up to 127 steps, 2 up to 32 767, else 4), the
    populations' states and ILC feedback;
  - RUN, until the forward returns or its backward has run: the [T, 1, *shape] sequence
    of every encoder and population, and where gradients flow every op's output, delay
    line and synapse, with what autograd or the kernels keep beside them (max-pooling's
    indices, the spike-aware dense op's lists of nonzeros, a population run step by step
    keeps its step's products);
  - TRANSIENT while one op runs (only the largest counts): what is freed at once, such as
    noise, a transposed weight, one delay's weights, an op output no gradient needs.
Views (flatten, an input repeated over T) cost nothing until an op copies them.
On the clock backend the compiled loop (snnc/kernels/loop.py) also holds, while it runs,
each per-synapse-delay connection's synapses sorted by source and delay (RUN, see
LOOP_GROUP_BYTES).

Per-synapse delays also cost time: each distinct delay that can deliver something in a
call is one pass over the op's synapses (SynapseDelays in snnc/runtime/layers.py), so a
wide `delay uniform(a, b)` over a long run is refused when its work would be absurd. The
clock backend's compiled loop instead sorts the synapses by delay once before a run and then
visits, at each step and for each delay, only the sources that spiked: its work is what
counts where it runs the connection (see _loop_delay_work).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import networkx as nx

from snnc.check.shapes import fmt
from snnc.errors import Pos, SnnError
from snnc.ir import expr as ex
from snnc.ir.nodes import (
    BYTES_PER_VALUE,
    Connection,
    Encoder,
    Model,
    Network,
    Op,
    Population,
    numel,
)
from snnc.ir.values import Uniform
from snnc.limits import MAX_DELAY_WORK, delay_bytes, format_bytes, max_memory_bytes
from snnc.registry import SYNAPSES

VALUE = BYTES_PER_VALUE  # float32
INDEX = 8                # int64: max-pooling's indices, batchnorm's counter
DOUBLE = 8               # float64
KEPT, RUN, TRANSIENT = "kept", "run", "transient"
# SpikeLinear lists the nonzeros of a spike input up to a quarter of its entries, as an
# int32 index and a float32 value each: 2 bytes per input element.
NONZERO_LIST_BYTES = 2
# Ops with parameters: gradients flow from them on.
PARAMETERIZED_OPS = frozenset({"dense", "sparse", "one_to_one", "conv1d", "conv2d",
                               "batchnorm", "axat"})
# Per-synapse delays: one delay's pass (mask, masked weight, the op on its rows) costs
# about 3 operations per synapse plus its Python and dispatch overhead, here counted in
# operations (about 50 µs); more work than MAX_DELAY_WORK per sample is refused.
DELAY_PASS_OPERATIONS = 3
DELAY_PASS_OVERHEAD = 100_000
# SparseLinear (snnc/runtime/sparse.py) keeps per synapse a weight and three int32 indices
# (its target, and in target order its place and its source), per source and per target
# an offset. Drawing them takes up to SPARSE_DRAW_BYTES per synapse more (int64 positions
# and gaps, the sort into target order: a peak of 32 bytes with the kept ones, measured).
# A forward on spikes lists the synapses they reach, SPARSE_EVENT_BYTES each, up to
# SPARSE_EVENT_DENSITY of rows × synapses and SPARSE_MAX_EVENTS at once (the runtime's
# EVENT_DENSITY and MAX_EVENT_SYNAPSES: tests/test_sparse.py checks that they agree).
SPARSE_INDEXES = 3
SPARSE_DRAW_BYTES = 20
SPARSE_EVENT_BYTES = 56
SPARSE_EVENT_DENSITY = 0.005
SPARSE_MAX_EVENTS = 2**20
# The clock backend's compiled loop (templates/kernels/loop.c.j2, snnc/runtime/compiled.py)
# runs a pipeline of these ops around one weighted op (on a flat input unless one_to_one),
# with per-synapse delays unless its synapse is presynaptic. Before a run it sorts each
# source's synapses by delay (snnc_loop_prepare; kept for the next runs while the
# synapses stay) into lists of synapse and target in the sparse ops' index type
# (int32), LOOP_GROUP_BYTES per synapse, with two int64 offsets per source and delay, all
# connections' at once; that takes about LOOP_GROUP_OPERATIONS per synapse.
LOOP_OPS = frozenset({"flatten", "scale", "dense", "sparse", "one_to_one"})
LOOP_GROUP_BYTES = 4 + 4
LOOP_GROUP_OFFSET_BYTES = 2 * 8
LOOP_GROUP_OPERATIONS = 4


@dataclass(frozen=True)
class Part:
    """Memory one thing of the network needs, where it was written, and for how long
    (KEPT, RUN or TRANSIENT, see above)."""

    what: str
    bytes: int
    pos: Pos
    life: str


@dataclass(frozen=True)
class Estimate:
    parts: tuple[Part, ...]

    @property
    def total(self) -> int:
        lasting = sum(p.bytes for p in self.parts if p.life != TRANSIENT)
        return lasting + max((p.bytes for p in self.parts if p.life == TRANSIENT), default=0)

    @property
    def kept(self) -> int:
        return sum(p.bytes for p in self.parts if p.life == KEPT)

    def largest(self, count: int) -> list[Part]:
        """The `count` largest parts, lasting ones first among equals (a copy made for an
        op is a worse place to point at than the op or population it is made for)."""
        return sorted(self.parts, key=lambda p: (p.bytes, p.life != TRANSIENT),
                      reverse=True)[:count]


def check_budget(network: Network) -> None:
    """Refuse, with one SnnError, a network whose module would need more memory than
    SNNC_MAX_MEMORY allows (first: an absurd size is refused for its memory), or whose
    per-synapse delays would take absurdly long."""
    estimate = estimate_memory(network)
    limit = max_memory_bytes()
    if estimate.total <= limit:
        stepwise = _step_by_step(network)
        for conn in network.connections:
            _check_delay_work(conn, network.steps, stepwise, network.backend)
        return
    largest = estimate.largest(3)
    top = [largest[0], *(p for p in largest[1:] if p.bytes >= estimate.total / 100)]
    listed = ", ".join(f"{p.what} {format_bytes(p.bytes)}" for p in top)
    more = ", ..." if len(estimate.parts) > len(top) else ""
    raise SnnError(f"this network needs about {format_bytes(estimate.total)} ({listed}{more}); "
                   f"at most {format_bytes(limit)}", top[0].pos,
                   f"set SNNC_MAX_MEMORY to allow more (SNNC_MAX_MEMORY="
                   f"{math.ceil(estimate.total / 2**30)}G), or make the network smaller")


def estimate_memory(network: Network) -> Estimate:
    """What the module of `network` allocates for one sample's run (see above). The
    clock backend keeps no sequences, only each node's last steps, and allocates its
    monitors when a run asks for them (Simulator.monitor_bytes): its run costs one step."""
    steps = 1 if network.backend == "clock" else network.steps
    stepwise = _step_by_step(network)
    inputs = {i.name for i in network.inputs}
    grad = _carrying_gradients(network)
    recorded = _recorded_states(network)
    incoming = Counter(c.dst for c in network.connections)
    # per model (name, origin): its expressions may be long, its populations many
    saved: dict[tuple[str, str], int] = {}
    parts = [*_encoders(network.encoders, steps)]
    for conn in network.connections:
        parts += _connection(conn, steps, conn.src in inputs, conn.src in grad)
        if network.backend == "clock" and _loop_delays(conn) is not None:
            parts.append(_loop_groups(conn))
    for pop in network.populations:
        model = (pop.model.name, pop.model.origin)
        if model not in saved:
            saved[model] = _saved_per_step(pop.model)
        parts += _population(pop, steps, incoming[pop.name], stepwise,
                             saved[model] if pop.name in grad else 0,
                             recorded.get(pop.name, 0))
    return Estimate(tuple(p for p in parts if p.bytes))


def _step_by_step(network: Network) -> bool:
    """Whether softbp runs the network step by step: it does when it has a cycle."""
    graph = nx.DiGraph((c.src, c.dst) for c in network.connections)
    return not nx.is_directed_acyclic_graph(graph)


def _carrying_gradients(network: Network) -> set[str]:
    """The nodes whose output sequence autograd tracks: populations fed through an op with
    parameters or a learnable synapse, with learnable parameters, or fed by such nodes."""
    targets: dict[str, list[str]] = {}
    for conn in network.connections:
        targets.setdefault(conn.src, []).append(conn.dst)
    carrying = {p.name for p in network.populations if p.parameter_count()}
    carrying |= {c.dst for c in network.connections if _has_parameters(c)}
    pending = list(carrying)
    while pending:  # everything downstream, each node once
        for dst in targets.get(pending.pop(), ()):
            if dst not in carrying:
                carrying.add(dst)
                pending.append(dst)
    return carrying


def _has_parameters(conn: Connection) -> bool:
    return conn.learnable_synapse or any(op.kind in PARAMETERIZED_OPS for op in conn.ops)


def _recorded_states(network: Network) -> dict[str, int]:
    """How many states of each population are recorded at every step (monitors of states,
    a `v` or `v_max` readout)."""
    states: dict[str, set[str]] = {}
    for monitor in network.monitors:
        if monitor.var != "spikes":
            states.setdefault(monitor.target, set()).add(monitor.var)
    readout = network.readout
    if readout is not None and readout.spec.kind in ("v", "v_max"):
        states.setdefault(readout.target, set()).add("v")
    return {name: len(names) for name, names in states.items()}


# ------------------------------------------------------------------ encoders
def _encoders(encoders: list[Encoder], steps: int) -> Iterator[Part]:
    for enc in encoders:
        sequence = steps * numel(enc.shape) * VALUE
        label = f"encoder '{enc.name}' {fmt(enc.shape)} × {steps} steps"
        yield Part(label, sequence, enc.pos, RUN)
        # poisson draws a uniform number per element (after filling in its rate when it
        # has no input); constant and latency compare into booleans
        made = {"poisson": (2 if enc.source is None else 1) * sequence,
                "constant": sequence // VALUE, "latency": sequence // VALUE}
        yield Part(f"{label}: drawing", made.get(enc.spec.kind, 0), enc.pos, TRANSIENT)


# ------------------------------------------------------------------ connections
def _connection(conn: Connection, steps: int, from_input: bool, grad_in: bool) -> list[Part]:
    parts = []
    if from_input:  # an input given as [B, *shape] is repeated over T, then copied out
        parts.append(Part(f"connection '{conn.name}': input {fmt(conn.in_shape)} × {steps} "
                          "steps", steps * numel(conn.in_shape) * VALUE, conn.pos, TRANSIENT))
    if conn.synapse is not None and conn.synapse.kind == "stp":  # on the source's spikes
        parts += _synapse(conn, steps, grad_in)
    delayed = _delayed_op(conn) if isinstance(conn.delay, Uniform) else None
    grad = grad_in
    for op in conn.ops:
        grad = grad or op.kind in PARAMETERIZED_OPS
        parts += _op(conn, op, steps, RUN if grad else TRANSIENT, op is delayed)
    out = steps * numel(conn.out_shape) * VALUE
    if conn.min_delay > 0:  # delay_sequence shifts into a new sequence
        parts.append(Part(f"connection '{conn.name}': delay line", out, conn.pos,
                          RUN if grad else TRANSIENT))
    if conn.synapse is not None and conn.synapse.kind != "stp":
        parts += _synapse(conn, steps, grad or conn.learnable_synapse)
    return parts


def _delayed_op(conn: Connection) -> Op | None:
    """The op that carries per-synapse delays: the pipeline's only weighted op."""
    weighted = [op for op in conn.ops if op.weighted]
    return weighted[0] if len(weighted) == 1 else None


def _loop_delays(conn: Connection) -> Op | None:
    """The op whose per-synapse delays the clock backend's compiled loop carries (see
    LOOP_OPS), or None. The loop runs a network only where it runs all of it (every
    population's step too, which is known after lowering); where it does not, the
    PyTorch path costs what the softbp count says."""
    op = _delayed_op(conn) if isinstance(conn.delay, Uniform) else None
    if op is None or any(o.kind not in LOOP_OPS for o in conn.ops):
        return None
    if op.kind != "one_to_one" and len(op.in_shape) != 1:
        return None
    if conn.synapse is not None and SYNAPSES[conn.synapse.kind].presynaptic:
        return None
    return op


def _loop_groups(conn: Connection) -> Part:
    op = _loop_delays(conn)
    sources = numel(op.in_shape) if op.kind == "one_to_one" else op.in_shape[-1]
    lags = conn.max_delay - conn.min_delay + 1
    size = LOOP_GROUP_BYTES * _stored_synapses(op) + LOOP_GROUP_OFFSET_BYTES * sources * lags
    return Part(f"connection '{conn.name}': compiled loop's synapses by delay", size, op.pos,
                RUN)


def _op(conn: Connection, op: Op, steps: int, life: str, delayed: bool) -> list[Part]:
    label = f"connection '{conn.name}': {op.kind}"
    parts = [Part(f"{label} {what}", size, op.pos, KEPT) for what, size in _kept(op)]
    if delayed:
        synapses = _stored_synapses(op)
        parts.append(Part(f"{label} per-synapse delays",
                          delay_bytes(conn.min_delay, conn.max_delay) * synapses, op.pos, KEPT))
        # one delay's synapses (bool) and their weights, two delays' at a time
        parts.append(Part(f"{label} one delay's weights", 2 * (1 + VALUE) * synapses, op.pos,
                          TRANSIENT))
    out = steps * numel(op.out_shape) * VALUE
    for what, size, kind in _run(op, steps, out):
        parts.append(Part(f"{label} {what}", int(size), op.pos, life if kind == RUN else kind))
    return parts


def _stored_synapses(op: Op) -> int:
    """Entries of a weighted op's weight tensor: dense stores all in × out synapses,
    sparse the p × in × out expected to exist, one_to_one one per element."""
    if op.kind == "dense":
        return op.in_shape[-1] * op.out_shape[-1]
    if op.kind == "sparse":
        return round(op.params["p"] * op.in_shape[-1] * op.out_shape[-1])
    return numel(op.in_shape)


def _kept(op: Op) -> list[tuple[str, int]]:
    """(what, bytes) of an op's parameters and buffers as the runtime allocates them."""
    i, o = op.in_shape, op.out_shape
    if op.kind == "dense":
        return [(f"{i[-1]}×{o[-1]} weights", VALUE * op.parameter_count())]
    if op.kind == "sparse":  # SparseLinear: see SPARSE_INDEXES
        synapses = _stored_synapses(op)
        index = 4 if synapses < 2**31 else 8
        offsets = index * (i[-1] + o[-1] + 2)
        return [(f"{i[-1]}×{o[-1]} synapses at p = {op.params['p']:g}, weights and indices",
                 (VALUE + SPARSE_INDEXES * index) * synapses + offsets)]
    if op.kind in ("one_to_one", "conv1d", "conv2d", "axat"):
        return [("weights", VALUE * op.parameter_count())]
    if op.kind == "batchnorm":  # weight, bias, running mean and variance, a counter
        return [("parameters and statistics", 4 * VALUE * i[0] + INDEX)]
    if op.kind == "dct":
        return [("matrices", VALUE * (i[-2] ** 2 + i[-1] ** 2))]
    return []


def _run(op: Op, steps: int, out: int) -> list[tuple[str, float, str]]:
    """(what, bytes, RUN or TRANSIENT) an op allocates in a run whose output sequence is
    `out` bytes; RUN means kept while gradients need it."""
    sequence = f"output {fmt(op.out_shape)} × {steps} steps"
    if op.kind == "flatten":  # a view
        return []
    if op.kind == "maxpool":  # and int64 indices of the maxima, for the backward
        return [(sequence, out, RUN), ("indices", out * INDEX / VALUE, RUN)]
    if op.kind == "noise":
        return [(sequence, out, RUN), ("noise", out, TRANSIENT)]
    if op.kind == "channel_maxpool":  # the channels moved last, pooled, moved back
        return [(sequence, out, RUN), ("moved channels", out * op.params["k"], TRANSIENT)]
    if op.kind == "dct":  # its matrices are built in float64 before they are kept
        built = 2 * DOUBLE * (op.in_shape[-2] ** 2 + op.in_shape[-1] ** 2)
        first = steps * numel(op.in_shape) * VALUE
        return [(sequence, out, RUN), ("first product", first, RUN),
                ("matrices in float64", built, TRANSIENT)]
    if op.kind == "axat":  # and the product of the first matrix, saved
        first = steps * numel(op.in_shape) // op.in_shape[-2] * op.out_shape[-2] * VALUE
        return [(sequence, out, RUN), ("first product", first, RUN)]
    if op.kind == "dropout":  # and one mask for the run
        return [(sequence, out, RUN), ("mask", numel(op.in_shape) * VALUE, RUN)]
    if op.kind == "sparse":  # its draw at build, or the synapses reached by spikes listed
        synapses = _stored_synapses(op)
        listed = SPARSE_EVENT_BYTES * min(SPARSE_MAX_EVENTS, SPARSE_EVENT_DENSITY * steps
                                          * synapses)
        return [(sequence, out, RUN),
                ("drawing its synapses", SPARSE_DRAW_BYTES * synapses, TRANSIENT),
                ("synapses reached by spikes", listed, TRANSIENT)]
    if op.kind == "dense":  # SpikeLinear: the input's nonzeros, a transposed weight copy
        return [(sequence, out, RUN),
                ("nonzeros", NONZERO_LIST_BYTES * steps * numel(op.in_shape), RUN),
                ("transposed weights", VALUE * op.in_shape[-1] * op.out_shape[-1], TRANSIENT)]
    return [(sequence, out, RUN)]


# Sequences of each step's products a synapse has autograd save where gradients flow.
_SYNAPSE_SAVED = {"spike_current": 0, "exp_current": 0, "exp_decay_current": 0,
                  "filter": 2, "stp": 6}


def _synapse(conn: Connection, steps: int, grad: bool) -> list[Part]:
    """The synapse's current sequence, the list of its steps before they are stacked, and
    what autograd saves of each step."""
    kind = conn.synapse.kind
    shape = conn.in_shape if kind == "stp" else conn.out_shape  # STP acts on the spikes
    sequence = steps * numel(shape) * VALUE
    label = f"connection '{conn.name}': {kind} over {steps} steps"
    saved = _SYNAPSE_SAVED[kind] * sequence if grad else 0
    stepped = 0 if kind == "spike_current" else sequence  # one product of the whole
    return [Part(label, sequence + saved, conn.pos, RUN),
            Part(f"{label}, step by step", stepped, conn.pos, TRANSIENT)]


# ------------------------------------------------------------------ populations
def _population(pop: Population, steps: int, incoming: int, stepwise: bool, saved: int,
                recorded: int) -> list[Part]:
    """Its states, spikes and input; run step by step (recurrent, or recording states) each
    step's tensors before they are stacked, and the `saved` sequences autograd keeps of its
    steps where gradients reach it."""
    label = f"population '{pop.name}' {fmt(pop.shape)}"
    sequence = steps * pop.size * VALUE
    parts = [Part(f"{label} states", pop.state_bytes() + VALUE * pop.parameter_count(),
                  pop.pos, KEPT),
             Part(f"{label} spikes × {steps} steps", sequence, pop.pos, RUN)]
    if incoming != 1:  # the sum of its inputs, or zeros when it has none
        parts.append(Part(f"{label} input × {steps} steps", sequence, pop.pos, RUN))
    if recorded:
        parts.append(Part(f"{label} {recorded} recorded states × {steps} steps",
                          recorded * sequence, pop.pos, RUN))
    if stepwise or recorded:  # the reference step: each step's tensors, then their stacks
        parts.append(Part(f"{label} step by step × {steps} steps",
                          (1 + recorded) * sequence, pop.pos, RUN if stepwise else TRANSIENT))
        parts.append(Part(f"{label} saved by autograd × {steps} steps", saved * sequence,
                          pop.pos, RUN))
    return parts


def _saved_per_step(model: Model) -> int:
    """Tensors of a population's shape that autograd saves at each step of the model's
    reference step: both sides of each product of two changing values in `charge`, what
    the surrogate saw, and both sides of the reset's blend of each state."""
    changing = {*model.states, "x"}
    products = sum(_products(a.value, changing) for a in model.charge)
    return 2 * products + 1 + 2 * len(model.states)


def _products(expr: ex.Expr, changing: set[str]) -> int:
    """Products, quotients, powers and functions in `expr` of values that change every
    step: autograd saves their operands."""
    if isinstance(expr, ex.Binary):
        own = expr.op in ("*", "/", "**") and _changes(expr.left, changing) \
            and _changes(expr.right, changing)
        return own + _products(expr.left, changing) + _products(expr.right, changing)
    if isinstance(expr, ex.Call):  # `if` keeps only its condition
        own = expr.func != "if" and any(_changes(arg, changing) for arg in expr.args)
        return own + sum(_products(arg, changing) for arg in expr.args)
    if isinstance(expr, ex.Unary):
        return _products(expr.operand, changing)
    return 0


def _changes(expr: ex.Expr, changing: set[str]) -> bool:
    if isinstance(expr, ex.Name):
        return expr.id in changing
    if isinstance(expr, ex.Binary):
        return _changes(expr.left, changing) or _changes(expr.right, changing)
    if isinstance(expr, ex.Call):
        return any(_changes(arg, changing) for arg in expr.args)
    if isinstance(expr, ex.Unary):
        return _changes(expr.operand, changing)
    return False


# ------------------------------------------------------------------ delay work
def _check_delay_work(conn: Connection, steps: int, stepwise: bool,
                      backend: str = "softbp") -> None:
    """Refuse per-synapse delays whose passes (one per distinct delay that can deliver
    in a call, see SynapseDelays; on the clock backend, the compiled loop's work where it
    carries the connection) would cost more than MAX_DELAY_WORK per sample."""
    op = _delayed_op(conn) if isinstance(conn.delay, Uniform) else None
    if op is None:
        return
    synapses = _stored_synapses(op)
    distinct = min(int(conn.delay.high - conn.delay.low) + 1, synapses)
    if backend == "clock" and _loop_delays(conn) is not None:
        work = _loop_delay_work(conn, op, steps)
        why = ("the compiled loop looks at the sources once per delay and step, and sorts "
               "the synapses by delay at each call")
    else:
        passes, rows = _delay_passes(distinct, steps, stepwise)
        work = passes * (DELAY_PASS_OPERATIONS * synapses + DELAY_PASS_OVERHEAD) \
            + rows * synapses
        why = ("each distinct delay shorter than the run costs a pass over the synapses "
               "(per step when the network is recurrent)")
    if work > MAX_DELAY_WORK:
        raise SnnError(f"per-synapse delays of connection '{conn.name}' would cost about "
                       f"{work:.2g} operations per sample ({distinct} distinct delays over "
                       f"{steps} steps on {synapses} synapses); at most {MAX_DELAY_WORK:.0e}",
                       conn.pos, f"{why}: narrow the range of `delay uniform(a, b)` or "
                       "shorten the run")


def _loop_delay_work(conn: Connection, op: Op, steps: int) -> int:
    """The compiled loop's work for per-synapse delays in a run of `steps`, beyond what
    the same connection without them costs (each spike reaching its synapses): the sort
    by delay before the run, and at each step, for each delay up to the steps run, a look
    at every source that may have spiked (all of them, at worst)."""
    synapses = _stored_synapses(op)
    sources = numel(op.in_shape) if op.kind == "one_to_one" else op.in_shape[-1]
    lags = conn.max_delay - conn.min_delay + 1
    sorting = LOOP_GROUP_OPERATIONS * synapses + sources * lags
    return sorting + steps * min(lags, steps) * sources


def _delay_passes(distinct: int, steps: int, stepwise: bool) -> tuple[int, int]:
    """(passes over the synapses, rows the op runs on) in one run. Layer mode: one call,
    one pass per delay below `steps`, each over the steps it delivers to. Step mode: the
    call of step t makes a pass per delay up to t, each on one row."""
    reach = min(distinct, steps)
    if stepwise:
        passes = reach * (reach + 1) // 2 + (steps - reach) * reach
        return passes, passes
    return reach, reach * steps - reach * (reach - 1) // 2
