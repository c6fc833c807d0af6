"""NIR graph -> a readable .snn file and the state_dict it loads (`weights "FILE"`).

The conventions are docs/NIR.md's, shared with nir_export: continuous-time nodes are
stepped with forward Euler at `dt`; a neuron resets as its metadata says, else to
v_reset (or by subtraction with reset="soft"). Each neuron node becomes a population
whose model is written out in the file, so the discretisation is there to read; the
nodes between two neuron nodes (Affine, Conv2d, SumPool2d, Flatten, Delay, ...) become
the op pipeline of one connection.

A .nir file may come from anyone: it is read only after its size, its HDF5 signature
and the size of every array in it are checked (snnc.limits), and every structural
problem (a missing node, an edge to nowhere, a shape that does not fit) is one SnnError.
"""
from __future__ import annotations

import contextlib
import math
import re
import tempfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import networkx as nx
import numpy as np
import torch

from snnc.errors import SnnError, printable
from snnc.frontend.transformer import KEYWORDS, OPERATOR_WORDS
from snnc.limits import MAX_POPULATIONS, max_memory_bytes

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NEURONS = ("LIF", "CubaLIF", "IF", "LI", "I")
OPS = ("Affine", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Scale",
       "Delay")
RESETS = ("hard", "soft", "none")


