"""`snnc run`: simulate a network on the clock backend, then report its firing rates and,
on request, plot and save what was recorded.

Everything that can be refused is refused before the first step: an output file of the
wrong kind, a `--record` that names nothing, monitors larger than the memory limit.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from rich.text import Text

from snnc.compiler import analyse, compile_graph
from snnc.errors import SnnError, printable, unknown
from snnc.inputs import GivenInput, read_inputs
from snnc.limits import MAX_STEPS, format_bytes, max_memory_bytes
from snnc.runtime.simulator import WEIGHT_EVERY, spike_tensor
from snnc.writer import check_targets, write_atomically_with

SAVE_SUFFIXES = (".pt", ".npz")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")
MIN_CHUNK_STEPS = 1000  # a chunk is 1% of the run, or this many steps when that is more


@dataclass
class RunResult:
    """What one `snnc run` simulated: monitors {"pop.var": [steps, B, *shape],
    "conn.weight": [samples, *shape]}, spikes per neuron {encoder or population:
    [B, *shape]}, the time step and the wall-clock time."""

    monitors: dict[str, torch.Tensor]
    spike_counts: dict[str, torch.Tensor]
    steps: int
    batch: int
    dt_ms: float
    wall_s: float
    weight_every: int = WEIGHT_EVERY  # steps between the samples of "conn.weight"


def run_network(path: str | Path, steps: int | None = None, record: Iterable[str] = (),
                plot: str | Path | None = None, save: str | Path | None = None,
                network: str | None = None, allowed: Iterable[str | Path] = (),
                console: Console | None = None, weight_every: int | None = None,
                inputs: Iterable[str] = ()) -> RunResult:
    """Simulate `path`'s network (the first, or `network`) for `steps` steps (default: the
    file's) on the clock backend, its inputs from `inputs` ("NAME=FILE", snnc.inputs) or
    held at zero, recording the file's monitors and `record` (connections' weights every
    `weight_every` steps, default WEIGHT_EVERY); print the rates table to `console`, the
    progress bar to stderr; write `plot` and `save`."""
    console = console or Console(markup=False, highlight=False)
    outputs = [Path(p) for p in (plot, save) if p is not None]
    _check_suffix(plot, PLOT_SUFFIXES, "--plot")
    _check_suffix(save, SAVE_SUFFIXES, "--save")
    program, graphs = analyse(path, network, allowed)
    if not graphs:
        raise SnnError(f"{path} defines no network", hint="add `network NAME { ... }`")
    graph = graphs[0]
    check_targets(outputs, [Path(name) for name, _ in graph.graph["sources"]])
    if graph.graph["backend"] != "clock":
        console.print(f"{graph.graph['name']} is set to backend = {graph.graph['backend']}; "
                      "snnc run simulates it on the clock backend")
    net_class = compile_graph(program, graph, "clock")
    net = net_class(batch_size=1)
    steps = check_steps(net_class.steps if steps is None else steps)
    weight_every = check_weight_every(WEIGHT_EVERY if weight_every is None else weight_every)
    extra = extra_records(net, net_class.monitor_keys, record, spikes_of_all=plot is not None)
    check_monitor_memory(net, steps, extra, weight_every,
                         dense_spikes=save is not None and Path(save).suffix.lower() == ".npz")
    given = read_inputs(inputs, net_class.input_shapes, steps, net.like.dtype)
    zeros = zero_inputs({name: shape for name, shape in net_class.input_shapes.items()
                         if name not in given})
    if zeros:
        console.print(f"inputs {', '.join(zeros)} held at zero (give data with --input "
                      f"{next(iter(zeros))}=FILE.npy)")
    result = simulate(net, steps, extra, {**zeros, **given}, net_class.dt_ms, weight_every)
    console.print(rates_table(result, graph.graph["name"]))
    if plot is not None:
        write_plot(Path(plot), result, graph.graph["name"], spiking_nodes(net))
        console.print(f"wrote {printable(str(plot))}")
    if save is not None:
        write_monitors(Path(save), result)
        console.print(f"wrote {printable(str(save))}")
    return result


def _check_suffix(path: str | Path | None, suffixes: tuple[str, ...], option: str) -> None:
    """Refuse an output snnc cannot write before the run, not after it."""
    if path is not None and Path(path).suffix.lower() not in suffixes:
        raise SnnError(f"{option} {printable(str(path))}: not a file type snnc writes",
                       hint=f"end the name with {' or '.join(suffixes)}")


def check_weight_every(every: int) -> int:
    if not 1 <= every <= MAX_STEPS:
        raise SnnError(f"--weight-every {every}: a number of steps from 1 to {MAX_STEPS:,}")
    return every


def check_steps(steps: int) -> int:
    """`steps` when a run can have that many (the bound a file's `steps` has too)."""
    if not 1 <= steps <= MAX_STEPS:
        raise SnnError(f"--steps {steps}: a run has 1 to {MAX_STEPS:,} steps")
    return steps


# ------------------------------------------------------------------ what to record
def spiking_nodes(net) -> list[str]:
    """The nodes whose spikes a run counts and can record: encoders, then populations."""
    return [*net.encoders, *net.populations]


def variables_of(net, node: str) -> tuple[str, ...]:
    """What a run can record of `node`: a population's spikes and states, an encoder's
    spikes."""
    if node in net.populations:
        return ("spikes", *net.populations[node].state_names)
    return ("spikes",)


def extra_records(net, monitor_keys: Iterable[str], record: Iterable[str],
                  spikes_of_all: bool) -> tuple[str, ...]:
    """The `record` keys beyond the file's monitors, each checked to name a population
    (or encoder) and one of its variables; with `spikes_of_all` (a plot needs them) the
    spikes of every population and encoder too."""
    wanted = [check_record_key(net, key) for key in record]
    if spikes_of_all:
        wanted += [f"{name}.spikes" for name in spiking_nodes(net)]
    have = set(monitor_keys)
    return tuple(key for key in dict.fromkeys(wanted) if key not in have)


def check_record_key(net, key: str) -> str:
    """`key` when it is `pop.var` for a population of `net` and one of its variables
    (`spikes` or a state), `enc.spikes` for an encoder, or `conn.weight` for a connection;
    otherwise an SnnError that lists what exists."""
    if net.is_weight_key(key):
        return key
    name, dot, var = key.partition(".")
    nodes = spiking_nodes(net)
    if not dot:
        raise SnnError(f"--record {printable(key)}: expected POPULATION.VARIABLE",
                       hint=f"for example {nodes[-1] if nodes else 'pop'}.spikes")
    if name not in nodes and var == "weight":  # meant a connection's weights
        raise _about_record(key, unknown("connection", name, list(net.connections), None))
    if name not in nodes:
        raise _about_record(key, unknown("population", name, nodes, None))
    if var not in variables_of(net, name):
        raise _about_record(key, unknown("variable", var, variables_of(net, name), None,
                                         owner=name))
    return key


def _about_record(key: str, err: SnnError) -> SnnError:
    return SnnError(f"--record {printable(key)}: {err.message}", hint=err.hint)


def check_monitor_memory(net, steps: int, record: tuple[str, ...],
                         weight_every: int = WEIGHT_EVERY, dense_spikes: bool = False) -> None:
    """Refuse, before the first step, monitors that need more than SNNC_MAX_MEMORY: those
    of states and weights, and, with `dense_spikes` (a .npz file holds them so), the
    spikes at one byte a value; spikes kept as events are checked as they come."""
    need = (net.monitor_bytes(steps, record, weight_every, spike_dtype=torch.bool)
            if dense_spikes else net.monitor_bytes(steps, record, weight_every,
                                                   sparse_spikes=True))
    limit = max_memory_bytes()
    if need > limit:
        raise SnnError(f"the monitors of {steps:,} steps need {format_bytes(need)}, more than "
                       f"the limit of {format_bytes(limit)}",
                       hint="record fewer variables, run fewer steps (--steps N), or raise "
                       "SNNC_MAX_MEMORY (e.g. SNNC_MAX_MEMORY=64G)")


def zero_inputs(shapes: Mapping[str, tuple]) -> dict[str, GivenInput]:
    """Every input as zeros [1, *shape], held over the run."""
    return {name: GivenInput(torch.zeros(1, *shape), per_step=False)
            for name, shape in shapes.items()}


# ------------------------------------------------------------------ the simulation
def simulate(net, steps: int, record: tuple[str, ...], inputs: dict[str, GivenInput],
             dt_ms: float, weight_every: int = WEIGHT_EVERY) -> RunResult:
    """Run from the initial state in chunks, with a progress bar on stderr. Spikes are
    recorded as events (a sparse COO tensor [steps, B, *shape] per node, as Brian2's
    SpikeMonitor keeps them: memory in proportion to the spikes); the other monitors of
    the chunks are copied into tensors of the whole run as they come (a final concat
    would need twice the memory; the weights' few samples are joined at the end).
    Encoders' spikes, which net.spike_counts leaves out, are always recorded, to be
    counted."""
    net.reset()
    chunk = max(math.ceil(steps / 100), MIN_CHUNK_STEPS)
    kept = list(dict.fromkeys((*net.monitor_keys, *record)))
    encoder_keys = tuple(f"{name}.spikes" for name in net.encoders)
    spikes = SpikeChunks(steps, net.batch_size, dense_bytes=net.monitor_bytes(
        steps, record, weight_every, sparse_spikes=True))
    monitors: dict[str, torch.Tensor] = {}
    samples: dict[str, list[torch.Tensor]] = {}
    start = time.perf_counter()
    with _progress(dt_ms) as progress:
        task = progress.add_task("run", total=steps)
        for first in range(0, steps, chunk):
            n = min(chunk, steps - first)
            out = net.run(steps=n, record=(*record, *encoder_keys), weight_every=weight_every,
                          sparse_spikes=True,
                          **{name: given.chunk(first, n) for name, given in inputs.items()})
            for key, values in out.items():
                if values.is_sparse:
                    spikes.add(key, first, values)
                elif net.is_weight_key(key):
                    samples.setdefault(key, []).append(values)
                else:
                    if key not in monitors:
                        monitors[key] = values.new_empty((steps, *values.shape[1:]))
                    monitors[key][first:first + n] = values
            spikes.check_memory(first + n)
            progress.advance(task, n)
    monitors.update({key: torch.cat(parts) for key, parts in samples.items()})
    trains = spikes.tensors(net.like.dtype)
    monitors.update({key: trains[key] for key in kept if key in trains})
    counts = {**{name: torch.sparse.sum(trains[f"{name}.spikes"], 0).to_dense()
                 for name in net.encoders}, **net.spike_counts}
    return RunResult({key: monitors[key] for key in kept}, {name: counts[name] for name in
                                                             spiking_nodes(net)},
                     steps, net.batch_size, dt_ms, time.perf_counter() - start, weight_every)


class SpikeChunks:
    """The spike events of a run's chunks (each a sparse COO [n, B, *shape] from
    net.run(sparse_spikes=True)), joined into one sparse tensor per node at the end.
    Their memory grows with the spikes, so it is checked as they come: with the dense
    monitors (`dense_bytes`) it must stay within SNNC_MAX_MEMORY."""

    def __init__(self, steps: int, batch: int, dense_bytes: int):
        self.steps, self.batch, self.dense_bytes = steps, batch, dense_bytes
        self.parts: dict[str, list[torch.Tensor]] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.held = 0

    def add(self, key: str, first: int, chunk: torch.Tensor) -> None:
        """A chunk's events from the run's step `first` (its rows: step, b, *index)."""
        indices = chunk.indices().clone()
        indices[0] += first
        self.parts.setdefault(key, []).append(indices)
        self.shapes[key] = tuple(chunk.shape[2:])
        self.held += indices.numel() * indices.element_size()

    def check_memory(self, done: int) -> None:
        need, limit = self.dense_bytes + self.held, max_memory_bytes()
        if need > limit:
            raise SnnError(f"after {done:,} steps the monitors hold {format_bytes(need)} "
                           f"(spikes as events: {format_bytes(self.held)}), more than the "
                           f"limit of {format_bytes(limit)}",
                           hint="record fewer populations, run fewer steps (--steps N), or "
                           "raise SNNC_MAX_MEMORY (e.g. SNNC_MAX_MEMORY=64G)")

    def tensors(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """Each node's events of the whole run as a sparse COO tensor [steps, B, *shape];
        the chunks come in time order, each sorted, so the whole is coalesced."""
        return {key: spike_tensor(torch.cat(parts, dim=1),
                                  (self.steps, self.batch, *self.shapes[key]), dtype)
                for key, parts in self.parts.items()}


def _progress(dt_ms: float) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=None),
                    ModelTimeColumn(dt_ms), ThroughputColumn(dt_ms), TimeRemainingColumn(),
                    TextColumn("left"), console=Console(stderr=True))


