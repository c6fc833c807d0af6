"""Checks of one `network { ... }`: names, arguments, units, shapes, delays and cycles.

The result is an `ir.nodes.Network` in which every value is checked and
converted; each small function below checks one thing and is named for it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import networkx as nx

from snnc.check import neurons, shapes
from snnc.check.models import model_of
from snnc.check.neurons import backends_of, refusal
from snnc.check.signatures import bind, convert, resolve
from snnc.check.values import TIME, Evaluator
from snnc.errors import SnnError, unknown
from snnc.frontend import ast
from snnc.ir.nodes import (
    Connection,
    Encoder,
    Input,
    Model,
    Monitor,
    Network,
    Op,
    Population,
    Readout,
    Shape,
    Weights,
    numel,
)
from snnc.ir.values import Spec, Uniform
from snnc.limits import MAX_CONNECTIONS, MAX_DELAY, MAX_ELEMENTS, MAX_POPULATIONS, MAX_RANK
from snnc.registry import ENCODERS, OPS, READOUTS, RULES, SETTINGS, SYNAPSES


def check_network(net: ast.NetworkDef, models: Mapping[str, ast.NeuronDef], file: str,
                  weights_file: Callable[[ast.Weights], Path] | None = None) -> Network:
    dt_ms, steps, backend, seed, explicit_backend = _settings(net)
    ev = Evaluator(dt_ms)
    _check_counts(net)
    _check_unique_nodes(net)
    inputs = [_input(d, ev) for d in net.of(ast.InputDecl)]
    input_shapes = {i.name: i.shape for i in inputs}
    encoders = [_encoder(d, ev, input_shapes) for d in net.of(ast.EncoderDecl)]
    converted: dict[str, Model] = {}  # each model once per network, however many use it
    populations = [_population(d, ev, models, converted)
                   for d in net.of(ast.PopulationDecl)]
    nodes = {n.name: n for n in (*inputs, *encoders, *populations)}
    connections = [_connection(c, ev, nodes) for c in net.of(ast.Connect)]
    _check_unique_connections(connections)
    _check_cycles(connections)
    if not explicit_backend and populations and all(p.event_driven for p in populations):
        backend = "event"
    network = Network(net.name, file, dt_ms, steps, backend, seed, inputs, encoders,
                      populations, connections, _monitors(net, nodes), _readout(net, ev, nodes),
                      net.pos, _weights(net, weights_file))
    if explicit_backend:
        check_backend(populations, backend, _setting_pos(net, "backend"))
    return network


def _weights(net: ast.NetworkDef, weights_file: Callable[[ast.Weights], Path] | None
             ) -> Weights | None:
    """The network's `weights "FILE"`, at most one, resolved by the loader's rules."""
    stmts = net.of(ast.Weights)
    if len(stmts) > 1:
        raise SnnError("'weights' is given twice", stmts[1].pos,
                       f"first given at line {stmts[0].pos.line}")
    if not stmts:
        return None
    if weights_file is None:
        raise SnnError("a network with `weights` must be built from a file", stmts[0].pos)
    return Weights(str(weights_file(stmts[0])), stmts[0].pos)


# ------------------------------------------------------------------ settings
def _settings(net: ast.NetworkDef) -> tuple[float, int, str, int | None, bool]:
    given: dict[str, ast.Setting] = {}
    for setting in net.of(ast.Setting):
        if setting.name not in SETTINGS.names:
            raise unknown("setting", setting.name, SETTINGS.names, setting.pos)
        if setting.name in given:
            raise SnnError(f"'{setting.name}' is set twice", setting.pos,
                           f"first set at line {given[setting.name].pos.line}")
        given[setting.name] = setting
    dt_ms = _dt(given.get("dt"))
    ev = Evaluator(dt_ms)
    values = {p.name: (convert(p, given[p.name].value, ev, SETTINGS) if p.name in given
                       else p.default) for p in SETTINGS.params if p.name != "dt"}
    return dt_ms, values["steps"], values["backend"].name, values["seed"], "backend" in given


def _dt(setting: ast.Setting | None) -> float:
    """`dt` in milliseconds; a bare number is taken as milliseconds."""
    if setting is None:
        return 1.0
    expr = setting.value
    dt = Evaluator(1.0, expect=TIME).number(expr)  # with dt = 1 ms, a time in steps is in ms
    if dt <= 0:
        raise SnnError(f"dt must be positive, got {dt:g}", expr.pos)
    return float(dt)


def _setting_pos(net: ast.NetworkDef, name: str):
    return next(s.pos for s in net.of(ast.Setting) if s.name == name)


def check_backend(pops: list[Population], backend: str, pos) -> None:
    """A construct the backend cannot execute is an error naming the backend that can."""
    for pop in pops:
        able = backends_of(pop.model)
        if backend not in able:
            raise SnnError(refusal(pop.model, pop.name, backend), pos or pop.pos,
                           f"{pop.model.name} runs on the {' or '.join(able)} backend")


# ------------------------------------------------------------------ nodes
def _check_counts(net: ast.NetworkDef) -> None:
    """At most MAX_POPULATIONS nodes and MAX_CONNECTIONS connections, refused at the
    first beyond, before any of them is checked or built."""
    nodes = connections = 0
    for stmt in net.body:
        if isinstance(stmt, (ast.InputDecl, ast.EncoderDecl, ast.PopulationDecl)):
            nodes += 1
            if nodes > MAX_POPULATIONS:
                raise SnnError(f"network {net.name} has more than {MAX_POPULATIONS} inputs, "
                               "encoders and populations", stmt.pos,
                               "merge populations of one model into larger ones")
        elif isinstance(stmt, ast.Connect):
            connections += 1
            if connections > MAX_CONNECTIONS:
                raise SnnError(f"network {net.name} has more than {MAX_CONNECTIONS} "
                               "connections", stmt.pos,
                               "merge connections between the same populations")


def _check_unique_nodes(net: ast.NetworkDef) -> None:
    seen: dict[str, object] = {}
    for decl in net.body:
        if isinstance(decl, (ast.InputDecl, ast.EncoderDecl, ast.PopulationDecl)):
            if decl.name in seen:
                raise SnnError(f"'{decl.name}' is declared twice in network {net.name}",
                               decl.pos, f"first declared at line {seen[decl.name].pos.line}")
            seen[decl.name] = decl


def _shape(exprs: tuple[ast.Expr, ...], ev: Evaluator, what: str) -> Shape:
    dims = []
    for expr in exprs:
        value = ev.number(expr)
        if value != int(value) or value < 1:
            raise SnnError(f"the shape of {what} needs whole sizes >= 1, got {value:g}",
                           expr.pos)
        dims.append(int(value))
    shape = tuple(dims)
    _check_size(shape, what, exprs[0].pos)
    return shape


def _check_size(shape: Shape, what: str, pos) -> None:
    """A shape PyTorch can hold: at most MAX_RANK axes and MAX_ELEMENTS elements."""
    if len(shape) > MAX_RANK:
        raise SnnError(f"{what} has {len(shape)} axes", pos, f"at most {MAX_RANK}")
    if numel(shape) > MAX_ELEMENTS:
        raise SnnError(f"{what} is too large: {math.prod(shape)} elements", pos,
                       f"at most {MAX_ELEMENTS} per sample")


def _input(decl: ast.InputDecl, ev: Evaluator) -> Input:
    return Input(decl.name, _shape(decl.shape, ev, f"input '{decl.name}'"), decl.pos)


def _encoder(decl: ast.EncoderDecl, ev: Evaluator, inputs: Mapping[str, Shape]) -> Encoder:
    sig = resolve(ENCODERS, decl.encoder, "encoder")
    params = bind(decl.encoder, sig, ev, sources=inputs)
    source = next((params[s].name for s in sig.sources if params.get(s) is not None), None)
    declared = _shape(decl.shape, ev, f"encoder '{decl.name}'") if decl.shape else None
    inferred = _encoder_shape(sig.name, params, inputs.get(source), decl)
    if declared and inferred and declared != inferred:
        raise SnnError(f"encoder '{decl.name}' is declared {shapes.fmt(declared)} but "
                       f"{sig.name}({source}) gives {shapes.fmt(inferred)}", decl.pos,
                       "drop the declared shape; it is inferred from the argument")
    shape = declared or inferred
    if shape is None:
        raise SnnError(f"encoder '{decl.name}' has no input, so it needs a shape", decl.pos,
                       f"write `encoder {decl.name}[N] = {sig.name}(...)`")
    _check_size(shape, f"encoder '{decl.name}'", decl.pos)
    if sig.name == "poisson" and (params["x"] is None) == (params["rate"] is None):
        raise SnnError("poisson() takes either an input or a rate, not both or neither",
                       decl.encoder.pos, "poisson(img) or poisson(rate = 15 Hz)")
    return Encoder(decl.name, shape, Spec(sig.name, params), source, decl.pos)


def _encoder_shape(kind: str, params: dict, source: Shape | None,
                   decl: ast.EncoderDecl) -> Shape | None:
    if source is None:
        return None
    if kind == "periodic" and len(source) < 2:
        raise SnnError("periodic() replays an input of shape [T, *], which needs two "
                       f"axes or more; it has {shapes.fmt(source)}", decl.encoder.pos)
    rule = ENCODERS[kind].shape
    return rule(source, params) if rule else source


def _population(decl: ast.PopulationDecl, ev: Evaluator, models: Mapping[str, ast.NeuronDef],
                converted: dict[str, Model]) -> Population:
    if decl.model.func not in models:
        raise unknown("neuron model", decl.model.func, models, decl.model.pos)
    model = models[decl.model.func]
    shape = _shape(decl.shape, ev, f"population '{decl.name}'")
    fields = neurons.bind_population(decl.model, model, ev)
    group = fields["feedback_group"]
    if group and shape[-1] % group:
        raise SnnError(f"{model.name} groups {group} neurons per feature, which does not "
                       f"divide '{decl.name}' {shapes.fmt(shape)}", decl.pos)
    if model.name not in converted:
        converted[model.name] = model_of(model, ev.dt_ms)
    return Population(decl.name, shape, converted[model.name], pos=decl.pos, **fields)


# ------------------------------------------------------------------ connections
def _connection(conn: ast.Connect, ev: Evaluator, nodes: Mapping[str, object]) -> Connection:
    for end in (conn.src, conn.dst):
        if end.id not in nodes:
            raise unknown("population", end.id, nodes, end.pos)
    dst = nodes[conn.dst.id]
    if not isinstance(dst, Population):
        raise SnnError(f"'{conn.dst.id}' is an {dst.kind}; connections end at populations",
                       conn.dst.pos)
    src = nodes[conn.src.id]
    _check_spike_form(src, dst, conn)
    bound = [(op.func, bind(op, resolve(OPS, op, "op"), ev), op.pos) for op in conn.ops]
    dims = shapes.infer_pipeline(bound, src.name, src.shape, dst.name, dst.shape, conn.name,
                                 conn.pos)
    ops = [Op(kind, params, dims[i], dims[i + 1], pos)
           for i, (kind, params, pos) in enumerate(bound)]
    synapse = _spec(conn.via, SYNAPSES, "synapse", ev)
    channel = _channel(conn, synapse, dst)
    rule = _spec(conn.learn, RULES, "learning rule", ev)
    if rule is not None and sum(op.weighted for op in ops) != 1:
        raise SnnError(f"learn {rule.kind} needs exactly one op with weights in '{conn.name}'",
                       conn.learn.pos, "add `dense`, `sparse`, `one_to_one` or a convolution")
    return Connection(conn.name, src.name, dst.name, ops, _delay(conn.delay, ev), synapse, rule,
                      src.shape, dst.shape, conn.pos, channel=channel)


def _spike_forms(node) -> tuple[str, ...]:
    """What a node sends: spike trains ([T, B, *shape]) or spike times ([B, *shape]); an
    input, what its target reads."""
    if isinstance(node, Encoder):
        return ENCODERS[node.spec.kind].produces
    if isinstance(node, Population):
        return ("times",) if node.event_driven else ("spikes",)
    return ("spikes", "times")


def _check_spike_form(src, dst: Population, conn: ast.Connect) -> None:
    """A spike-response model (`kernel`) reads spike times, a stepped one spike trains."""
    wanted = "times" if dst.event_driven else "spikes"
    sent = _spike_forms(src)
    if wanted not in sent:
        gives = {"times": "spike times", "spikes": "spike trains"}
        what = src.spec.kind if isinstance(src, Encoder) else src.model.name
        raise SnnError(f"population '{dst.name}' ({dst.model.name}) takes {gives[wanted]}, "
                       f"but {src.kind} '{src.name}' ({what}) gives {gives[sent[0]]}",
                       conn.src.pos,
                       "spike-response models (a `kernel`, such as Tempotron) read spike "
                       "times: gaussian_tuning, latency or another such model; stepped "
                       "models read spike trains")


def _channel(conn: ast.Connect, synapse: Spec | None, dst: Population) -> str | None:
    """The target's state a synapse delivers into (`channel = ge`), or None for its input x;
    a spike-response model has no states to deliver into."""
    chosen = synapse.params.get("channel") if synapse else None
    if chosen is None:
        return None
    pos = next((kw.pos for kw in conn.via.kwargs if kw.name == "channel"), conn.via.pos)
    if chosen.name not in dst.model.states:
        raise unknown("state", chosen.name, dst.model.states, pos,
                      owner=f"{dst.model.name} (population '{dst.name}')")
    return chosen.name


def _spec(call: ast.Call | None, table, what: str, ev: Evaluator) -> Spec | None:
    if call is None:
        return None
    sig = resolve(table, call, what)
    return Spec(sig.name, bind(call, sig, ev))


def _delay(expr: ast.Expr | None, ev: Evaluator) -> int | Uniform:
    if expr is None:
        return 0
    value = ev.expecting(TIME)(expr)
    if isinstance(value, Uniform):
        low, high = round(value.low), round(value.high)
        _check_delay_range(low, expr)
        _check_delay_range(high, expr)
        return Uniform(low, high) if low != high else low
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SnnError("a delay is a number of steps, a time or uniform(a, b)", expr.pos)
    steps = round(value)
    _check_delay_range(steps, expr)
    return steps


def _check_delay_range(steps: float, expr: ast.Expr) -> None:
    if steps < 0:
        raise SnnError(f"a delay cannot be negative, got {steps:g} steps", expr.pos)
    if steps > MAX_DELAY:
        raise SnnError(f"a delay of {steps:g} steps is too long", expr.pos,
                       f"at most {MAX_DELAY} steps")


def _check_unique_connections(connections: list[Connection]) -> None:
    seen: dict[str, Connection] = {}
    for conn in connections:
        if conn.name in seen:
            raise SnnError(f"connection '{conn.name}' is declared twice", conn.pos,
                           f"name one of them: `connect {conn.src} -> {conn.dst} as NAME` "
                           f"(first at line {seen[conn.name].pos.line})")
        seen[conn.name] = conn


def _check_cycles(connections: list[Connection]) -> None:
    """Every cycle needs a connection with delay >= 1, or a step would depend on itself."""
    same_step = nx.MultiDiGraph()
    for conn in connections:
        if conn.min_delay == 0:
            same_step.add_edge(conn.src, conn.dst, key=conn.name, conn=conn)
    try:
        cycle = nx.find_cycle(same_step)
    except nx.NetworkXNoCycle:
        return
    names = [edge[0] for edge in cycle] + [cycle[0][0]]
    first = same_step.edges[cycle[0][0], cycle[0][1], cycle[0][2]]["conn"]
    raise SnnError(f"cycle without delay: {' -> '.join(names)}", first.pos,
                   "give one connection of the cycle `delay 1` or more")


# ------------------------------------------------------------------ monitors, readout
def _monitors(net: ast.NetworkDef, nodes: Mapping[str, object]) -> list[Monitor]:
    result: list[Monitor] = []
    for monitor in net.of(ast.Monitor):
        for probe in monitor.probes:
            node = nodes.get(probe.target)
            if not isinstance(node, (Population, Encoder)):
                candidates = [n for n, v in nodes.items() if isinstance(v, (Population, Encoder))]
                raise unknown("population", probe.target, candidates, probe.pos)
            variables = _recordable(node)
            if probe.var not in variables:
                raise unknown("variable", probe.var, variables, probe.pos,
                              owner=f"'{probe.target}'")
            result.append(Monitor(probe.target, probe.var, probe.pos))
    return result


def _recordable(node: Population | Encoder) -> list[str]:
    if isinstance(node, Encoder):
        return ["spikes"]
    states = list(node.model.states) or (["v"] if node.event_driven else [])
    return ["spikes", *states]


def _readout(net: ast.NetworkDef, ev: Evaluator, nodes: Mapping[str, object]) -> Readout | None:
    readouts = net.of(ast.Readout)
    if not readouts:
        return None
    if len(readouts) > 1:
        raise SnnError("a network has at most one readout", readouts[1].pos,
                       f"the first is at line {readouts[0].pos.line}")
    decl = readouts[0]
    node = nodes.get(decl.target)
    if not isinstance(node, Population):
        candidates = [n for n, v in nodes.items() if isinstance(v, Population)]
        raise unknown("population", decl.target, candidates, decl.pos)
    sig = resolve(READOUTS, decl.kind, "readout")
    spec = Spec(sig.name, bind(decl.kind, sig, ev))
    if sig.needs_v and "v" not in _recordable(node):
        raise SnnError(f"readout {sig.name} needs a state 'v', which {node.model.name} lacks",
                       decl.kind.pos)
    out = node.shape
    if sig.name == "voting":
        k = spec.params["k"]
        if node.shape[-1] % k:
            raise SnnError(f"voting({k}) needs the last axis of '{node.name}' "
                           f"{shapes.fmt(node.shape)} to be divisible by {k}", decl.kind.pos)
        out = (*node.shape[:-1], node.shape[-1] // k)
    return Readout(node.name, spec, out, decl.pos)
