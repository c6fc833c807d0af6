"""A CUBA network of 100 000 neurons and 10⁸ synapses with per-synapse delays, built and
run 1 s on the clock backend (issue 10: "≤ 12 bytes per synapse with per-synapse delays;
a network of 100 000 neurons and 10⁸ synapses builds and runs 1 s on this machine").

    python benchmarks/large.py [--neurons 100000] [--p 0.01] [--seconds 1] [--chunk 1000]
                               [--delay 0.1,2] [--seed 1] [--threads N] [--save net.snn]

The network is samples/cuba.snn (Vogels & Abbott 2005, benchmark 2 of Brette et al. 2007)
scaled up: N neurons, 80 % excitatory and 20 % inhibitory, each pair connected with
probability p (default 10⁸ / N², so that about 10⁸ synapses exist: p = 0.01 for 10⁵
neurons), the weights scaled by 1 / (p·N) as Brette et al. scale them (CUBA's 1.62 and
-9 mV are for p·N = 80 inputs per neuron: we = 1.62 · 80 / (p·N)), so that the mean input
per neuron stays CUBA's (its fluctuations shrink as 1 / √(p·N): at p·N = 1000 the neurons
fire at about 2 Hz with a CV(ISI) of about 0.4, against CUBA's 5.6 Hz and 0.5); and with
a delay per synapse drawn from `delay uniform(a, b)` (default 0.1 to 2 ms, steps of
dt = 0.1 ms, so 1 to 20 steps). It runs --seconds (10 000 steps) in run() calls of --chunk
steps (the spike monitors of one call at a time, [chunk, 1, n] float32 each).

Printed, in one table: the time to compile the file (parse, check, budget, codegen), to
build the module (Net(): drawing the synapses, weights and delays), to build the compiled
loop (the C compiler, or its cache), and to run; the synapses; bytes per synapse of the
state_dict by kind (weights, indices, delays) and of everything the module holds (the
sparse ops' by-target index too); the budget's estimate (snnc.check.budget); the resident
memory after each phase and its peak in each (VmHWM, reset between phases where the
kernel allows), the process's peak (getrusage); one more run(1) call after the run, which
shows what a call of the loop costs besides its steps; firing rates, the CV of the ISIs
and the Fano factor of each population's spike count per ms (about 1: asynchronous).

Where the figures come from on a shared machine: nice the process and run nothing else.
"""
from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import reset_peak_rss  # noqa: E402  (benchmarks/memory.py)

DT_MS = 0.1
SYNAPSES = 10**8
# CUBA (samples/cuba.snn): its weights for p·N = 0.02 · 4000 = 80 inputs per neuron
CUBA_INPUTS, CUBA_WE, CUBA_WI = 80, 60 * 0.27 / 10, -20 * 4.5 / 10
INDEX_KEYS = ("offsets", "targets")


def network_text(neurons: int = 100_000, p: float | None = None, seed: int = 1,
                 delay_ms: tuple[float, float] = (0.1, 2.0), seconds: float = 1.0) -> str:
    """The .snn source of the scaled CUBA net (see the module's docstring)."""
    exc, p = round(0.8 * neurons), default_p(neurons) if p is None else p
    inh = neurons - exc
    scale = CUBA_INPUTS / (p * neurons)
    we, wi = CUBA_WE * scale, CUBA_WI * scale
    lif = ("LIF(tau = 20 ms, v_rest = -49, v_reset = -60, v_threshold = -50, "
           "decay_input = true, refractory = 5 ms, v_init = uniform(-60, -50))")
    delay = f"delay uniform({delay_ms[0]:g} ms, {delay_ms[1]:g} ms)"
    lines = [
        "# samples/cuba.snn scaled (benchmarks/large.py): weights ∝ 1 / (p·N).",
        f"network cuba_large {{\n    dt = {DT_MS} ms\n    steps = {round(seconds * 1000 / DT_MS)}",
        f"    backend = clock\n    seed = {seed}",
        f"    population exc[{exc}] = {lif}",
        f"    population inh[{inh}] = {lif}",
    ]
    for src, w, tau in (("exc", we, 5), ("inh", wi, 10)):
        for dst in ("exc", "inh"):
            lines.append(f"    connect {src} -> {dst} : sparse(p = {p:.6g}, w = {w:.6g}) "
                         f"{delay} via exp_current(tau = {tau} ms)")
    lines.append("    monitor exc.spikes, inh.spikes\n}\n")
    return "\n".join(lines)


def default_p(neurons: int) -> float:
    """p for about 10⁸ synapses among `neurons` (at most 1)."""
    return min(1.0, SYNAPSES / neurons**2)


# ------------------------------------------------------------------ memory
def _status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith(key))
    except (OSError, StopIteration):
        return None


