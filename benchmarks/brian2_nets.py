"""Brian2 2.9.0 versions of the nets that snnc's clock backend is measured against: CUBA,
COBA and Song-Miller-Abbott STDP, each a function of (target, seed, duration, build_dir)
that returns the spikes per population, Brian2's own loop time and the synapse arrays.

Written from Brian2's documented examples (equations, parameters and integration methods
as there; only the changes named below):

- cuba(): examples/CUBA.py of Brian2 2.9.0, the parameters of samples/cuba.snn (they are
  the example's): taum 20 ms, taue 5 ms, taui 10 ms, Vt -50 mV, Vr -60 mV, El -49 mV,
  we = 60*0.27/10 mV, wi = -20*4.5/10 mV, refractory 5 ms, v = Vr + rand()*(Vt - Vr),
  Ce from i < 3200 and Ci from i >= 3200, each p = 0.02, method 'exact' (`method="euler"`
  gives the forward Euler step that snnc integrates with).
- coba(): Brian2 ships no LIF COBA example (examples/COBAHH.py is benchmark 3, Hodgkin-
  Huxley). This is benchmark 1 of Brette et al. (2007) in the form of Brian 1's
  examples/misc/COBA.py and of the published Brian2 COBA benchmarks: conductances in units
  of the leak conductance, dv/dt = (ge (Ee - v) + gi (Ei - v) - (v - El) + I) / taum
  (unless refractory), Ee 0 mV, Ei -80 mV, El -60 mV, Vt -50 mV, Vr -60 mV, we = 6/10,
  wi = 67/10, taue 5 ms, taui 10 ms, refractory 5 ms, a constant drive I = 20 mV that
  keeps the network active without an external stimulus, forward Euler. v starts as in
  cuba() (uniform in [Vr, Vt]; `v_init="normal"` gives the N(-55 mV, 5 mV) of those
  benchmarks).
- song(): examples/synapses/STDP.py of Brian2 2.9.0 (1000 Poisson inputs at 15 Hz, one
  conductance-based neuron, dv/dt = (ge (Ee - v) + El - v) / taum, method 'euler',
  additive STDP with traces Apre / Apost, w clipped to [0, gmax], w = rand()*gmax,
  100 s). One change, as in samples/song_stdp.snn: v starts at vr (the example leaves it
  at 0 V, which makes one spike on the first step).

Times: `loop_s` is Brian2's own time of the simulation loop (`device._last_run_time`:
the runtime targets time their Python loop over the code objects, excluding code
generation and compilation; the standalone binary writes the time of its main loop to
results/last_run_info.txt); `run_call_s` is the wall time of the `run()` call (for
cpp_standalone with build_on_run that is code generation + compilation + running the
binary); `binary_s` (standalone) the wall time of running the built binary. The time of
the whole process is measured by a caller that runs this file in a subprocess (see
`main`).

Statistics: `rates` are spikes / (neurons x duration) per population in Hz; `cv_isi` is
the mean over neurons of std(ISI) / mean(ISI) (population std, ddof 0) over the neurons
with at least MIN_ISIS = 2 interspike intervals (3 spikes); a neuron with a single ISI
would count as CV 0 and bias the mean down.

Brian2 2.9.0 imports `np.ndarray.ptp`, which NumPy 2.4 removed; `import_brian2()` loads
brian2.units.fundamentalunits with that one name read as `np.ptp` (the function it wraps
elsewhere) when the running NumPy lacks the method, and changes nothing otherwise.

    python benchmarks/brian2_nets.py --net cuba --target cpp_standalone --seed 1 [--json]
    python benchmarks/brian2_nets.py --reference cuba --seeds 1-8     # reference/*.json
    python benchmarks/brian2_nets.py --reference song [--duration 100]
"""
from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

TARGETS = ("cpp_standalone", "cython", "numpy")
MIN_ISIS = 2
DT_MS = 0.1
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


# --- importing Brian2 -------------------------------------------------------------------