class ModelTimeColumn(ProgressColumn):
    """Simulated time so far, of the whole run: `120 ms / 1.00 s`."""

    def __init__(self, dt_ms: float):
        super().__init__(table_column=Column(no_wrap=True))
        self.dt_ms = dt_ms

    def render(self, task: Task) -> Text:
        total = task.total or 0
        return Text(f"{model_time(task.completed * self.dt_ms)} / "
                    f"{model_time(total * self.dt_ms)}")


class ThroughputColumn(ProgressColumn):
    """How fast the model runs: simulated seconds per wall-clock second, and steps/s."""

    def __init__(self, dt_ms: float):
        super().__init__(table_column=Column(no_wrap=True))
        self.dt_ms = dt_ms

    def render(self, task: Task) -> Text:
        if not task.elapsed or not task.completed:
            return Text("")
        return Text(throughput(task.completed, task.elapsed, self.dt_ms))


def throughput(steps: float, wall_s: float, dt_ms: float) -> str:
    """`12.5x real time, 125,000 steps/s`: simulated seconds per wall-clock second."""
    speed = steps / wall_s
    return f"{speed * dt_ms / 1000:.3g}x real time, {speed:,.0f} steps/s"


def model_time(ms: float) -> str:
    """`250 ms`, `1.50 s`: model time in the unit that reads best."""
    return f"{ms / 1000:.3g} s" if ms >= 1000 else f"{ms:.3g} ms"


