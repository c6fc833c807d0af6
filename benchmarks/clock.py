"""snnc's clock backend against Brian2 2.9.0 on the same nets in the same run (issue 10):
CUBA (samples/cuba.snn, 1 s), COBA (samples/coba.snn where it exists, 1 s) and
Song-Miller-Abbott STDP (samples/song_stdp.snn, 100 s), each on Brian2's C++ standalone
and cython runtime targets (numpy too for CUBA) and on snnc, with one table of loop time,
whole-process time, bytes per synapse and rates, and the ratios to Brian2 standalone.

    python benchmarks/clock.py [--nets cuba,coba,song] [--duration 1] [--song-duration 100]
                               [--targets cpp_standalone,cython,numpy] [--seed 1]
                               [--threads 1] [--quick] [--save rows.json] [--markdown]
    python benchmarks/clock.py --load rows.json --markdown   # the table again

Nothing is installed at run time: Brian2 is the `bench` extra (brian2==2.9.0); where it
does not import, its rows say why. Every engine runs in a subprocess of its own (the same
interpreter), one net at a time, so that "process" is the wall time of a fresh process
that imports, builds and runs the net, and nothing it built is shared with another row:

- Brian2 (benchmarks/brian2_nets.py): "loop" is Brian2's own time of the simulation loop
  (device._last_run_time: the standalone binary's main loop, or the runtime targets' loop
  over their code objects without code generation and compilation). Its builds (the
  standalone project, cython's extension cache) go to a temporary directory that is
  removed at the end, so each cython row compiles cold, as a first use does.
- snnc: `snnc.compiler.compile(sample, backend="clock")`, `Net(batch_size=1)` after
  `torch.manual_seed(seed)`, then `run(steps)` in chunks of --chunk steps (the monitors of
  one chunk at a time; the state carries on); "loop" is the time of the run calls, after
  a throwaway instance has built the compiled loop (Brian2's loop time leaves its build
  out too), the least of --repeat runs from the same seed (Brian2 standalone's binary
  runs as often; "process" leaves the repeats out on both sides). Its kernel cache
  ($SNNC_CACHE) is a fresh temporary directory, so "process" includes building every
  native kernel. Two rows: spike monitors dense (run()'s default,
  [steps, B, n] floats) and as events (`run(sparse_spikes=True)`, as Brian2's
  SpikeMonitor records them). The note gives snnc's compile time and the compiled loop's
  first and cached builds, and for Song the loop time without `learn`. Where the sample
  or the backend is missing the row says "not available: <the error>".
- snnc run (the command): `python -m snnc run SAMPLE --steps N` as a user types it
  (the file's monitors, spikes as events, the rates table, no seed given); "process" is
  its first run, with an empty kernel cache; then --repeat runs with the cache filled:
  "loop" is their least "simulated in" time, the note their whole-process range.

Bytes per synapse: Brian2's per-synapse arrays (weights w, indices _synaptic_pre/post,
delays; CUBA's and COBA's constant weights store none); snnc's state_dict bytes over its
synapse count (the elements of the connections' weights). "w+i+d" is weights + indices +
delays; the table's ratio column compares those. Rates are spikes / (neurons x duration);
CV is the mean CV(ISI) over neurons with at least 2 ISIs, exc and inh pooled.

Torch and Brian2 standalone both run on one thread by default (--threads sets torch's;
Brian2 standalone is built without OpenMP).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import brian2_nets  # noqa: E402  (numpy only at import; Brian2 is imported when run)

SAMPLES = {"cuba": ROOT / "samples" / "cuba.snn", "coba": ROOT / "samples" / "coba.snn",
           "song": ROOT / "samples" / "song_stdp.snn"}
POPS = {"cuba": {"exc": 3200, "inh": 800}, "coba": {"exc": 3200, "inh": 800},
        "song": {"post": 1}}
SONG_CONNECTION = "inputs->post"
BRIAN2_TAG, SNNC_TAG, ERROR_TAG = "BRIAN2_RESULT ", "CLOCK_RESULT ", "CLOCK_ERROR "
STANDALONE = "cpp_standalone"
SNNC = "snnc clock"
SNNC_SPARSE = "snnc clock, sparse spikes"  # run(sparse_spikes=True): SpikeMonitor-like events
SNNC_RUN = "snnc run (the command)"
SAMPLE_DT_MS = 0.1  # every benchmarked sample's dt: `snnc run --steps` = duration / dt


# --- the snnc worker (runs in its own process) ------------------------------------------

def snnc_worker(net: str, duration: float, seed: int, chunk: int, sparse: bool,
                repeat: int) -> dict:
    import torch

    from snnc.compiler import compile as snnc_compile

    t0 = time.perf_counter()
    cls = snnc_compile(SAMPLES[net], backend="clock")
    compile_s = time.perf_counter() - t0
    t_again = time.perf_counter()
    compile_cached_s = _compile_again(net)
    again = time.perf_counter() - t_again  # measuring again: left out of "process"
    t0 += again
    builds = _loop_builds(cls(batch_size=1))
    cls(batch_size=1).run(2)  # builds what else a first run builds, as Brian2 builds first
    torch.manual_seed(seed)
    model = cls(batch_size=1)
    build = time.perf_counter() - t0
    dt_ms = float(getattr(model, "dt_ms", brian2_nets.DT_MS))
    steps = int(round(duration * 1000.0 / dt_ms))
    sizes = POPS[net]
    spikes, loop = _run_chunks(model, steps, chunk, sizes, dt_ms, sparse)
    t_repeats = time.perf_counter()
    loop = min(loop, _least_loop(cls, repeat - 1, seed, steps, chunk, sizes, dt_ms, sparse))
    again += time.perf_counter() - t_repeats
    state = model.state_dict()
    kinds = {"weights": 0, "indices": 0, "delays": 0, "other": 0}
    synapses = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        leaf = key.rsplit(".", 1)[-1]
        if key.startswith("connections.") and leaf == "weight":
            synapses += tensor.numel()
            kinds["weights"] += nbytes
        elif "delay" in leaf:
            kinds["delays"] += nbytes
        elif leaf in ("offsets", "targets", "indices", "sources", "index", "rows", "cols"):
            kinds["indices"] += nbytes
        else:
            kinds["other"] += nbytes
    total_bytes = sum(kinds.values())
    out = {
        "engine": SNNC_SPARSE if sparse else SNNC, "net": net, "seed": seed,
        "duration_s": duration, "dt_ms": dt_ms,
        "loop_s": loop, "build_s": build, "compile_s": compile_s,
        "compile_cached_s": compile_cached_s, **builds,
        "again_s": again,
        "synapses": synapses,
        "state_dict_bytes": total_bytes,
        "synapse_bytes": {k: (v / synapses if synapses else math.nan) for k, v in kinds.items()},
        "bytes_per_synapse_all": total_bytes / synapses if synapses else math.nan,
        "rates_hz": {pop: brian2_nets.firing_rate(t, sizes[pop], duration)
                     for pop, (t, _) in spikes.items()},
        "cv_isi": _pooled_cv(spikes, sizes),
        "threads": torch.get_num_threads(),
    }
    if net == "song":
        w = model.connection(SONG_CONNECTION).weight.detach().cpu().double().numpy().ravel()
        out["extra"] = _song_weights(w)
        t_static = time.perf_counter()
        out["static_loop_s"] = _static_song_loop(steps, chunk, seed, dt_ms, sparse, repeat)
        out["again_s"] += time.perf_counter() - t_static
    return out


def _run_chunks(model, steps: int, chunk: int, sizes: dict, dt_ms: float, sparse: bool):
    """run(steps) in chunks (spike monitors dense or, `sparse`, as events): each
    population's (spike times in s, neuron) and the time of the run() calls alone."""
    times = {pop: [] for pop in sizes}
    index = {pop: [] for pop in sizes}
    loop, done = 0.0, 0
    while done < steps:
        n = min(chunk, steps - done)
        t = time.perf_counter()
        monitors = model.run(n, sparse_spikes=sparse)
        loop += time.perf_counter() - t
        for pop in sizes:
            spikes = monitors[f"{pop}.spikes"]  # batch 1
            if sparse:
                step, neuron = spikes.indices()[0].numpy(), spikes.indices()[2].numpy()
            else:
                step, neuron = np.nonzero(spikes.reshape(n, -1).detach().cpu().numpy())
            times[pop].append((done + step) * dt_ms / 1000.0)
            index[pop].append(neuron)
        del monitors
        done += n
    spikes = {pop: (np.concatenate(times[pop]), np.concatenate(index[pop])) for pop in sizes}
    return spikes, loop