class _PtpFix(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Loads brian2.units.fundamentalunits with `np.ndarray.ptp` read as `np.ptp`."""

    name = "brian2.units.fundamentalunits"

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None:
            return None
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source = self._loader.get_source(self.name).replace("np.ndarray.ptp", "np.ptp")
        exec(compile(source, module.__spec__.origin, "exec"), module.__dict__)


def import_brian2() -> ModuleType:
    """brian2, imported (with the NumPy 2.4 fix where needed); ImportError if absent."""
    if "brian2" in sys.modules:
        return sys.modules["brian2"]
    fix = None
    if not hasattr(np.ndarray, "ptp"):
        fix = _PtpFix()
        sys.meta_path.insert(0, fix)
    try:
        import brian2
    finally:
        if fix is not None:
            sys.meta_path.remove(fix)
    brian2.prefs.logging.std_redirection = False
    return brian2


# --- results ----------------------------------------------------------------------------

@dataclass
class Result:
    net: str
    target: str
    seed: int
    duration_s: float
    dt_ms: float
    sizes: dict[str, int]
    # per population: (spike times in s, neuron indices within the population)
    spikes: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    loop_s: float
    run_call_s: float
    binary_s: float | None
    build_s: float | None          # setup + code generation + compilation, where known
    synapses: int
    synapse_bytes: dict[str, int]  # per-synapse bytes: weights, indices, delays, other
    extra: dict = field(default_factory=dict)
    process_s: float | None = None  # filled in by a caller that ran this in a subprocess
    again_s: float = 0.0  # wall time of the binary's runs after the first (--repeat)

    def rates(self) -> dict[str, float]:
        return {pop: firing_rate(t, self.sizes[pop], self.duration_s)
                for pop, (t, _) in self.spikes.items()}

    def cvs(self) -> dict[str, float]:
        return {pop: cv_isi(t, i, self.sizes[pop]) for pop, (t, i) in self.spikes.items()}

    def pooled_cv(self) -> float:
        """CV(ISI) over the neurons of all populations together."""
        t, i, offset = [], [], 0
        for pop, (times, index) in self.spikes.items():
            t.append(times)
            i.append(index + offset)
            offset += self.sizes[pop]
        return cv_isi(np.concatenate(t), np.concatenate(i), offset)

    def summary(self) -> dict:
        """JSON-able: everything except the spike arrays, plus rates and CV(ISI)."""
        out = {k: v for k, v in asdict(self).items() if k != "spikes"}
        out["extra"] = {k: v for k, v in out["extra"].items() if k != "weights"}
        out["rates_hz"] = self.rates()
        out["cv_isi"] = self.cvs()
        out["cv_isi_pooled"] = self.pooled_cv()
        out["spike_counts"] = {pop: int(len(t)) for pop, (t, _) in self.spikes.items()}
        return out


def firing_rate(times: np.ndarray, n: int, duration_s: float) -> float:
    """Mean firing rate of a population in Hz: spikes / (neurons x duration)."""
    return float(len(times)) / (n * duration_s)


def cv_isi(times: np.ndarray, indices: np.ndarray, n: int, min_isis: int = MIN_ISIS) -> float:
    """Mean CV of the interspike intervals over the neurons with >= `min_isis` ISIs
    (std with ddof 0 over mean); nan if no neuron has that many."""
    times = np.asarray(times, dtype=np.float64)
    indices = np.asarray(indices, dtype=np.int64)
    order = np.lexsort((times, indices))
    t, i = times[order], indices[order]
    cvs = []
    starts = np.searchsorted(i, np.arange(n + 1))
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        if b - a >= min_isis + 1:
            isi = np.diff(t[a:b])
            cvs.append(isi.std() / isi.mean())
    return float(np.mean(cvs)) if cvs else float("nan")


# --- building and running ---------------------------------------------------------------

def _setup(b2: ModuleType, target: str, seed: int, build_dir: str | os.PathLike | None):
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
    dev = b2.get_device()
    if target == "cpp_standalone":
        if build_dir is None:
            raise ValueError("cpp_standalone needs a build_dir")
        if isinstance(dev, b2.devices.cpp_standalone.device.CPPStandaloneDevice):
            dev.reinit()  # a fresh project each call (the build dir may be reused)
        b2.set_device("cpp_standalone", directory=str(build_dir), build_on_run=True,
                      with_output=False)
    else:
        b2.set_device("runtime")
        b2.prefs.codegen.target = target
        if build_dir is not None and target == "cython":
            b2.prefs.codegen.runtime.cython.cache_dir = str(Path(build_dir) / "cython_cache")
    b2.start_scope()
    b2.defaultclock.dt = DT_MS * b2.ms
    b2.seed(seed)


def _synapse_bytes(b2: ModuleType, groups) -> tuple[int, dict[str, float]]:
    """Synapse count and bytes per synapse of the arrays Brian2 holds per synapse (index
    `_idx`), by kind: weights (w), indices (_synaptic_pre, _synaptic_post), delays (the
    pathways' delay) and other (STDP traces, lastupdate). A constant weight such as
    CUBA's `ge += we` stores none; i, j, _presynaptic_idx are the index arrays again."""
    from brian2.core.variables import DynamicArrayVariable
    total, by_kind = 0, {"weights": 0, "indices": 0, "delays": 0, "other": 0}
    for syn in groups:
        n = len(syn)
        total += n
        seen = set()
        for obj in [syn, *syn._pathways]:
            for name, var in obj.variables.items():
                if (not isinstance(var, DynamicArrayVariable) or id(var) in seen
                        or getattr(var.owner, "name", None) != syn.name
                        or obj.variables.indices[name] != "_idx"):
                    continue
                seen.add(id(var))
                if name in ("_synaptic_pre", "_synaptic_post"):
                    kind = "indices"
                elif name == "delay":
                    kind = "delays"
                elif name == "w":
                    kind = "weights"
                else:
                    kind = "other"
                by_kind[kind] += np.dtype(var.dtype).itemsize * n
    per = {k: (v / total if total else 0.0) for k, v in by_kind.items()}
    return total, per


# How often the standalone binary runs (--repeat): its loop time is the least of them, as
# benchmarks/clock.py takes the least of snnc's. Each run starts from the same state and
# seed and writes the same results.
BINARY_RUNS = 1


def _run(b2, net_objects, duration_s, target):
    net = b2.Network(*net_objects)
    t0 = time.perf_counter()
    net.run(duration_s * b2.second)
    run_call = time.perf_counter() - t0
    dev = b2.get_device()
    binary = dev.timers.get("run_binary") if target == "cpp_standalone" else None
    loop = float(dev._last_run_time)
    t_again = time.perf_counter()
    if target == "cpp_standalone":
        for _ in range(BINARY_RUNS - 1):
            dev.run(with_output=False)
            loop = min(loop, float(dev._last_run_time))
    return net, run_call, loop, binary, time.perf_counter() - t_again


def _split(mon, bounds: dict[str, tuple[int, int]]):
    t = np.asarray(mon.t_, dtype=np.float64)
    i = np.asarray(mon.i[:], dtype=np.int64)
    out = {}
    for pop, (a, b) in bounds.items():
        m = (i >= a) & (i < b)
        out[pop] = (t[m], i[m] - a)
    return out


def _vogels_abbott(b2, name: str, P, ns: dict, target: str, seed: int, duration: float,
                   t_setup: float, extra: dict) -> Result:
    """CUBA's and COBA's common part: the first 3200 neurons excite (ge += we), the last 800
    inhibit (gi += wi), each pair connected with p = 0.02; run and measure."""
    Ce = b2.Synapses(P, P, on_pre="ge += we", namespace=ns)
    Ci = b2.Synapses(P, P, on_pre="gi += wi", namespace=ns)
    Ce.connect("i<3200", p=0.02)
    Ci.connect("i>=3200", p=0.02)
    mon = b2.SpikeMonitor(P)
    net, run_call, loop, binary, again = _run(b2, [P, Ce, Ci, mon], duration, target)
    n_syn, per = _synapse_bytes(b2, [Ce, Ci])
    build = (time.perf_counter() - t_setup) - loop - again
    return Result(name, target, seed, duration, DT_MS, {"exc": 3200, "inh": 800},
                  _split(mon, {"exc": (0, 3200), "inh": (3200, 4000)}), loop, run_call,
                  binary, build, n_syn, per, extra, again_s=again)


def cuba(target: str = "cpp_standalone", seed: int = 1, duration: float = 1.0,
         build_dir: str | os.PathLike | None = None, method: str = "exact") -> Result:
    """Vogels-Abbott CUBA (Brian2's examples/CUBA.py), 3200 exc + 800 inh LIF neurons."""
    b2 = import_brian2()
    t_setup = time.perf_counter()
    _setup(b2, target, seed, build_dir)
    ms, mV = b2.ms, b2.mV
    ns = dict(taum=20 * ms, taue=5 * ms, taui=10 * ms, Vt=-50 * mV, Vr=-60 * mV, El=-49 * mV,
              we=(60 * 0.27 / 10) * mV, wi=(-20 * 4.5 / 10) * mV)
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    P = b2.NeuronGroup(4000, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms,
                       method=method, namespace=ns)
    P.v = "Vr + rand() * (Vt - Vr)"
    P.ge = 0 * mV
    P.gi = 0 * mV
    return _vogels_abbott(b2, "cuba", P, ns, target, seed, duration, t_setup,
                          {"method": method})


def coba(target: str = "cpp_standalone", seed: int = 1, duration: float = 1.0,
         build_dir: str | os.PathLike | None = None, v_init: str = "uniform") -> Result:
    """Vogels-Abbott COBA (Brette et al. 2007, benchmark 1), 3200 exc + 800 inh."""
    b2 = import_brian2()
    t_setup = time.perf_counter()
    _setup(b2, target, seed, build_dir)
    ms, mV = b2.ms, b2.mV
    ns = dict(taum=20 * ms, taue=5 * ms, taui=10 * ms, Vt=-50 * mV, Vr=-60 * mV, El=-60 * mV,
              Ee=0 * mV, Ei=-80 * mV, I=20 * mV, we=6 / 10, wi=67 / 10)
    eqs = """
    dv/dt  = (ge*(Ee-v)+gi*(Ei-v)-(v-El)+I)/taum : volt (unless refractory)
    dge/dt = -ge/taue : 1
    dgi/dt = -gi/taui : 1
    """
    P = b2.NeuronGroup(4000, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms,
                       method="euler", namespace=ns)
    if v_init == "uniform":
        P.v = "Vr + rand() * (Vt - Vr)"
    elif v_init == "normal":
        P.v = "-55*mV + 5*mV*randn()"
    else:
        raise ValueError("v_init must be 'uniform' or 'normal'")
    P.ge = 0
    P.gi = 0
    return _vogels_abbott(b2, "coba", P, ns, target, seed, duration, t_setup,
                          {"v_init": v_init})


SONG_GMAX = 0.01
SONG_BINS = 20


def song(target: str = "cpp_standalone", seed: int = 1, duration: float = 100.0,
         build_dir: str | os.PathLike | None = None, v0: str = "vr") -> Result:
    """Song, Miller & Abbott (2000) STDP (Brian2's examples/synapses/STDP.py)."""
    b2 = import_brian2()
    t_setup = time.perf_counter()
    _setup(b2, target, seed, build_dir)
    ms, mV, Hz = b2.ms, b2.mV, b2.Hz
    gmax = SONG_GMAX
    taupre = taupost = 20 * ms
    dApre = 0.01
    dApost = -dApre * taupre / taupost * 1.05
    ns = dict(taum=10 * ms, taupre=taupre, taupost=taupost, Ee=0 * mV, vt=-54 * mV,
              vr=-60 * mV, El=-74 * mV, taue=5 * ms, gmax=gmax,
              dApre=dApre * gmax, dApost=dApost * gmax)
    eqs = """
    dv/dt = (ge * (Ee-v) + El - v) / taum : volt
    dge/dt = -ge / taue : 1
    """
    inputs = b2.PoissonGroup(1000, rates=15 * Hz)
    post = b2.NeuronGroup(1, eqs, threshold="v>vt", reset="v = vr", method="euler",
                          namespace=ns)
    if v0 == "vr":
        post.v = "vr"
    S = b2.Synapses(inputs, post,
                    """w : 1
                       dApre/dt = -Apre / taupre : 1 (event-driven)
                       dApost/dt = -Apost / taupost : 1 (event-driven)""",
                    on_pre="""ge += w
                              Apre += dApre
                              w = clip(w + Apost, 0, gmax)""",
                    on_post="""Apost += dApost
                               w = clip(w + Apre, 0, gmax)""",
                    namespace=ns)
    S.connect()
    S.w = "rand() * gmax"
    out_mon = b2.SpikeMonitor(post)
    in_mon = b2.SpikeMonitor(inputs, record=False)
    net, run_call, loop, binary, again = _run(b2, [inputs, post, S, out_mon, in_mon],
                                                duration, target)
    w = np.asarray(S.w[:], dtype=np.float64)
    n_syn, per = _synapse_bytes(b2, [S])
    hist, edges = np.histogram(w, bins=SONG_BINS, range=(0.0, gmax))
    extra = {"gmax": gmax, "bins": SONG_BINS, "hist": hist.tolist(),
             "bin_edges": edges.tolist(), "mean_w_over_gmax": float(w.mean() / gmax),
             "frac_below_0.1_gmax": float(np.mean(w < 0.1 * gmax)),
             "frac_above_0.9_gmax": float(np.mean(w > 0.9 * gmax)),
             "input_rate_hz": float(in_mon.num_spikes) / (1000 * duration),
             "v0": v0}
    build = (time.perf_counter() - t_setup) - loop - again
    res = Result("song", target, seed, duration, DT_MS, {"post": 1},
                 _split(out_mon, {"post": (0, 1)}), loop, run_call, binary, build, n_syn,
                 per, extra, again_s=again)
    res.extra["weights"] = w
    return res


NETS = {"cuba": cuba, "coba": coba, "song": song}


def run_net(net: str, target: str, seed: int, duration: float,
            build_dir: str | os.PathLike | None = None) -> Result:
    """One net on one target; a temporary build dir (removed after) if none is given."""
    if build_dir is not None:
        return NETS[net](target, seed, duration, build_dir)
    tmp = tempfile.mkdtemp(prefix=f"brian2_{net}_")
    try:
        return NETS[net](target, seed, duration, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- reference files --------------------------------------------------------------------

def _stats(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max())}


def reference_cuba(seeds, target: str, duration: float, out: Path) -> dict:
    b2 = import_brian2()
    rows = []
    tmp = tempfile.mkdtemp(prefix="brian2_ref_cuba_")
    try:
        for s in seeds:
            r = cuba(target, s, duration, tmp)
            rates, cvs = r.rates(), r.cvs()
            row = {"seed": s, "exc_hz": rates["exc"], "inh_hz": rates["inh"],
                   "cv_isi_exc": cvs["exc"], "cv_isi_inh": cvs["inh"],
                   "cv_isi_all": cv_isi(np.concatenate([r.spikes["exc"][0], r.spikes["inh"][0]]),
                                        np.concatenate([r.spikes["exc"][1],
                                                        r.spikes["inh"][1] + 3200]), 4000),
                   "cv_isi_all_min1isi": cv_isi(
                       np.concatenate([r.spikes["exc"][0], r.spikes["inh"][0]]),
                       np.concatenate([r.spikes["exc"][1], r.spikes["inh"][1] + 3200]),
                       4000, min_isis=1),
                   "synapses": r.synapses, "loop_s": r.loop_s}
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc = {
        "net": "cuba", "source": "Brian2 examples/CUBA.py (benchmarks/brian2_nets.py:cuba)",
        "brian2": b2.__version__, "numpy": np.__version__, "target": target,
        "method": "exact", "dt_ms": DT_MS, "duration_s": duration, "seeds": list(seeds),
        "neurons": {"exc": 3200, "inh": 800}, "p": 0.02,
        "rate": "spikes / (neurons x duration), Hz",
        "cv_isi": f"mean over neurons with >= {MIN_ISIS} ISIs of std(ISI)/mean(ISI), ddof 0; "
                  "cv_isi_all pools exc and inh; cv_isi_all_min1isi uses neurons with >= 1 ISI",
        "per_seed": rows,
        "summary": {k: _stats([r[k] for r in rows])
                    for k in ("exc_hz", "inh_hz", "cv_isi_exc", "cv_isi_inh", "cv_isi_all",
                              "cv_isi_all_min1isi")},
        "std": "sample std over seeds (ddof 1)",
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def reference_song(seed: int, target: str, duration: float, out: Path) -> dict:
    b2 = import_brian2()
    r = run_net("song", target, seed, duration)
    e = r.extra
    doc = {
        "net": "song_stdp",
        "source": "Brian2 examples/synapses/STDP.py (benchmarks/brian2_nets.py:song)",
        "brian2": b2.__version__, "numpy": np.__version__, "target": target,
        "method": "euler", "dt_ms": DT_MS, "duration_s": duration, "seed": seed,
        "v0": "vr (-60 mV), as samples/song_stdp.snn",
        "gmax": e["gmax"], "bins": e["bins"], "bin_edges": e["bin_edges"],
        "hist": e["hist"], "hist_fraction": [h / 1000 for h in e["hist"]],
        "mean_w_over_gmax": e["mean_w_over_gmax"],
        "frac_below_0.1_gmax": e["frac_below_0.1_gmax"],
        "frac_above_0.9_gmax": e["frac_above_0.9_gmax"],
        "output_spikes": int(len(r.spikes["post"][0])),
        "output_rate_hz": r.rates()["post"],
        "output_rate_last_10s_hz": float(np.sum(r.spikes["post"][0] >= duration - 10.0))
                                   / min(10.0, duration),
        "input_rate_hz": e["input_rate_hz"],
        "loop_s": r.loop_s,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


# --- command line -----------------------------------------------------------------------

def _seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", choices=sorted(NETS), default="cuba")
    ap.add_argument("--target", choices=TARGETS, default="cpp_standalone")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds (default 1 for cuba/coba, 100 for song)")
    ap.add_argument("--build-dir", default=None,
                    help="build directory (default: a temporary one, removed after)")
    ap.add_argument("--json", action="store_true", help="print one JSON summary line")
    ap.add_argument("--reference", choices=("cuba", "song"), default=None,
                    help="write benchmarks/reference/<net>_brian2.json")
    ap.add_argument("--seeds", default="1-8", help="seeds for --reference cuba")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of the standalone binary; its loop time is the least")
    args = ap.parse_args(argv)
    global BINARY_RUNS
    BINARY_RUNS = max(1, args.repeat)
    net = args.reference or args.net
    duration = args.duration if args.duration is not None else (100.0 if net == "song" else 1.0)
    if args.reference == "cuba":
        REFERENCE_DIR.mkdir(exist_ok=True)
        doc = reference_cuba(_seeds(args.seeds), args.target, duration,
                             REFERENCE_DIR / "cuba_brian2.json")
        print(json.dumps(doc["summary"], indent=2))
        return 0
    if args.reference == "song":
        REFERENCE_DIR.mkdir(exist_ok=True)
        doc = reference_song(args.seed, args.target, duration,
                             REFERENCE_DIR / "song_brian2.json")
        print(json.dumps({k: v for k, v in doc.items() if k != "bin_edges"}, indent=2))
        return 0
    r = run_net(net, args.target, args.seed, duration, args.build_dir)
    summary = r.summary()
    if args.json:
        print("BRIAN2_RESULT " + json.dumps(summary), flush=True)
    else:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