def process_peak(phases: Phases) -> int:
    """The process's peak resident memory: getrusage's, which restarts with VmHWM where
    that is reset, so the largest of it and the phases' peaks."""
    peaks = [hwm for *_, hwm in phases.rows if hwm is not None]
    return max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, *peaks])


class Phases:
    """Time, resident memory after, and peak resident memory during each phase."""

    def __init__(self):
        self.rows: list[tuple[str, float, int | None, int | None]] = []
        self.resettable = reset_peak_rss()

    def run(self, name: str, work):
        if self.resettable:
            reset_peak_rss()
        t = time.perf_counter()
        result = work()
        elapsed = time.perf_counter() - t
        self.rows.append((name, elapsed, _status("VmRSS"),
                          _status("VmHWM") if self.resettable else None))
        return result


# ------------------------------------------------------------------ what the module holds
def bytes_by_kind(tensors: dict[str, torch.Tensor]) -> dict[str, int]:
    """Bytes of the connections' tensors by kind: weights, indices (the sparse ops'
    offsets and targets, and their by-target index where given), delays, other."""
    kinds = {"weights": 0, "indices": 0, "delays": 0, "other": 0}
    for key, tensor in tensors.items():
        if not key.startswith("connections."):
            continue
        leaf = key.rsplit(".", 1)[-1]
        kind = ("weights" if leaf == "weight" else "delays" if leaf == "delays"
                else "indices" if leaf in INDEX_KEYS or leaf in (
                    "by_target", "target_offsets", "target_sources") else "other")
        kinds[kind] += tensor.numel() * tensor.element_size()
    return kinds


def held_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, saved or not (the by-target index is not)."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


# ------------------------------------------------------------------ spikes
class Spikes:
    """The spikes of one population, chunk by chunk: their steps and neurons."""

    def __init__(self, size: int):
        self.size, self.steps, self.neurons = size, [], []

    def add(self, spikes: torch.Tensor, start: int) -> None:
        step, neuron = spikes.reshape(spikes.shape[0], -1).nonzero(as_tuple=True)
        self.steps.append(step + start)
        self.neurons.append(neuron)

    def rate(self, seconds: float) -> float:
        return sum(len(n) for n in self.neurons) / (self.size * seconds)

    def fano(self, steps: int, bin_steps: int = 10) -> float:
        """Fano factor of the population's spike count in bins of `bin_steps` (1 ms):
        about 1 for asynchronous firing, far more where the neurons fire together."""
        if not self.steps:
            return math.nan
        counts = torch.bincount(torch.cat(self.steps) // bin_steps,
                                minlength=steps // bin_steps)[:steps // bin_steps].double()
        return float(counts.var() / counts.mean()) if counts.mean() > 0 else math.nan

    def cv(self) -> float:
        """Mean CV(ISI) over neurons with at least 2 ISIs."""
        if not self.neurons:
            return math.nan
        neuron = torch.cat(self.neurons)
        order = torch.sort(neuron, stable=True).indices  # each neuron's spikes in time order
        neuron, step = neuron[order], torch.cat(self.steps)[order].double()
        same = neuron[1:] == neuron[:-1]
        isi, owner = (step[1:] - step[:-1])[same], neuron[1:][same]
        count = torch.bincount(owner, minlength=self.size).double()
        total = torch.zeros(self.size, dtype=torch.float64).index_add_(0, owner, isi)
        squares = torch.zeros(self.size, dtype=torch.float64).index_add_(0, owner, isi**2)
        ok = count >= 2
        if not ok.any():
            return math.nan
        mean = total[ok] / count[ok]
        std = (squares[ok] / count[ok] - mean**2).clamp(min=0).sqrt()
        return float((std / mean).mean())


# ------------------------------------------------------------------ the run
def measure(neurons: int, p: float | None, seconds: float, chunk: int, seed: int,
            delay_ms: tuple[float, float], save: Path | None, console: Console) -> dict:
    from snnc.check import check_program
    from snnc.check.budget import estimate_memory
    from snnc.compiler import compile as snnc_compile
    from snnc.frontend.loader import load
    from snnc.runtime import compiled

    text = network_text(neurons, p, seed, delay_ms, seconds)
    phases = Phases()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(save) if save else Path(folder) / "cuba_large.snn"
        path.write_text(text, encoding="utf-8")
        [network] = check_program(load(path))
        estimate = estimate_memory(network)
        console.print(f"compiling {path.name} ...")
        cls = phases.run("compile (parse, check, codegen)", lambda: snnc_compile(path))
    console.print("building Net() ...")
    model = phases.run("build Net() (draw synapses, weights, delays)",
                       lambda: cls(batch_size=1))
    console.print("building the compiled loop ...")
    loop = phases.run("compiled loop (C build or cache)", lambda: compiled.loop_for(model))
    steps = round(seconds * 1000 / DT_MS)
    spikes = {name: Spikes(math.prod(model.shapes[name])) for name in ("exc", "inh")}
    chunk_times: list[float] = []

    def run_all():
        done = 0
        while done < steps:
            n = min(chunk, steps - done)
            t = time.perf_counter()
            monitors = model.run(n)
            chunk_times.append(time.perf_counter() - t)
            for name, counter in spikes.items():
                counter.add(monitors[f"{name}.spikes"], done)
            del monitors
            done += n
            console.print(f"  {done} / {steps} steps, {sum(chunk_times):.1f} s")

    console.print(f"running {steps} steps in chunks of {chunk} ...")
    phases.run(f"run {seconds:g} s ({steps} steps)", run_all)
    # one more call of one step: what every call costs besides its steps (the loop copies
    # the delays and sorts each source's synapses by delay at each call)
    phases.run("one more run(1): a call's own cost", lambda: model.run(1))
    state = model.state_dict()
    synapses = sum(t.numel() for k, t in state.items()
                   if k.startswith("connections.") and k.endswith(".weight"))
    return {"neurons": neurons, "p": p if p is not None else default_p(neurons),
            "synapses": synapses, "steps": steps, "seconds": seconds, "chunk": chunk,
            "phases": phases.rows, "resettable": phases.resettable, "loop": loop is not None,
            "chunk_times": chunk_times, "state": bytes_by_kind(state),
            "held": bytes_by_kind(held_tensors(model)), "estimate": estimate,
            "delays_dtype": str(next(t.dtype for k, t in state.items()
                                     if k.endswith(".delays"))),
            "rates": {name: s.rate(seconds) for name, s in spikes.items()},
            "cv": {name: s.cv() for name, s in spikes.items()},
            "fano": {name: s.fano(steps) for name, s in spikes.items()},
            "peak": process_peak(phases), "threads": torch.get_num_threads()}


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**30:.2f} GiB"