def _compile_again(net: str) -> float:
    """The compile time in a later process, after its imports: the grammar's tables and
    the templates' bytecode come from the cache that this process's compile filled."""
    code = ("import sys, time; import torch; from snnc.compiler import compile as c; "
            "t = time.perf_counter(); c(sys.argv[1], backend='clock'); "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code, str(SAMPLES[net])], check=True,
                         capture_output=True, text=True, cwd=str(ROOT))
    return float(out.stdout.split()[-1])


def _loop_builds(sim) -> dict:
    """The compiled loop's first build (this worker's kernel cache is new) and a build
    found in the cache (a new process's), in seconds."""
    from snnc.runtime import compiled, native

    out = {}
    for key in ("loop_build_s", "loop_cached_s"):
        compiled._loop.cache_clear()  # as a fresh process: only the disk cache remains
        native.build.cache_clear()
        t = time.perf_counter()
        if compiled.loop_for(sim) is None:
            raise RuntimeError("the compiled loop did not build")
        out[key] = time.perf_counter() - t
    return out


def _static_song_loop(steps: int, chunk: int, seed: int, dt_ms: float, sparse: bool,
                      repeat: int) -> float:
    """The loop time of Song's net without `learn` (the sample with its learn clause cut
    out): what plasticity costs is the ratio of the two."""
    import torch

    from snnc.compiler import compile as snnc_compile

    text = SAMPLES["song"].read_text()
    start = text.index("        learn stdp(")
    end = text.index(")", text.index("w_max", start)) + 1
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "song_static.snn"
        path.write_text(text[:start] + text[end:])
        cls = snnc_compile(path, backend="clock")
    cls(batch_size=1).run(2)
    return _least_loop(cls, repeat, seed, steps, chunk, POPS["song"], dt_ms, sparse)