@dataclass
class Imported:
    """What an import makes: the .snn text (its `weights` line names the weights file), the
    tensors of that file, and what was noticed on the way."""

    text: str
    state: dict[str, torch.Tensor]
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ reading
def read_graph(path: str | Path):
    """The NIR graph of a file, read only once it is known to be a bounded HDF5 file."""
    import nir  # optional dependency: the `nir` extra
    path = Path(path)
    shown = str(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            head = file.read(len(HDF5_SIGNATURE))
    except OSError as exc:
        raise SnnError(f"cannot read {shown}: {exc.strerror or exc}") from None
    if head != HDF5_SIGNATURE:
        raise SnnError(f"{shown} is not a NIR file (not HDF5)",
                       hint="a .nir file is written by nir.write")
    _check_array_sizes(path, shown, size)
    try:
        return nir.read(str(path))
    except Exception as exc:  # noqa: BLE001 - nir.read of untrusted data raises any kind
        raise SnnError(f"{shown} is not a readable NIR graph "
                       f"({type(exc).__name__}: {_first_line(exc)})") from None


def _check_array_sizes(path: Path, shown: str, size: int) -> None:
    """Refuse a file whose arrays would take more memory than snnc.limits allows, before
    any of them is read (HDF5 compresses: a small file can unpack to terabytes)."""
    import h5py
    limit, total = max_memory_bytes(), 0
    try:
        with h5py.File(path, "r") as file:
            datasets = []
            file.visititems(lambda name, obj: datasets.append(obj)
                            if isinstance(obj, h5py.Dataset) else None)
            for data in datasets:
                total += int(np.prod(data.shape, dtype=np.float64)) * data.dtype.itemsize
    except Exception as exc:  # noqa: BLE001 - a damaged HDF5 file raises any kind
        raise SnnError(f"{shown} is not a readable NIR graph ({type(exc).__name__})") from None
    if total > limit:
        raise SnnError(f"{shown} holds {total} bytes of arrays, more than the memory limit "
                       f"({limit} bytes)", hint="raise SNNC_MAX_MEMORY if it is what you meant")


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


# ------------------------------------------------------------------ the graph
@dataclass
class Route:
    """A path from a source (an Input or a neuron node) through op nodes to a target."""

    src: str
    ops: list[str]
    dst: str


def flatten_graph(graph, prefix: str = "") -> tuple[dict, list[tuple[str, str]]]:
    """Nodes and edges with nested graphs inlined: a subgraph's Input and Output nodes
    become pass-through nodes named `sub.input`, and edges to or from the subgraph itself
    go to its inputs or come from its outputs."""
    import nir
    nodes, edges = {}, []
    for name, node in graph.nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges = flatten_graph(node, f"{full}.")
            nodes.update(inner)
            edges += inner_edges
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        edges.append((_endpoint(graph, prefix, src, nir.Output, "output"),
                      _endpoint(graph, prefix, dst, nir.Input, "input")))
    return nodes, edges


def _endpoint(graph, prefix: str, name: str, kind, side: str) -> str:
    import nir
    node = graph.nodes.get(name.split(".")[0])
    if isinstance(node, nir.NIRGraph) and "." not in name:
        ends = [n for n, v in node.nodes.items() if isinstance(v, kind)]
        if len(ends) != 1:
            raise SnnError(f"subgraph '{prefix}{name}' has {len(ends)} {side} nodes; an edge "
                           f"to it needs exactly one")
        return f"{prefix}{name}.{ends[0]}"
    return f"{prefix}{name}"


class Graph:
    """The flattened graph with its nodes classified and its edges checked."""

    def __init__(self, graph, shown: str):
        import nir
        self.shown = shown
        self.nodes, edges = flatten_graph(graph)
        if len(self.nodes) > MAX_POPULATIONS:
            raise SnnError(f"{shown}: {len(self.nodes)} nodes, more than snnc builds "
                           f"({MAX_POPULATIONS})")
        self.out: dict[str, list[str]] = {name: [] for name in self.nodes}
        self.into: dict[str, list[str]] = {name: [] for name in self.nodes}
        for src, dst in edges:
            for end in (src, dst):
                if end not in self.nodes:
                    raise SnnError(f"{shown}: an edge {src} -> {dst} names node '{end}', "
                                   "which the graph does not have")
            self.out[src].append(dst)
            self.into[dst].append(src)
        self.inputs = [n for n, v in self.nodes.items()
                       if isinstance(v, nir.Input) and not self.into[n] and "." not in n]
        self.outputs = [n for n, v in self.nodes.items()
                        if isinstance(v, nir.Output) and not self.out[n] and "." not in n]
        for name, node in self.nodes.items():
            if self.kind(name) not in (*NEURONS, *OPS, "Input", "Output"):
                raise SnnError(f"{shown}: node '{name}' is a {type(node).__name__}, which "
                               "snnc does not import", hint="importable: "
                               + ", ".join((*NEURONS, *OPS)))
        if not self.inputs or not self.outputs:
            raise SnnError(f"{shown}: the graph needs an Input and an Output node "
                           f"(it has {len(self.inputs)} and {len(self.outputs)})")

    def kind(self, name: str) -> str:
        return type(self.nodes[name]).__name__

    def passes_through(self, name: str) -> bool:
        """Nodes a connection's pipeline is made of: ops, and a subgraph's own Input and
        Output (which pass their value on)."""
        return self.kind(name) in OPS or (self.kind(name) in ("Input", "Output")
                                          and name not in self.inputs + self.outputs)

    @cached_property
    def reached(self) -> list[str]:
        """Every node in breadth-first order from the inputs, then any not reached."""
        order = dict.fromkeys(self.inputs)
        queue = deque(self.inputs)
        while queue:
            for nxt in self.out[queue.popleft()]:
                if nxt not in order:
                    order[nxt] = None
                    queue.append(nxt)
        return [*order, *(n for n in self.nodes if n not in order)]

    def paths(self) -> list[Route]:
        """Every path from a source through pass-through nodes to a neuron or an Output."""
        found = []
        for src in self.inputs + [n for n in self.nodes if self.kind(n) in NEURONS]:
            stack = [(d, [d]) for d in self.out[src]]
            while stack:
                at, trail = stack.pop()
                if not self.passes_through(at):
                    found.append(Route(src, trail[:-1], at))
                    continue
                for nxt in self.out[at]:
                    if nxt in trail:
                        raise SnnError(f"{self.shown}: the cycle through '{at}' has no neuron "
                                       "on it", hint="snnc needs a population on every cycle")
                    stack.append((nxt, trail + [nxt]))
        rank = {n: i for i, n in enumerate(self.reached)}
        return sorted(found, key=lambda p: (rank[p.src], rank[p.dst], p.ops))


# ------------------------------------------------------------------ values
def _shape(node, shown: str, name: str, side: str = "output") -> tuple[int, ...]:
    types = node.output_type if side == "output" else node.input_type
    try:
        (array,) = types.values()
        shape = tuple(int(d) for d in np.asarray(array).reshape(-1))
    except (ValueError, TypeError, AttributeError):
        raise SnnError(f"{shown}: node '{name}' has no {side} shape") from None
    if not shape or any(d < 1 for d in shape):
        raise SnnError(f"{shown}: node '{name}' has {side} shape {list(shape)}",
                       hint="every axis must be at least 1")
    return shape


def _uniform(node, attr: str, shown: str, name: str) -> float:
    """A parameter NIR gives per neuron, which must be one value for the population."""
    values = np.asarray(getattr(node, attr), dtype=np.float64).reshape(-1)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise SnnError(f"{shown}: {attr} of node '{name}' is empty or not finite")
    if not np.allclose(values, values[0], rtol=1e-6, atol=0):
        raise SnnError(f"{shown}: {attr} of node '{name}' differs between neurons "
                       f"({values.min():g} to {values.max():g})",
                       hint="a snnc population takes one value of each parameter")
    return float(values[0])


def _number(value: float) -> str:
    """The shortest literal that reads back as `value` in float32 (NIR's arrays are
    float32: 0.0025, not 0.0024999999441206455)."""
    text = repr(float(str(np.float32(value))))
    if "e" in text or "E" in text:
        mantissa, exponent = text.lower().split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text if not text.startswith("-") else f"-{text[1:]}"


def _time(seconds: float) -> str:
    return f"{_number(float(str(np.float32(seconds))) * 1000.0)} ms"


# ------------------------------------------------------------------ models
MODELS_FILE = Path(__file__).with_name("nir_models.snn")


@lru_cache(maxsize=1)
def models() -> dict[str, str]:
    """NIR neuron type -> the text of its model (with its comment) in nir_models.snn."""
    blocks = MODELS_FILE.read_text(encoding="utf-8").split("\n\n")[1:]  # past the header
    return {re.search(r"neuron Nir(\w+)\(", b).group(1): b.strip("\n") for b in blocks}


_TIMES = {"tau", "tau_syn", "tau_mem"}
_PARAMS = {"LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
           "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
           "IF": ("r", "v_threshold", "v_reset"), "LI": ("tau", "r", "v_leak"), "I": ("r",)}


def _population_args(node, kind: str, shown: str, name: str, dt_s: float) -> list[str]:
    args = []
    for attr in _PARAMS[kind]:
        if attr == "v_reset" and getattr(node, attr, None) is None:
            continue  # NIR 1.0 lets v_reset be absent: the model's default, 0
        value = _uniform(node, attr, shown, name)
        if attr in _TIMES:
            if value <= 0:
                raise SnnError(f"{shown}: {attr} of node '{name}' is {value:g} s",
                               hint="a time constant must be positive")
            if value < dt_s:
                raise SnnError(f"{shown}: {attr} of node '{name}' ({value:g} s) is shorter "
                               f"than the step dt = {dt_s:g} s; forward Euler diverges",
                               hint='import with a smaller --dt, e.g. --dt "0.1 ms"')
            args.append(f"{attr} = {_time(value)}")
        else:
            args.append(f"{attr} = {_number(value)}")
    return args


def _reset(node, default: str | None) -> str:
    """The reset the node's metadata records (docs/NIR.md), else the user's, else hard."""
    meta = getattr(node, "metadata", None) or {}
    recorded = meta.get("reset")
    if isinstance(recorded, bytes):
        recorded = recorded.decode("utf-8", "replace")
    if isinstance(recorded, str) and recorded in RESETS:
        return recorded
    return default or "hard"


# ------------------------------------------------------------------ ops
class Pipeline:
    """One connection's ops as .snn text and their tensors by the names the op keeps."""

    def __init__(self, graph: Graph, dt_s: float):
        self.graph, self.dt_s = graph, dt_s
        self.ops: list[str] = []
        self.tensors: dict[tuple[int, str], np.ndarray] = {}
        self.delay_s = 0.0

    def add(self, name: str) -> None:
        node, kind = self.graph.nodes[name], self.graph.kind(name)
        if kind in ("Input", "Output"):
            return
        getattr(self, f"_{kind.lower()}")(node, name)

    def _weighted(self, text: str, **arrays) -> None:
        index = len(self.ops)
        self.ops.append(text)
        for key, array in arrays.items():
            self.tensors[(index, key)] = np.asarray(array, dtype=np.float32)

    def _affine(self, node, name):
        weight = np.asarray(node.weight)
        if weight.ndim != 2:
            raise SnnError(f"{self.graph.shown}: the weight of Affine '{name}' has "
                           f"{weight.ndim} axes", hint="an Affine weight is [out, in]")
        bias = np.asarray(node.bias).reshape(-1)
        if bias.shape != (weight.shape[0],):
            raise SnnError(f"{self.graph.shown}: the bias of Affine '{name}' has "
                           f"{bias.size} values for {weight.shape[0]} outputs")
        self._weighted("dense(bias = true)", weight=weight, bias=bias)

    def _linear(self, node, name):
        weight = np.asarray(node.weight)
        if weight.ndim != 2:
            raise SnnError(f"{self.graph.shown}: the weight of Linear '{name}' has "
                           f"{weight.ndim} axes", hint="a Linear weight is [out, in]")
        self._weighted("dense", weight=weight)

    def _conv(self, node, name, dims: int):
        weight = np.asarray(node.weight)
        if weight.ndim != dims + 2:
            raise SnnError(f"{self.graph.shown}: the weight of Conv{dims}d '{name}' has "
                           f"{weight.ndim} axes, not {dims + 2}")
        k = self._square(weight.shape[2:], "kernel", name)
        stride = self._square(node.stride, "stride", name)
        pad = self._square(node.padding, "padding", name)
        if self._square(node.dilation, "dilation", name) != 1 or int(node.groups) != 1:
            raise SnnError(f"{self.graph.shown}: Conv{dims}d '{name}' has dilation or groups "
                           "other than 1", hint="snnc's convolutions have neither")
        bias = np.broadcast_to(np.asarray(node.bias, dtype=np.float32), (weight.shape[0],))
        self._weighted(f"conv{dims}d(k = {k}, stride = {stride}, pad = {pad}, bias = true)",
                       weight=weight, bias=bias)

    def _conv1d(self, node, name):
        self._conv(node, name, 1)

    def _conv2d(self, node, name):
        self._conv(node, name, 2)

    def _square(self, values, what: str, name: str) -> int:
        sizes = [int(v) for v in np.asarray(values).reshape(-1)]
        if not sizes or len(set(sizes)) != 1 or sizes[0] < 0:
            raise SnnError(f"{self.graph.shown}: {what} {sizes} of '{name}'",
                           hint=f"snnc takes one {what} for every axis")
        return sizes[0]

    def _pool(self, node, name, scale: bool):
        k = self._square(node.kernel_size, "kernel_size", name)
        if self._square(node.stride, "stride", name) != k or \
                self._square(node.padding, "padding", name) != 0:
            raise SnnError(f"{self.graph.shown}: pooling '{name}' with a stride other than "
                           "its kernel or with padding", hint="snnc pools k×k with stride k")
        self.ops.append(f"avgpool({k})")
        if scale:  # a sum is k·k times the mean
            self.ops.append(f"scale({k * k})")

    def _sumpool2d(self, node, name):
        self._pool(node, name, scale=True)

    def _avgpool2d(self, node, name):
        self._pool(node, name, scale=False)

    def _flatten(self, node, name):
        shape = _shape(node, self.graph.shown, name, "input")
        start, end = int(node.start_dim), int(node.end_dim)
        if start != 0 or end not in (-1, len(shape) - 1):
            raise SnnError(f"{self.graph.shown}: Flatten '{name}' of axes {start} to {end}",
                           hint="snnc flattens a whole sample (start_dim 0, end_dim -1)")
        self.ops.append("flatten")

    def _scale(self, node, name):
        values = np.asarray(node.scale, dtype=np.float64).reshape(-1)
        if values.size and np.allclose(values, values[0], rtol=1e-6, atol=0):
            self.ops.append(f"scale({_number(values[0])})")
        else:
            self._weighted("one_to_one", weight=np.asarray(node.scale).reshape(-1))

    def _delay(self, node, name):
        self.delay_s += _uniform(node, "delay", self.graph.shown, name)


# ------------------------------------------------------------------ text
def identifier(name: str, taken: set[str]) -> str:
    """A .snn name for a NIR node name (`0`, `lif1.w_rec`): letters, digits and _, not a
    keyword, not taken."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "node"
    if not (base[0].isalpha() or base[0] == "_"):
        base = f"n{base}"
    if base in KEYWORDS or base in OPERATOR_WORDS:
        base = f"{base}_"
    candidate, i = base, 2
    while candidate in taken:
        candidate, i = f"{base}_{i}", i + 1
    taken.add(candidate)
    return candidate


def import_graph(graph, shown: str, network: str, weights_file: str,
                 dt_s: float | None = None, reset: str | None = None) -> Imported:
    """The .snn text of a NIR graph, and the tensors of its weights file."""
    g = Graph(graph, shown)
    dt_s = dt_s if dt_s is not None else _graph_dt(graph) or 1e-3
    if not (math.isfinite(dt_s) and dt_s > 0):
        raise SnnError(f"{shown}: dt of {dt_s!r} s", hint="dt must be a positive time")
    taken: set[str] = set()
    names = {n: identifier(n, taken) for n in g.inputs}
    names.update({n: identifier(n, taken) for n in g.reached if g.kind(n) in NEURONS})
    populations = [n for n in names if n not in g.inputs]
    imported = Imported("", {})
    lines = [f"    input {names[n]}{_shape_text(_shape(g.nodes[n], shown, n))}"
             for n in g.inputs]
    lines += [_population_line(g, n, names[n], dt_s, reset) for n in populations]
    lines += _connection_lines(g, names, dt_s, imported)
    written = [models()[k] for k in dict.fromkeys(g.kind(n) for n in populations)]
    header = [f"# Imported by snnc from {printable(Path(shown).name)} (NIR). Continuous-time "
              "nodes are",
              f"# stepped with forward Euler at dt = {_number(dt_s * 1000.0)} ms "
              "(docs/NIR.md).", ""]
    body = [f"network {network} {{", f"    dt = {_time(dt_s)}", f'    weights "{weights_file}"',
            "", *lines, "}"]
    imported.text = "\n".join(header + ["\n\n".join(written), "", *body]) + "\n"
    return imported


def _population_line(g: Graph, name: str, ident: str, dt_s: float, reset: str | None) -> str:
    """`population NAME[shape] = NirKIND(...)` of a neuron node, its reset where not hard."""
    node, kind = g.nodes[name], g.kind(name)
    args = _population_args(node, kind, g.shown, name, dt_s)
    if kind not in ("LI", "I"):
        chosen = _reset(node, reset)
        if chosen != "hard":
            args.append(f"reset = {chosen}")
    comment = f"  # NIR node '{printable(name)}'" if ident != name else ""
    return (f"    population {ident}{_shape_text(_shape(node, g.shown, name))} = "
            f"Nir{kind}({', '.join(args)}){comment}")


def _connection_lines(g: Graph, names: dict[str, str], dt_s: float,
                      imported: Imported) -> list[str]:
    """A `connect` per route from a source to a neuron node (its tensors and warnings into
    `imported`), then what forward() returns (the routes to the Outputs)."""
    paths = g.paths()
    delayed = {i for i, p in enumerate(paths) if any(g.kind(op) == "Delay" for op in p.ops)}
    delays = _cycle_delays(paths, delayed, g.inputs)
    pairs: dict[tuple[str, str], int] = {}
    lines, readouts = [], []
    for number, path in enumerate(paths):
        if path.dst in g.outputs:
            readouts.append(_output_source(g, path))
            continue
        src, dst = names[path.src], names[path.dst]
        count = pairs[(src, dst)] = pairs.get((src, dst), 0) + 1
        conn = f"{src}->{dst}" if count == 1 else f"{src}_{dst}_{count}"
        pipe = Pipeline(g, dt_s)
        for op in path.ops:
            pipe.add(op)
        steps = _delay_steps(path, pipe.delay_s, dt_s, imported.warnings) + delays.get(number, 0)
        lines.append(f"    connect {src} -> {dst}" + (f" as {conn}" if count > 1 else "")
                     + (" : " + " | ".join(pipe.ops) if pipe.ops else "")
                     + (f" delay {steps}" if steps else ""))
        for (index, key), array in pipe.tensors.items():
            imported.state[f"connections.{conn}.ops.{index}.{key}"] = \
                torch.from_numpy(array.copy())
    return lines + _readout_lines(g, readouts, names, paths)


def _output_source(g: Graph, path: Route) -> str:
    """The population a route to an Output reads: nothing may stand between them."""
    if path.src in g.inputs:
        raise SnnError(f"{g.shown}: the Output reads the Input '{path.src}' without a "
                       "neuron node between them", hint="snnc's outputs are populations")
    if path.ops:
        raise SnnError(f"{g.shown}: ops {path.ops} lie between '{path.src}' and the Output",
                       hint="snnc's outputs are populations: end the graph with a neuron "
                       "node (an LI node reads out a voltage)")
    return path.src


def _delay_steps(path: Route, delay_s: float, dt_s: float, warnings: list[str]) -> int:
    """The route's Delay nodes in whole steps; one warning where they are not."""
    exact = delay_s / dt_s
    if abs(exact - round(exact)) > 1e-6 * max(1.0, exact):
        warnings.append(f"the delay from '{path.src}' to '{path.dst}' ({delay_s:g} s) is "
                        f"{exact:g} steps of dt; rounded to {round(exact)}")
    return round(exact)


def _graph_dt(graph) -> float | None:
    """The step the graph records (docs/NIR.md): its own metadata's `dt`, else the first
    node's that has one."""
    for holder in (graph, *graph.nodes.values()):
        value = (getattr(holder, "metadata", None) or {}).get("dt")
        try:
            return float(value)
        except (TypeError, ValueError):  # absent (None), or not a number
            continue
    return None


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _cycle_delays(paths: list[Route], delayed: set[int], inputs: list[str]) -> dict[int, int]:
    """Delay 1 for each connection that closes a cycle with no Delay node on it (NIR's
    implicit one-step recurrence): in each such cycle, the edge that returns furthest back
    in a depth-first order from the inputs, until no cycle is left undelayed."""
    graph = nx.MultiDiGraph()
    for number, path in enumerate(paths):
        if number not in delayed:
            graph.add_edge(path.src, path.dst, key=number)
    order: dict[str, int] = {}
    for start in [*inputs, *graph.nodes]:
        if start in graph and start not in order:
            for node in nx.dfs_preorder_nodes(graph, start):
                order.setdefault(node, len(order))
    delays: dict[int, int] = {}
    while True:
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return delays
        src, dst, key = max(cycle, key=lambda e: (order[e[0]] - order[e[1]], -e[2]))
        delays[key] = 1
        graph.remove_edge(src, dst, key)


def _readout_lines(g: Graph, readouts: list[str], names: dict[str, str],
                   paths: list[Route]) -> list[str]:
    """What forward() returns: the spikes of the populations that feed an Output (those
    that feed no other population; the others' spikes are monitored, in module.monitors,
    since no readout returns spikes), or one leaky integrator's voltage (its last step's;
    every step's is monitored)."""
    readouts = list(dict.fromkeys(readouts))
    if not readouts:
        raise SnnError(f"{g.shown}: no neuron node feeds an Output",
                       hint="snnc's outputs are populations")
    integrators = [n for n in readouts if g.kind(n) in ("LI", "I")]
    if integrators and len(readouts) > 1:
        raise SnnError(f"{g.shown}: the Outputs are fed by {len(readouts)} nodes, one of them "
                       f"the leaky integrator '{integrators[0]}'",
                       hint="snnc reads out one voltage, or the spikes of several populations")
    if integrators:  # forward() gives the last step's voltage; module.monitors every step's
        name = names[integrators[0]]
        return ["", f"    monitor {name}.v", f"    readout {name} = v"]
    feeding = [n for n in readouts if any(p.src == n and p.dst not in g.outputs
                                          for p in paths)]
    return ["", "    monitor " + ", ".join(f"{names[n]}.spikes" for n in feeding)] \
        if feeding else []


# ------------------------------------------------------------------ files
def parse_dt(text: str) -> float:
    """`--dt "0.1 ms"` in seconds: a time with its unit as in the language (a bare
    number is in milliseconds, as the language's `dt`)."""
    from snnc.check.values import TIME_UNITS_MS
    match = re.fullmatch(r"\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*", text)
    if not match or (match.group(2) and match.group(2) not in TIME_UNITS_MS):
        raise SnnError(f"--dt {text!r} is not a time", hint='write it as "0.1 ms" or "1e-4 s"')
    seconds = float(match.group(1)) * TIME_UNITS_MS[match.group(2) or "ms"] / 1000.0
    if not (math.isfinite(seconds) and seconds > 0):
        raise SnnError(f"--dt {text!r} must be a positive time")
    return seconds


def import_file(path: str | Path, out: Path, network: str | None = None,
                dt_s: float | None = None, reset: str | None = None) -> Imported:
    """A NIR file as the text of `out` (a .snn file) and the tensors of the weights file
    its `weights` line names, beside it."""
    graph = read_graph(path)
    name = identifier(network or Path(path).stem, set())
    return import_graph(graph, str(path), name, weights_name(out), dt_s, reset)


def write_import(imported: Imported, out: Path, source: Path) -> Path:
    """Write the .snn file and its weights beside it (each atomically), once the two have
    been built together in a scratch folder: the file written compiles and its weights
    fit. On any error nothing is written and earlier files stay as they were."""
    from snnc.writer import check_targets, write_atomically, write_atomically_with
    weights = out.with_name(weights_name(out))
    text_target, weights_target = check_targets([out, weights], [source])
    with scratch_copy(imported, out.name):
        pass  # it compiled
    write_atomically_with(weights_target, lambda file: torch.save(imported.state, file))
    write_atomically(text_target, imported.text)
    return weights


@contextlib.contextmanager
def scratch_copy(imported: Imported, name: str) -> Iterator[Path]:
    """The imported .snn file and its weights in a scratch folder, compiled once (the
    checks a user's build will run); its path, for `snnc inspect IN.nir`."""
    from snnc.compiler import compile as compile_snn
    with tempfile.TemporaryDirectory(prefix="snnc-import-") as scratch:
        text = Path(scratch) / name
        text.write_text(imported.text, encoding="utf-8")
        torch.save(imported.state, text.with_name(weights_name(text)))
        compile_snn(text)
        yield text


def weights_name(out: Path) -> str:
    return f"{out.stem}.weights.pt"
