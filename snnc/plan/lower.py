"""The lowering pass: a scheduled, folded graph -> the Plan every backend renders."""
from __future__ import annotations

import networkx as nx

from snnc.errors import SnnError
from snnc.ir import expr as ex
from snnc.ir.graph import connections, populations
from snnc.ir.nodes import Connection, Encoder, Population
from snnc.ir.values import Spec, Symbol, Uniform
from snnc.passes.fold import fold
from snnc.plan.nodes import LAYERS, STEPS, Plan, Projection, RuleStep, SynapseStep, Tensor
from snnc.registry import OPS, RULES, SYNAPSES

# The ops whose synapses can each have their own delay: one weight per synapse.
_PER_SYNAPSE = ("dense", "sparse", "one_to_one")


def lower(graph: nx.MultiDiGraph) -> Plan:
    g = graph.graph
    order = layer_order(graph)
    pops = tuple(populations(graph))
    projections = tuple(projection(conn) for conn in connections(graph))
    nodes = [graph.nodes[name]["node"] for name in order or g["schedule"]]
    return Plan(
        name=g["name"], sources=tuple(g.get("sources") or ()), file=g.get("file"),
        dt_ms=g["dt_ms"], steps=g["steps"], seed=g["seed"], backend=g["backend"],
        mode=STEPS if order is None else LAYERS, order=tuple(order or g["schedule"]),
        inputs=tuple(n for n in nodes if n.kind == "input"),
        encoders=tuple(n for n in nodes if isinstance(n, Encoder)),
        populations=pops, projections=projections, monitors=tuple(g["monitors"]),
        readout=g["readout"], layout=layout(pops, projections), pos=g["pos"],
        weights=g.get("weights"))


def layer_order(graph: nx.MultiDiGraph) -> list[str] | None:
    """Whole sequences are computed one node at a time, so every source comes first,
    delayed or not (the schedule orders only same-step dependencies). None when the
    network has a cycle: then it runs step by step in schedule order."""
    order = nx.DiGraph()
    order.add_nodes_from(graph.graph["schedule"])
    order.add_edges_from((u, v) for u, v in graph.edges())
    for name, data in graph.nodes(data=True):
        if isinstance(data["node"], Encoder) and data["node"].source:
            order.add_edge(data["node"].source, name)
    if not nx.is_directed_acyclic_graph(order):
        return None
    return list(nx.lexicographical_topological_sort(order))


# ------------------------------------------------------------------ projections
def projection(conn: Connection) -> Projection:
    weighted = [i for i, op in enumerate(conn.ops) if op.weighted]
    per_synapse = isinstance(conn.delay, Uniform)
    if per_synapse and not (len(weighted) == 1 and conn.ops[weighted[0]].kind in _PER_SYNAPSE):
        raise SnnError(f"per-synapse delays need the pipeline's only weighted op to be "
                       f"dense, sparse or one_to_one (connection '{conn.name}')", conn.pos)
    kind = conn.ops[weighted[0]].kind if len(weighted) == 1 else None
    return Projection(
        name=conn.name, src=conn.src, dst=conn.dst, ops=tuple(conn.ops),
        weighted=weighted[0] if len(weighted) == 1 else None,
        connectivity="conv" if kind in ("conv1d", "conv2d") else kind,
        delay=conn.min_delay,
        synapse_delays=(conn.min_delay, conn.max_delay) if per_synapse else None,
        synapse=synapse_step(conn), rule=conn.rule, learning=rule_step(conn),
        channel=conn.channel,
        in_shape=conn.in_shape,
        out_shape=conn.out_shape, pos=conn.pos)


def synapse_step(conn: Connection) -> SynapseStep | None:
    """The connection's synapse as equations with its bound parameters folded in."""
    return None if conn.synapse is None else folded_synapse(conn.synapse)


def folded_synapse(spec: Spec) -> SynapseStep:
    """Synapse `spec.kind`'s equations (snnc.registry.synapses) with `spec.params` folded
    in: a connection's, or a library layer's (snnc.layers.SynapseFilter)."""
    entry, params = SYNAPSES[spec.kind], dict(spec.params)
    learnable = entry.learnable if params.get("learnable") else ()

    def f(expr):
        return fold(expr, params)

    return SynapseStep(
        kind=entry.name,
        states=tuple((name, _number(f(init))) for name, init in entry.states),
        update=tuple(ex.Assign(a.target, f(a.value)) for a in entry.update),
        output=f(entry.output), presynaptic=entry.presynaptic,
        learnable=tuple((name, _number(f(init))) for name, init in learnable))


def rule_step(conn: Connection) -> RuleStep | None:
    """The connection's plasticity rule as equations with its bound parameters folded in
    (a choice such as f_w as one flag per choice: `multiplicative`, `abs`, ...)."""
    if conn.rule is None:
        return None
    entry = RULES[conn.rule.kind]
    choices = {p.name: p.choices for p in entry.params}
    params = {}
    for name, value in conn.rule.params.items():
        if isinstance(value, Symbol):
            params.update({choice: value.name == choice for choice in choices[name]})
        else:
            params[name] = value

    def f(assigns):
        return tuple(ex.Assign(a.target, fold(a.value, params)) for a in assigns)

    (pre_trace, pre_weight), (post_trace, post_weight) = f(entry.on_pre), f(entry.on_post)
    return RuleStep(entry.name, f(entry.decay), pre_trace, pre_weight, post_trace, post_weight,
                    every_step=entry.every_step, pre_spike=entry.pre_spike)


def _number(expr) -> float:
    return float(expr.value)  # an initial value: parameters only, so folded to a number


# ------------------------------------------------------------------ layout
def layout(pops: tuple[Population, ...], projections: tuple[Projection, ...]
           ) -> tuple[Tensor, ...]:
    """Every parameter and buffer a backend keeps, by state_dict key, in module order."""
    tensors = [t for pop in pops for t in _population_tensors(pop)]
    for proj in projections:
        tensors += _projection_tensors(proj)
    return tuple(tensors)


def _population_tensors(pop: Population) -> list[Tensor]:
    prefix = f"populations.{pop.name}"
    tensors = [Tensor(f"{prefix}.learnable.{name}", (), True) for name in pop.learnable]
    if pop.feedback_group:  # ILC: a grouped conv1d from the spikes into the next step
        group, features = pop.feedback_group, pop.size // pop.feedback_group
        tensors += [Tensor(f"{prefix}.feedback.weight", (features * group, 1, group), True),
                    Tensor(f"{prefix}.feedback.bias", (features * group,), True)]
    return tensors


def _projection_tensors(proj: Projection) -> list[Tensor]:
    prefix = f"connections.{proj.name}"
    tensors = []
    for i, op in enumerate(proj.ops):
        own = OPS[op.kind].tensors(op.params, op.in_shape, op.out_shape)
        at = f"{prefix}.ops.{i}"
        if proj.synapse_delays and i == proj.weighted:  # runtime.layers.SynapseDelays
            tensors += [Tensor(f"{at}.inner.{name}", shape, learnt)
                        for name, shape, learnt in own]
            tensors.append(Tensor(f"{at}.delays", own[0][1], False))  # one per weight
        else:
            tensors += [Tensor(f"{at}.{name}", shape, learnt) for name, shape, learnt in own]
    if proj.synapse:
        tensors += [Tensor(f"{prefix}.synapse.{name}", (), True)
                    for name, _ in proj.synapse.learnable]
    return tensors