def _least_loop(cls, repeat: int, seed: int, steps: int, chunk: int, sizes: dict,
                dt_ms: float, sparse: bool) -> float:
    """The least loop time of `repeat` runs of a new `cls(batch_size=1)` from `seed`
    (inf for none)."""
    import torch

    loops = [math.inf]
    for _ in range(repeat):
        torch.manual_seed(seed)
        loops.append(_run_chunks(cls(batch_size=1), steps, chunk, sizes, dt_ms, sparse)[1])
    return min(loops)


def _pooled_cv(spikes: dict, sizes: dict) -> float:
    t, i, offset = [], [], 0
    for pop, n in sizes.items():
        t.append(spikes[pop][0])
        i.append(spikes[pop][1] + offset)
        offset += n
    return brian2_nets.cv_isi(np.concatenate(t), np.concatenate(i), offset)


def _song_weights(w: np.ndarray) -> dict:
    gmax = brian2_nets.SONG_GMAX
    hist, _ = np.histogram(w, bins=brian2_nets.SONG_BINS, range=(0.0, gmax))
    return {"hist": hist.tolist(), "mean_w_over_gmax": float(w.mean() / gmax),
            "frac_below_0.1_gmax": float(np.mean(w < 0.1 * gmax)),
            "frac_above_0.9_gmax": float(np.mean(w > 0.9 * gmax))}


# --- running the rows -------------------------------------------------------------------

def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _subprocess(cmd: list[str], tag: str, timeout: float, env: dict) -> dict:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith(tag):
            result = json.loads(line[len(tag):])
            # the process as it runs once: what the worker measured again left out
            result["process_s"] = wall - result.get("again_s", 0.0)
            return result
        if line.startswith(ERROR_TAG):
            return {"error": line[len(ERROR_TAG):]}
    return {"error": _last_line(proc.stderr or proc.stdout)
            + (f" (exit {proc.returncode})" if proc.returncode else "")}