def report(r: dict, console: Console) -> None:
    from snnc.limits import format_bytes, max_memory_bytes

    table = Table(title=f"CUBA, {r['neurons']:,} neurons, p = {r['p']:g}, "
                        f"{r['synapses']:,} synapses, per-synapse delays, clock backend"
                        f" ({r['threads']} threads)")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_column("resident after", justify="right")
    table.add_column("peak during", justify="right")
    for name, elapsed, rss, hwm in r["phases"]:
        table.add_row(name, f"{elapsed:.2f} s", _gib(rss), _gib(hwm))
    if not r["loop"]:
        table.add_row("[red]the compiled loop did not run: PyTorch path[/red]", "", "", "")
    times = r["chunk_times"]
    if times:
        table.add_row(f"run() calls of {r['chunk']} steps", f"{min(times):.2f} .. "
                      f"{max(times):.2f} s", "", "")
        table.add_row("run time per simulated second", f"{sum(times) / r['seconds']:.2f} s",
                      "", "")
    table.add_row("process peak (getrusage, phases)", _gib(r["peak"]), "", "")
    table.add_section()
    s = r["synapses"]
    for title, kinds in (("state_dict", r["state"]), ("held (+ by-target index)", r["held"])):
        per = {k: v / s for k, v in kinds.items()}
        table.add_row(f"{title}: bytes / synapse", f"{sum(per.values()):.2f}", "", "")
        table.add_row("  weights / indices / delays / other",
                      " / ".join(f"{per[k]:.2f}" for k in ("weights", "indices", "delays",
                                                            "other")), "", "")
    table.add_row("delays stored as", r["delays_dtype"].removeprefix("torch."), "", "")
    e = r["estimate"]
    table.add_row("budget's estimate (kept / total)",
                  f"{format_bytes(e.kept)} / {format_bytes(e.total)}",
                  f"limit {format_bytes(max_memory_bytes())}", "")
    for part in e.largest(3):
        table.add_row(f"  {part.what} ({part.life})", format_bytes(part.bytes), "", "")
    table.add_section()
    for name in ("exc", "inh"):
        table.add_row(f"rate {name}", f"{r['rates'][name]:.2f} Hz", "", "")
        table.add_row(f"CV(ISI) {name}", f"{r['cv'][name]:.2f}", "", "")
        table.add_row(f"Fano factor of {name}'s count per ms", f"{r['fano'][name]:.2f}", "",
                      "")
    console.print(table)
    if not r["resettable"]:
        console.print("(/proc/self/clear_refs is not writable here: no per-phase peaks)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=100_000)
    parser.add_argument("--p", type=float, default=None,
                        help="connection probability (default: 10^8 synapses in all)")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--chunk", type=int, default=1000, help="steps per run() call")
    parser.add_argument("--delay", default="0.1,2", help="per-synapse delays, ms: low,high")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--save", type=Path, default=None, help="keep the .snn file here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    low, high = (float(v) for v in args.delay.split(","))
    console = Console(width=max(Console().width, 110))
    result = measure(args.neurons, args.p, args.seconds, args.chunk, args.seed, (low, high),
                     args.save, console)
    report(result, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