# ------------------------------------------------------------------ the report
def rates_table(result: RunResult, name: str) -> Table:
    """One row per population: neurons, spikes, mean rate (spikes / (neurons · B · steps
    · dt)) and the lowest and highest rate of one neuron, in Hz."""
    seconds = result.steps * result.dt_ms / 1000
    table = Table(title=f"{name}: {result.steps:,} steps of {result.dt_ms:g} ms "
                  f"({model_time(seconds * 1000)} of model time, batch {result.batch})",
                  title_justify="left", caption_justify="left",
                  caption=f"simulated in {result.wall_s:.3g} s: "
                  f"{throughput(result.steps, result.wall_s, result.dt_ms)}")
    for col in ("population", "neurons", "spikes", "mean rate (Hz)", "min (Hz)", "max (Hz)"):
        table.add_column(col, justify="left" if col == "population" else "right")
    for pop, counts in result.spike_counts.items():
        per_neuron = counts.double().sum(0).flatten() / (result.batch * seconds)
        table.add_row(pop, f"{per_neuron.numel():,}", f"{int(counts.sum()):,}",
                      f"{per_neuron.mean():.2f}", f"{per_neuron.min():.2f}",
                      f"{per_neuron.max():.2f}")
    return table


# ------------------------------------------------------------------ files
def write_plot(path: Path, result: RunResult, name: str, order: list[str]) -> None:
    """The run's figure (snnc.viz.plot_run), populations in `order` (the network's),
    connections' weights last, written atomically."""
    from snnc.viz import plot_run  # matplotlib only when a plot is asked for
    rank = {pop: i for i, pop in enumerate(order)}
    nodes = sorted((key for key in result.monitors if key.partition(".")[0] in rank),
                   key=lambda key: rank[key.partition(".")[0]])
    weights = {key: values for key, values in result.monitors.items() if key not in nodes}
    figure = plot_run({key: result.monitors[key] for key in nodes}, result.dt_ms,
                      title=f"{name}: {result.steps:,} steps of {result.dt_ms:g} ms",
                      weights=weights, weight_every=result.weight_every)
    suffix = path.suffix.lower().lstrip(".")
    write_atomically_with(path, lambda out: figure.savefig(out, format=suffix))


def write_monitors(path: Path, result: RunResult) -> None:
    """The monitors by key, with `dt_ms` and `steps`, written atomically: torch.save (.pt;
    spikes as the run keeps them, sparse COO tensors) or numpy.savez (.npz; spikes as
    dense arrays of bool)."""
    if path.suffix.lower() == ".pt":
        data = {**result.monitors, "dt_ms": result.dt_ms, "steps": result.steps}
        write_atomically_with(path, lambda out: torch.save(data, out))
    else:
        arrays = {key: dense_numpy(values) for key, values in result.monitors.items()}
        write_atomically_with(path, lambda out: np.savez(out, **arrays, dt_ms=result.dt_ms,
                                                         steps=result.steps))


def dense_numpy(values: torch.Tensor) -> np.ndarray:
    """A monitor as a numpy array: a sparse one of spikes as bool, True where a spike was
    (made without the float tensor of that size that to_dense() would need)."""
    if not values.is_sparse:
        return values.cpu().numpy()
    dense = np.zeros(values.shape, dtype=np.bool_)
    dense[tuple(values.indices().cpu().numpy())] = True
    return dense
