"""The softbp backend: a differentiable multi-step module trained with surrogate gradients.

Feed-forward graphs run layer by layer: each connection's ops run once over
all T·B samples, each population runs its step over T; a delay shifts a
sequence in time. The context below is everything the template lays out.
"""
from __future__ import annotations

import networkx as nx

from snnc.backends.common import Scope, camel_case, header, literal
from snnc.backends.steps import step_function
from snnc.errors import SnnError
from snnc.ir.graph import connections, populations
from snnc.ir.nodes import Connection, Encoder
from snnc.kernels import context as kernel_context
from snnc.kernels import cpu as cpu_kernels
from snnc.kernels import cuda as cuda_kernels

NAME = "softbp"
# Ops snnc.runtime.factory builds (tests keep the two in step).
SUPPORTED_OPS = frozenset({"dense", "sparse", "one_to_one", "conv1d", "conv2d", "maxpool",
                           "avgpool", "flatten", "batchnorm", "dropout", "scale", "noise",
                           "channel_maxpool", "dct", "axat"})
SUPPORTED_SYNAPSES = frozenset({"exp_current", "exp_decay_current", "filter", "spike_current",
                                "stp"})
_ENCODERS = {"poisson": "Poisson", "constant": "Constant", "latency": "Latency",
             "periodic": "Periodic"}


# Names the generated module and its forward() rely on (see templates/softbp/network.py.j2).
MODULE_NAMES = {"torch", "nn", "rt"}
FORWARD_NAMES = {"self", "torch", "nn", "rt", "range", "super"}


def context(graph: nx.MultiDiGraph, version: str) -> dict:
    _check_supported(graph)
    pops = populations(graph)
    order = _layer_order(graph)
    recurrent = order is None
    nodes = {name: graph.nodes[name]["node"] for name in (order or graph.graph["schedule"])}
    module = Scope(MODULE_NAMES)
    steps_fns, step_of = _step_functions(pops, module)
    kernels, kernel_of = _kernels(pops, module)
    local = ForwardNames(nodes)
    return {
        "header": header(graph, NAME, version),
        "network": graph.graph["name"],
        "class_name": camel_case(graph.graph["name"]),
        "steps": graph.graph["steps"],
        "seed": graph.graph["seed"],
        "inputs": [(local.args[n.name], n.name, literal(n.shape), local.seq[n.name])
                   for n in nodes.values() if n.kind == "input"],
        "local": local,
        "steps_fns": steps_fns,
        "kernels": kernels,
        "populations": [_population(p, step_of[p.name], kernel_of[p.name]) for p in pops],
        "encoders": [_encoder(n) for n in nodes.values() if isinstance(n, Encoder)],
        "connections": [_connection(c) for c in connections(graph)],
        "forward": (_forward_steps if recurrent else _forward)(graph, nodes, local),
        "monitors": [(m.key, m.target, m.var) for m in graph.graph["monitors"]],
        "readout": _readout(graph),
    }


class ForwardNames:
    """The local names of the generated forward(): the inputs' parameters first (their
    names are the module's keyword API), then its own variables, then one sequence per
    node, all distinct (backends.common.Scope)."""

    def __init__(self, nodes: dict):
        inputs = [n for n, node in nodes.items() if node.kind == "input"]
        # without inputs, forward() takes `batch_size`
        scope = Scope(FORWARD_NAMES | (set() if inputs else {"batch_size"}))
        self.args = {n: scope.name(n) for n in inputs}
        self.like, self.steps, self.batch = scope.name("like"), scope.name("steps"), \
            scope.name("batch")
        self.sent, self.t = scope.name("sent"), scope.name("t")
        self.seq = {n: scope.name(f"s_{n}") for n in nodes}


def _step_functions(pops, module: Scope) -> tuple[list[dict], dict[str, str]]:
    """One reference step function per distinct step (populations of one model with the
    same folded parameters share it), named after the model."""
    functions: dict[tuple, dict] = {}
    step_of = {}
    for pop in pops:
        fn = step_function(pop)
        key = (tuple(fn["args"]), tuple(fn["lines"]), fn["returns"])
        if key not in functions:
            fn["name"] = module.name(f"step_{pop.model.name}")
            fn["populations"], fn["model"] = [], pop.model.name
            functions[key] = fn
        functions[key]["populations"].append(pop.name)
        step_of[pop.name] = functions[key]["name"]
    for fn in functions.values():
        names = ", ".join(f"'{n}'" for n in fn["populations"])
        plural = "s" if len(fn["populations"]) > 1 else ""
        fn["doc"] = f"One step of {fn['model']} population{plural} {names}."
    return list(functions.values()), step_of