def brian2_row(net: str, target: str, seed: int, duration: float, build_root: Path,
               timeout: float, env: dict, repeat: int) -> dict:
    build = build_root / f"{net}_{target}"
    cmd = [sys.executable, str(HERE / "brian2_nets.py"), "--net", net, "--target", target,
           "--seed", str(seed), "--duration", str(duration), "--build-dir", str(build),
           "--json", "--repeat", str(repeat)]
    row = _subprocess(cmd, BRIAN2_TAG, timeout, env)
    shutil.rmtree(build, ignore_errors=True)
    row["engine"] = f"brian2 {target}"
    if "error" not in row:
        row["cv_isi"] = row["cv_isi_pooled"]
    return row


def snnc_row(net: str, seed: int, duration: float, threads: int, chunk: int, timeout: float,
             env: dict, build_root: Path, sparse: bool, repeat: int) -> dict:
    engine = SNNC_SPARSE if sparse else SNNC
    if not SAMPLES[net].exists():
        return {"engine": engine,
                "error": f"{SAMPLES[net].relative_to(ROOT)} does not exist"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--nets", net,
           "--seed", str(seed), "--duration", str(duration), "--song-duration",
           str(duration), "--threads", str(threads), "--chunk", str(chunk),
           "--repeat", str(repeat),
           *(["--sparse-spikes"] if sparse else [])]
    cache = build_root / f"snnc_{net}"  # snnc's kernel cache, cold as Brian2's builds
    row = _subprocess(cmd, SNNC_TAG, timeout, dict(env, SNNC_CACHE=str(cache)))
    shutil.rmtree(cache, ignore_errors=True)
    row["engine"] = engine
    return row


def snnc_command_row(net: str, duration: float, timeout: float, env: dict,
                     build_root: Path, repeat: int) -> dict:
    """`python -m snnc run SAMPLE --steps N` as a user runs it: "process" is the wall time
    of the first run, with an empty kernel cache (as the other rows'); then `repeat` runs
    with the cache filled, whose least "simulated in" time is "loop" and whose range the
    note gives. Rates are the rates table's means (the file sets no seed: every run draws
    its own network)."""
    if not SAMPLES[net].exists():
        return {"engine": SNNC_RUN, "error": f"{SAMPLES[net].relative_to(ROOT)} does not exist"}
    steps = round(duration * 1000 / SAMPLE_DT_MS)
    cmd = [sys.executable, "-m", "snnc", "run", str(SAMPLES[net]), "--steps", str(steps)]
    cache = build_root / f"snnc_run_{net}"
    env = dict(env, SNNC_CACHE=str(cache))
    runs = []
    for _ in range(1 + repeat):
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env=env, cwd=str(ROOT))
        except subprocess.TimeoutExpired:
            return {"engine": SNNC_RUN, "error": f"timed out after {timeout:.0f} s"}
        if proc.returncode:
            return {"engine": SNNC_RUN, "error": _last_line(proc.stderr or proc.stdout)
                    + f" (exit {proc.returncode})"}
        runs.append((time.perf_counter() - t0, proc.stdout))
    shutil.rmtree(cache, ignore_errors=True)
    if f"steps of {SAMPLE_DT_MS:g} ms" not in runs[0][1]:
        return {"engine": SNNC_RUN, "error": f"the sample's dt is not {SAMPLE_DT_MS:g} ms"}
    warm = [wall for wall, _ in runs[1:]]
    return {"engine": SNNC_RUN, "loop_s": min(_simulated_s(out) for _, out in runs[1:]),
            "process_s": runs[0][0], "warm_process_s": [min(warm), max(warm)],
            "rates_hz": _table_rates(runs[0][1], POPS[net]), "cv_isi": None,
            "duration_s": duration}


def _simulated_s(stdout: str) -> float:
    """The simulation's time in snnc run's caption: `simulated in 0.376 s: ...`."""
    caption = next(line for line in stdout.splitlines() if "simulated in" in line)
    return float(caption.split("simulated in", 1)[1].split()[0])


def _table_rates(stdout: str, pops: dict) -> dict:
    """The mean rate (Hz) of each of `pops` in snnc run's rates table."""
    rates = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 6 and cells[0] in pops:
            rates[cells[0]] = float(cells[3])
    return rates


# --- the table --------------------------------------------------------------------------