def _kernels(pops, module: Scope) -> tuple[list[dict], dict[str, dict]]:
    """The fused kernels' sources, each once however many populations run it (the runtime
    builds one library per source); derived once per distinct step (sympy is the costly
    part of a build)."""
    kernels: dict[str, dict] = {}
    kernel_of = {}
    rendered: dict[tuple, dict[str, str | None]] = {}
    for pop in pops:
        key = kernel_context.kernel_key(pop)
        if key not in rendered:
            rendered[key] = _kernel_sources(pop)
        names = {}
        for target, source in rendered[key].items():
            if source is None:
                names[target] = None
                continue
            if source not in kernels:
                prefix = "KERNEL" if target == "cpu" else "CUDA_KERNEL"
                kernels[source] = {"name": module.name(f"{prefix}_{pop.model.name}"),
                                   "source": source, "target": target, "populations": []}
            kernels[source]["populations"].append(pop.name)
            names[target] = kernels[source]["name"]
        kernel_of[pop.name] = names
    for kernel in kernels.values():
        names = kernel.pop("populations")
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        kernel["who"] = f"population{'s' if len(names) > 1 else ''} {shown}"
    return list(kernels.values()), kernel_of


def _kernel_sources(pop) -> dict[str, str | None]:
    """The C and CUDA sources of a population's fused kernels (None: not for that target)."""
    fused, cuda = kernel_context.supports(pop), kernel_context.supports_cuda(pop)
    context = kernel_context.step_context(pop) if fused else None  # shared by both targets
    return {"cpu": cpu_kernels.kernel_source(pop, context) if fused else None,
            "cuda": cuda_kernels.cuda_source(pop, context) if cuda else None}


def _layer_order(graph: nx.MultiDiGraph) -> list[str] | None:
    """Whole sequences are computed one node at a time, so every source comes first,
    delayed or not (the schedule orders only same-step dependencies). None when the
    network is recurrent: then it runs step by step in schedule order."""
    order = nx.DiGraph()
    order.add_nodes_from(graph.graph["schedule"])
    order.add_edges_from((u, v) for u, v in graph.edges())
    for name, data in graph.nodes(data=True):
        if isinstance(data["node"], Encoder) and data["node"].source:
            order.add_edge(data["node"].source, name)
    if not nx.is_directed_acyclic_graph(order):
        return None
    return list(nx.lexicographical_topological_sort(order))


def _check_supported(graph: nx.MultiDiGraph) -> None:
    if _layer_order(graph) is None:
        _check_step_by_step(graph)
    for pop in populations(graph):
        if pop.event_driven:
            raise SnnError(f"the softbp backend cannot run {pop.model.name} (population "
                           f"'{pop.name}')", pop.pos,
                           f"{pop.model.name} runs on the event backend: --backend event")
    for conn in connections(graph):
        for op in conn.ops:
            if op.kind not in SUPPORTED_OPS:
                raise SnnError(f"the softbp backend does not run `{op.kind}` yet", op.pos)
        if conn.rule is not None:
            raise SnnError(f"the softbp backend does not run plasticity (connection "
                           f"'{conn.name}'); the clock backend will", conn.pos)
        if not isinstance(conn.delay, int) and _per_synapse_op(conn) is None:
            raise SnnError(f"per-synapse delays need the pipeline's only weighted op to be "
                           f"dense, sparse or one_to_one (connection '{conn.name}')", conn.pos)
    for node in graph.graph["schedule"]:
        enc = graph.nodes[node]["node"]
        if isinstance(enc, Encoder) and enc.spec.kind not in _ENCODERS:
            raise SnnError(f"the softbp backend does not run the {enc.spec.kind} encoder yet",
                           enc.pos)


def _check_step_by_step(graph: nx.MultiDiGraph) -> None:
    """What a network with a cycle, run one step at a time, cannot do."""
    for conn in connections(graph):
        for op in conn.ops:
            if op.kind == "batchnorm":
                raise SnnError(f"`batchnorm` in connection '{conn.name}' of a network with a "
                               "cycle: softbp runs such networks step by step, where it would "
                               "normalise each step's batch alone", op.pos,
                               "remove it, or break the cycle")


def _population(pop, step: str, kernel: dict) -> dict:
    return {"kernel": kernel["cpu"], "kernel_cuda": kernel["cuda"],
            "detach_reset": pop.detach_reset, "name": pop.name, "step": step,
            "shape": literal(pop.shape),
            "state_init": "{" + ", ".join(f"{s!r}: {literal(v)}"
                                          for s, v in pop.state_init.items()) + "}",
            "learnable": "{" + ", ".join(f"{k!r}: {literal(v)}"
                                         for k, v in pop.learnable.items()) + "}",
            "refractory": pop.refractory, "feedback_group": pop.feedback_group,
            "model": pop.model.name}


def _encoder(enc: Encoder) -> dict:
    p = enc.spec.params
    args = {"poisson": lambda: f"rate={literal(p['rate'])}, shape={literal(enc.shape)}",
            "constant": lambda: "",
            "latency": lambda: f"t_max={literal(p['t_max'])}, mode={literal(p['mode'])}",
            "periodic": lambda: ""}[enc.spec.kind]()
    return {"name": enc.name, "cls": _ENCODERS[enc.spec.kind], "args": args}