def _wid(row: dict) -> float:
    b = row.get("synapse_bytes") or {}
    return sum(b.get(k, 0.0) for k in ("weights", "indices", "delays")) if b else math.nan


def _ratio(a, b) -> str:
    if a is None or b is None or not b or any(isinstance(x, float) and math.isnan(x)
                                                   for x in (a, b)):
        return "-"
    return f"{a / b:.2f}"


def _fmt(x, spec=".3f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, spec)


COLUMNS = ("net", "engine", "loop s", "÷", "process s", "÷", "B/syn w+i+d", "÷", "rates Hz",
           "CV(ISI)", "note")


def table_rows(results: dict[str, list[dict]]) -> list[tuple[str, ...]]:
    out = []
    for net, rows in results.items():
        base = next((r for r in rows if r["engine"] == f"brian2 {STANDALONE}"
                     and "error" not in r), None)
        for r in rows:
            if "error" in r:
                out.append((net, r["engine"], *["-"] * 8, f"not available: {r['error']}"))
                continue
            rates = "/".join(f"{v:.2f}" for v in r["rates_hz"].values())
            if r["engine"] == SNNC_RUN:
                low, high = r["warm_process_s"]
                out.append((net, r["engine"], _fmt(r["loop_s"]),
                            _ratio(r["loop_s"], base and base["loop_s"]),
                            _fmt(r["process_s"], ".1f"),
                            _ratio(r["process_s"], base and base.get("process_s")),
                            "-", "-", rates, "-",
                            f"{r['duration_s']:g} s, unseeded, spikes as events; "
                            f"with the kernel cache filled {low:.2f}-{high:.2f} s"))
                continue
            note = f"{r['duration_s']:g} s, {r['synapses']} syn"
            if net == "song" and "extra" in r:
                e = r["extra"]
                note += (f", w<0.1gmax {e['frac_below_0.1_gmax']:.0%},"
                         f" w>0.9gmax {e['frac_above_0.9_gmax']:.0%}")
            if r["engine"] in (SNNC, SNNC_SPARSE):
                note += f", state_dict {r['bytes_per_synapse_all']:.2f} B/syn"
                if "compile_s" in r:
                    cached = r.get("compile_cached_s")
                    note += (f", compile {r['compile_s']:.2f} s"
                             + (f" (cached {cached:.2f} s)" if cached is not None else "")
                             + f", loop build {r['loop_build_s']:.2f} s (cached "
                             f"{r['loop_cached_s']:.3f} s)")
                if r.get("static_loop_s"):
                    note += (f", without learn {r['static_loop_s']:.3f} s: plasticity "
                             f"x{r['loop_s'] / r['static_loop_s']:.2f}")
            out.append((
                net, r["engine"], _fmt(r["loop_s"]),
                _ratio(r["loop_s"], base and base["loop_s"]),
                _fmt(r.get("process_s"), ".1f"),
                _ratio(r.get("process_s"), base and base.get("process_s")),
                _fmt(_wid(r), ".2f"), _ratio(_wid(r), base and _wid(base)), rates,
                _fmt(r.get("cv_isi")), note))
    return out


def reference_line(reference: dict) -> str:
    s = reference["summary"]
    return (f"Brian2 CUBA reference ({reference['target']}, {len(reference['seeds'])} seeds, "
            f"{reference['duration_s']:g} s): exc {s['exc_hz']['mean']:.2f} ± "
            f"{s['exc_hz']['std']:.2f} Hz, inh {s['inh_hz']['mean']:.2f} ± "
            f"{s['inh_hz']['std']:.2f} Hz, CV(ISI) {s['cv_isi_all']['mean']:.3f} ± "
            f"{s['cv_isi_all']['std']:.3f} (benchmarks/reference/cuba_brian2.json)")


def render(results: dict[str, list[dict]], reference: dict | None,
           markdown: bool = False) -> None:
    rows = table_rows(results)
    title = "snnc clock backend vs Brian2 2.9.0 (÷: the row over Brian2 standalone)"
    if markdown:
        print(f"{title}\n")
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "|".join("---" if i < 2 or i == len(COLUMNS) - 1 else "---:"
                             for i in range(len(COLUMNS))) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        if reference:
            print(f"\n{reference_line(reference)}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="left" if i < 2 or i == len(COLUMNS) - 1 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    if reference:
        console.print(reference_line(reference))


# --- command line -----------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", default="cuba,coba,song",
                    help="comma-separated, of cuba, coba, song")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds simulated for cuba and coba (default 1; --quick 0.2)")
    ap.add_argument("--song-duration", type=float, default=None,
                    help="seconds simulated for song (default 100; --quick 5)")
    ap.add_argument("--targets", default=None,
                    help="Brian2 targets (default cpp_standalone,cython,numpy; numpy runs "
                         "for cuba only; --quick: cpp_standalone)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for snnc")
    ap.add_argument("--chunk", type=int, default=10_000,
                    help="snnc steps per run() call (default: CUBA's and COBA's second in "
                         "one, as Brian2 runs it)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="loops of snnc and of Brian2 standalone run this often (from the "
                         "same seed); the least time counts (cython and numpy run once)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per row")
    ap.add_argument("--quick", action="store_true",
                    help="short runs, Brian2 standalone only: a smoke test of the harness")
    ap.add_argument("--no-snnc", action="store_true", help="Brian2 rows only")
    ap.add_argument("--save", default=None, help="write all rows as JSON here")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--load", default=None,
                    help="render the rows of an earlier --save instead of running")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sparse-spikes", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    repeat = max(1, args.repeat)

    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    unknown = [n for n in nets if n not in POPS]
    if unknown:
        ap.error(f"unknown nets {unknown}; known: {', '.join(POPS)}")
    duration = args.duration if args.duration is not None else (0.2 if args.quick else 1.0)
    song_duration = (args.song_duration if args.song_duration is not None
                     else (5.0 if args.quick else 100.0))

    if args.worker:
        net = nets[0]
        try:
            import torch
            torch.set_num_threads(args.threads)
            result = snnc_worker(net, song_duration if net == "song" else duration,
                                 args.seed, args.chunk, args.sparse_spikes,
                                 repeat)
        except Exception as exc:  # reported as the row's "not available: ..."
            traceback.print_exc()
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())
            print(ERROR_TAG + msg, flush=True)
            return 1
        print(SNNC_TAG + json.dumps(result), flush=True)
        return 0

    ref_path = HERE / "reference" / "cuba_brian2.json"
    reference = json.loads(ref_path.read_text()) if ref_path.exists() else None
    if args.load:
        results = json.loads(Path(args.load).read_text())
        render(results, reference if "cuba" in results else None, args.markdown)
        return 0

    if args.targets is not None:
        targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    else:
        targets = [STANDALONE] if args.quick else [STANDALONE, "cython", "numpy"]
    bad = [t for t in targets if t not in brian2_nets.TARGETS]
    if bad:
        ap.error(f"unknown Brian2 targets {bad}; known: {', '.join(brian2_nets.TARGETS)}")

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    results: dict[str, list[dict]] = {}
    build_root = Path(tempfile.mkdtemp(prefix="snnc_clock_bench_"))
    try:
        for net in nets:
            d = song_duration if net == "song" else duration
            rows = []
            for target in targets:
                if target == "numpy" and net != "cuba":
                    continue
                print(f"[{net}] brian2 {target}, {d:g} s ...", file=sys.stderr, flush=True)
                rows.append(brian2_row(net, target, args.seed, d, build_root, args.timeout,
                                       env, repeat))
            for sparse in () if args.no_snnc else (False, True):
                print(f"[{net}] {SNNC_SPARSE if sparse else SNNC}, {d:g} s ...",
                      file=sys.stderr, flush=True)
                rows.append(snnc_row(net, args.seed, d, args.threads, args.chunk,
                                     args.timeout, env, build_root, sparse,
                                     repeat))
            if not args.no_snnc:
                print(f"[{net}] {SNNC_RUN}, {d:g} s ...", file=sys.stderr, flush=True)
                rows.append(snnc_command_row(net, d, args.timeout, env, build_root, repeat))
            results[net] = rows
    finally:
        shutil.rmtree(build_root, ignore_errors=True)

    render(results, reference if "cuba" in nets else None, args.markdown)
    if args.save:
        Path(args.save).write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