def _per_synapse_op(conn: Connection) -> int | None:
    """The index of the op that carries per-synapse delays, if the pipeline allows them."""
    weighted = [i for i, op in enumerate(conn.ops) if op.weighted]
    if len(weighted) == 1 and conn.ops[weighted[0]].kind in ("dense", "sparse", "one_to_one"):
        return weighted[0]
    return None


def _connection(conn: Connection) -> dict:
    per_synapse = None if isinstance(conn.delay, int) else _per_synapse_op(conn)
    ops = [f"rt.op({op.kind!r}, {literal(op.in_shape)}, {literal(op.out_shape)}"
           + "".join(f", {k}={literal(v)}" for k, v in op.params.items())
           + (f", delays=({conn.delay.low}, {conn.delay.high})" if i == per_synapse else "")
           + ")" for i, op in enumerate(conn.ops)]
    synapse = None
    if conn.synapse is not None:
        synapse = f"rt.synapse({conn.synapse.kind!r}" + "".join(
            f", {k}={literal(v)}" for k, v in conn.synapse.params.items()) + ")"
    return {"name": conn.name, "ops": ops, "out_shape": literal(conn.out_shape),
            "delay": conn.delay if per_synapse is None else 0, "synapse": synapse}


def _total(terms: list[str], zeros: str) -> str:
    """The sum of a population's input currents; a list, so that thousands of incoming
    connections make one call, not an expression nested thousands deep."""
    if not terms:
        return zeros
    return terms[0] if len(terms) == 1 else "rt.total([" + ", ".join(terms) + "])"


def _forward(graph: nx.MultiDiGraph, nodes: dict, local: ForwardNames) -> list[str]:
    """One line per node in schedule order: its sequence from its sources'."""
    lines = []
    incoming = {name: [] for name in nodes}
    for conn in connections(graph):
        incoming[conn.dst].append(conn)
    seq = local.seq
    for name, node in nodes.items():
        if node.kind == "input":
            continue  # the template turns inputs into sequences first
        if node.kind == "encoder":
            source = seq[node.source] if node.source else "None"
            lines.append(f"{seq[name]} = self.encoders[{name!r}]({source}, {local.steps}, "
                         f"{local.batch}, {local.like})")
        else:
            currents = _total([f"self.connections[{c.name!r}]({seq[c.src]})"
                               for c in incoming[name]],
                              f"{local.like}.new_zeros({local.steps}, {local.batch}, "
                              f"*{literal(node.shape)})")
            lines.append(f"{seq[name]} = self.populations[{name!r}]({currents})")
    return lines


def _forward_steps(graph: nx.MultiDiGraph, nodes: dict, local: ForwardNames) -> list[str]:
    """A recurrent network: encoders over all T first, then one loop over the steps that
    updates the populations in schedule order (a delayed source reads an earlier step)."""
    lines = []
    seq, sent, t, like = local.seq, local.sent, local.t, local.like
    pops = [n for n in nodes.values() if n.kind == "population"]
    for name, node in nodes.items():
        if node.kind == "encoder":
            source = seq[node.source] if node.source else "None"
            lines.append(f"{seq[name]} = self.encoders[{name!r}]({source}, {local.steps}, "
                         f"{local.batch}, {like})")
    lines.append(f"{sent} = {{" + ", ".join(f"{p.name!r}: []" for p in pops) + "}")
    lines.append(f"for {t} in range({local.steps}):")
    for pop in pops:
        parts = [f"self.connections[{c.name!r}].at("
                 + (f"{sent}[{c.src!r}]" if nodes[c.src].kind == "population" else seq[c.src])
                 + f", {t}, {like})" for c in connections(graph) if c.dst == pop.name]
        current = _total(parts, f"{like}.new_zeros({local.batch}, *{literal(pop.shape)})")
        lines.append(f"    {sent}[{pop.name!r}].append("
                     f"self.populations[{pop.name!r}].single_step({current}))")
    for pop in pops:
        lines.append(f"{seq[pop.name]} = torch.stack({sent}[{pop.name!r}])")
        lines.append(f"self.populations[{pop.name!r}].finish()")
    return lines


def _readout(graph: nx.MultiDiGraph) -> dict:
    readout = graph.graph["readout"]
    if readout is None:
        # LANGUAGE.md §4.6; when every population feeds another, all of them
        ends = [p.name for p in populations(graph) if graph.out_degree(p.name) == 0] \
            or [p.name for p in populations(graph)]
        return {"kind": "spikes", "targets": ends, "uses_v": False}
    kind = readout.spec.kind
    args = ", ".join(literal(v) for v in readout.spec.params.values())
    return {"kind": kind, "target": readout.target, "args": args,
            "uses_v": kind in ("v", "v_max")}
