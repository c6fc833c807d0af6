"""One training epoch of the Tempotron digits sample (samples/tempotron_digits.snn: 10
Tempotrons on Gaussian-tuning spike times of scikit-learn's 8x8 digits, m = 8, T = 100,
tau = 15, tau_s = 3.75, threshold 1) on three engines in the same run (issue 11): snnc's
event backend, SpikingJelly 2.0's `timing_based` Tempotron, and a per-step PyTorch
simulation of the same model; the epoch time, its ratio to SpikingJelly's, peak memory and
the held-out accuracy of each.

    python benchmarks/event.py [--repeat 5] [--epochs 1] [--threads 1] [--markdown]
                               [--save rows.json]
    python benchmarks/event.py --load rows.json --markdown   # the table again

Nothing is installed at run time: SpikingJelly 2.0 is benchmarks/peers.py's peer; where it
does not import, its row says why.

The same for every engine: the digits (0..16 over 16, as [B, 64] in [0, 1]), the sample's
80/20 split (seed 0), batches of 64 in the sample's order (randperm seeded by the epoch),
the same initial weights (snnc's, [10, 512], copied into the other two), the sample's loss
(the seed's Tempotron MSE, sum(((v_max - 1) · wrong)²) / B: snnc.functional's for snnc,
the same formula written out here for the others; both are checked equal), Adam with
lr 1e-2 (the sample's), float32 tensors, --threads torch threads (default 1, steadier on
a shared machine). The engines:

- snnc event: `snnc.compile(samples/tempotron_digits.snn, backend="event")`, its module
  as the sample trains it (pixels in, v_max out; its encoder rounds the times to steps).
- SpikingJelly 2.0 `timing_based`: its `encoding.GaussianTuning(n=1, m=8, x_min=0,
  x_max=1)` over the pixels laid out [B, 1, 64] (its MNIST example's layout; its input
  index (feature · 64 + pixel) · m + field is snnc's flatten order, so the weights copy
  as they are) with duration 100, then `neuron.Tempotron(512, 10, duration=99, tau=15,
  tau_s=3.75, v_threshold=1)`, whose first output is v_max. Adapted, as
  tests/test_event_runtime.py does: SpikingJelly's encoder neither rounds nor drops a
  time in (99.5, 100), so its times are rounded here (torch.round, as the seed) and those
  that round to 100 dropped — the same spike times as snnc's (checked); its window is
  [0, duration] in continuous time, so duration = T - 1 spans snnc's steps 0 .. 99.
  What cannot be made the same: SpikingJelly solves the voltage in continuous time (in
  float64 inside, float32 out), so its v_max is the true peak between steps (a little
  above snnc's peak over the steps), and its neuron shunts every input from its first
  threshold crossing on (the seed's and snnc's Tempotron do not), so a neuron that fires
  peaks lower; the loss, computed from its v_max, differs accordingly ("loss₀").
  SpikingJelly has no Tempotron MSE loss (its example uses a cross-entropy and a firing
  penalty), hence the formula above. It takes a batch as events with offsets: no
  adaptation needed.
- PyTorch per-step loop: the encoder's formula written out, then for t = 0 .. 99 in a
  Python loop the Tempotron as a LIF (time constant tau) fed by an exponentially decaying
  current (tau_s) that jumps by V0 (1/tau_s - 1/tau) · (spikes at t) @ W.T, both decayed
  exactly over a step (tests/test_event_runtime.py's simulation); v_max is the max over
  the recorded steps. The same model as snnc's to float32 rounding ("loss₀").

What is timed: per engine, in a subprocess of its own (the same interpreter): --repeat
times, restore the initial weights, a new Adam, one warm-up batch (forward and backward of
the first batch, no update; not timed), then --epochs epochs (23 batches each: forward
with the encoding, loss, backward, Adam step), each epoch timed on its own with
perf_counter. "epoch s" is the median of the repeat x epochs epoch times; "÷ SJ" is that
over SpikingJelly's (below 1: faster). The accuracies (held-out, 360 digits, class =
argmax of v_max, evaluated in batches of 64 after each epoch, outside the epoch's time)
are those of the last repeat (every repeat starts from the same weights and trains the
same).

Memory, two figures:
- "peak RSS MB": the process's peak resident set over the repeats (warm-up batches,
  epochs and accuracy evaluations; getrusage ru_maxrss) minus its RSS just before them
  (everything imported, data loaded, model built, nothing run yet); the peak is reset to
  the current RSS at that point (/proc/self/clear_refs 5) where Linux allows it, so it is
  the training's own peak. It counts what the allocator keeps as well as what is live,
  and what the first batch loads (snnc's native kernels, for one).
- "tensor MB": the most bytes of tensors alive at once during one training step (forward,
  loss, backward, Adam step, the first batch, after the timing), counted by a
  TorchDispatchMode that sees every aten op's outputs (forward and backward, custom
  autograd Functions and checkpoint recomputation included) and counts each new storage
  until it is freed; tensors alive before the step (weights, data) are not counted, nor
  temporaries inside one aten kernel or memory outside torch's tensors (RSS has those).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from memory import reset_peak_rss  # noqa: E402  (benchmarks/memory.py)

ROOT = HERE.parent
NET = ROOT / "samples" / "tempotron_digits.snn"

T, M, PIXELS, CLASSES = 100, 8, 64, 10
TAU, TAU_S, THRESHOLD = 15.0, 3.75, 1.0
BATCH, LR = 64, 1e-2
NO_SPIKE = -1.0
WEIGHT = "connections.spk->out.ops.1.weight"

SNNC = "snnc event (samples/tempotron_digits.snn)"
SJ = "SpikingJelly 2.0 timing_based (GaussianTuning + Tempotron)"
LOOP = "PyTorch per-step loop (LIF + exponential current)"
ENGINES = {"snnc": SNNC, "spikingjelly": SJ, "loop": LOOP}
TAG, ERROR_TAG = "EVENT_RESULT ", "EVENT_ERROR "


# --- data, loss, the written-out encoder --------------------------------------------------

def data():
    """(x_train, x_test, y_train, y_test): the sample's split, pixels [B, 64] in [0, 1]."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    return train_test_split(x, y, test_size=0.2, random_state=0)


def mse_loss(v_max, label):
    """The seed's Tempotron MSE loss (snnc.functional.tempotron_mse_loss) written out."""
    import torch.nn.functional as F

    target = F.one_hot(label.long(), CLASSES).bool()
    wrong = (v_max >= THRESHOLD) != target
    return ((v_max - THRESHOLD) * wrong.to(v_max.dtype)).square().sum() / label.shape[0]


def gaussian_times(x):
    """The seed's Gaussian tuning, as snnc's encoder computes it: x [B, 64] -> spike times
    [B, 64 · m] (whole steps, NO_SPIKE where a time rounds to T or later)."""
    import torch

    j = torch.arange(1, M + 1, dtype=x.dtype)
    mu = (2 * j - 3) / 2 * 1.0 / (M - 2)                  # x_min = 0, x_max = 1
    sigma = torch.tensor(1.0 / (1.5 * (M - 2)), dtype=x.dtype)
    g = torch.exp(-(x.unsqueeze(-1) - mu).square() / (2 * sigma.square()))
    t = torch.round((1 - g) * T)
    return t.masked_fill_(t >= T, NO_SPIKE).flatten(1)


def psp_v0(tau: float, tau_s: float) -> float:
    """V0: the factor that makes the peak of V0 (exp(-s/tau) - exp(-s/tau_s)) 1."""
    t_peak = tau * tau_s * math.log(tau / tau_s) / (tau - tau_s)
    return 1 / (math.exp(-t_peak / tau) - math.exp(-t_peak / tau_s))


# --- the engines --------------------------------------------------------------------------

def snnc_engine():
    """(module, its [10, 512] weight, loss function, spike-time function)."""
    import snnc
    from snnc.functional import tempotron_mse_loss

    net = snnc.compile(NET, backend="event")()
    weight = dict(net.named_parameters())[WEIGHT]
    encoder = net.encoders["spk"]
    return (net, weight, lambda v, y: tempotron_mse_loss(v, y, CLASSES),
            lambda x: encoder(x).flatten(1))


class SpikingJellyTempotron:
    """SpikingJelly 2.0's GaussianTuning and Tempotron; the times rounded as the seed's."""

    def __init__(self):
        import torch
        from spikingjelly.timing_based import encoding, neuron

        self.encoder = encoding.GaussianTuning(n=1, m=M, x_min=torch.zeros(1),
                                               x_max=torch.ones(1))
        self.neuron = neuron.Tempotron(PIXELS * M, CLASSES, duration=float(T - 1), tau=TAU,
                                       tau_s=TAU_S, v_threshold=THRESHOLD)

    def events(self, x):
        """(times, indices, offsets) of SpikingJelly's encoder, times rounded to steps and
        those that round to T dropped."""
        import torch

        times, indices, offsets = self.encoder(x.unsqueeze(1), duration=float(T))
        times = torch.round(times.detach())
        batch = torch.repeat_interleave(torch.arange(x.shape[0]), offsets.diff())
        keep = times < T
        counts = torch.bincount(batch[keep], minlength=x.shape[0])
        return times[keep], indices[keep], torch.cat((counts.new_zeros(1), counts.cumsum(0)))

    def __call__(self, x):
        return self.neuron(*self.events(x))[0]

    def parameters(self):
        return self.neuron.parameters()

    def dense_times(self, x):
        """The events as snnc lays out spike times, [B, 512] (NO_SPIKE: none)."""
        import torch

        times, indices, offsets = self.events(x)
        dense = torch.full((x.shape[0], PIXELS * M), NO_SPIKE)
        batch = torch.repeat_interleave(torch.arange(x.shape[0]), offsets.diff())
        dense[batch, indices] = times
        return dense


class StepLoop:
    """The Tempotron stepped over T in a Python loop: v' = -v/tau + I, I' = -I/tau_s, I
    jumping by V0 (1/tau_s - 1/tau) · w at each input spike; exact decay over a step."""

    def __init__(self):
        import torch

        self.weight = torch.nn.Parameter(torch.zeros(CLASSES, PIXELS * M))
        self.jump = psp_v0(TAU, TAU_S) * (1 / TAU_S - 1 / TAU)
        self.decay_v, self.decay_i = math.exp(-1 / TAU), math.exp(-1 / TAU_S)
        self.gain = (self.decay_i - self.decay_v) / (1 / TAU - 1 / TAU_S)

    def __call__(self, x):
        import torch

        times = gaussian_times(x)
        v = x.new_zeros(x.shape[0], CLASSES)
        current = torch.zeros_like(v)
        record = []
        for t in range(T):
            record.append(v)                  # v(t): a spike at t adds nothing yet
            current = current + self.jump * ((times == t).to(x.dtype) @ self.weight.T)
            v = v * self.decay_v + self.gain * current
            current = current * self.decay_i
        return torch.stack(record).max(0).values

    def parameters(self):
        return [self.weight]


def build(engine: str):
    """(model, weight, loss, spike times [B, 512] of a batch as this engine computes them)."""
    if engine == "snnc":
        return snnc_engine()
    if engine == "spikingjelly":
        model = SpikingJellyTempotron()
        return model, model.neuron.weight, mse_loss, model.dense_times
    if engine == "loop":
        model = StepLoop()
        return model, model.weight, mse_loss, gaussian_times
    raise ValueError(f"unknown engine {engine!r}")


# --- measuring ----------------------------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def live_tensor_peak(step) -> int:
    """The most bytes of tensor storages alive at once while step() runs that were made by
    it (see the docstring's Memory)."""
    import torch
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Live(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.live: dict[int, tuple[StorageWeakRef, int]] = {}
            self.now = self.peak = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for key, (ref, nbytes) in list(self.live.items()):
                if ref.expired():
                    del self.live[key]
                    self.now -= nbytes
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    storage = t.untyped_storage()
                    key, nbytes = storage.data_ptr(), storage.nbytes()
                    if nbytes and key not in self.live:
                        self.live[key] = (StorageWeakRef(storage), nbytes)
                        self.now += nbytes
            self.peak = max(self.peak, self.now)
            return out

    mode = Live()
    with mode:
        step()
    return mode.peak


def accuracy(model, x, y) -> float:
    """Held-out accuracy, in batches of BATCH (so that it needs no more memory than a
    training batch: it runs inside the peak-RSS window)."""
    import torch

    with torch.no_grad():
        right = sum((model(x[a:a + BATCH]).argmax(1) == y[a:a + BATCH]).sum().item()
                    for a in range(0, len(x), BATCH))
    return right / len(x)


def worker(engine: str, weights: Path, repeat: int, epochs: int) -> dict:
    import torch

    x_train, x_test, y_train, y_test = data()
    model, weight, loss_fn, times_fn = build(engine)
    initial = torch.load(weights)
    orders = [torch.randperm(len(x_train), generator=torch.Generator().manual_seed(e))
              for e in range(epochs)]
    first = orders[0][:BATCH]
    out = {"engine": ENGINES[engine], "threads": torch.get_num_threads(), "repeat": repeat,
           "epochs": epochs, "batches": math.ceil(len(x_train) / BATCH)}

    rss_before = rss_bytes()
    out["peak_reset"] = reset_peak_rss()
    epoch_s, accuracies = [], []
    for _ in range(repeat):
        with torch.no_grad():
            weight.copy_(initial)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        loss_fn(model(x_train[first]), y_train[first]).backward()   # warm-up, no update
        optimizer.zero_grad()
        accuracies = []
        for order in orders:
            start = time.perf_counter()
            for a in range(0, len(order), BATCH):
                index = order[a:a + BATCH]
                loss = loss_fn(model(x_train[index]), y_train[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            epoch_s.append(time.perf_counter() - start)
            accuracies.append(accuracy(model, x_test, y_test))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out.update(epoch_s=statistics.median(epoch_s), epoch_times=epoch_s,
               accuracy=accuracies, peak_rss=peak - rss_before,
               rss_before=rss_before)

    # after the peak RSS, before the tensor count: the spike times this engine computes
    # against the written-out formula's, and the first batch's loss with the initial weights
    with torch.no_grad():
        mine, reference = times_fn(x_train), gaussian_times(x_train)
        out["times_differ"] = int((mine != reference).sum())
        weight.copy_(initial)
        v = model(x_train[first])
        out["loss0"] = loss_fn(v, y_train[first]).item()
        out["loss0_written_out"] = mse_loss(v, y_train[first]).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)

    def step():
        loss = loss_fn(model(x_train[first]), y_train[first])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out["tensor_peak"] = live_tensor_peak(step)
    return out


# --- running the rows ---------------------------------------------------------------------

def initial_weights(path: Path) -> None:
    """snnc's initial weights of the sample (its module seeds its own init) to `path`."""
    import torch

    import snnc

    torch.manual_seed(0)
    net = snnc.compile(NET, backend="event")()
    torch.save(net.state_dict()[WEIGHT].detach().clone(), path)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def run_row(engine: str, weights: Path, args, env: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", engine,
           "--weights", str(weights), "--threads", str(args.threads),
           "--repeat", str(args.repeat), "--epochs", str(args.epochs)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                              env=env, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return {"engine": ENGINES[engine], "error": f"timed out after {args.timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(TAG):
            return json.loads(line[len(TAG):])
        if line.startswith(ERROR_TAG):
            return {"engine": ENGINES[engine], "error": line[len(ERROR_TAG):]}
    return {"engine": ENGINES[engine], "error": _last_line(proc.stderr or proc.stdout)
            + (f" (exit {proc.returncode})" if proc.returncode else "")}


# --- the table ----------------------------------------------------------------------------

def columns(epochs: int) -> tuple[str, ...]:
    acc = ("held-out acc",) if epochs == 1 else ("acc 1 epoch", f"acc {epochs} epochs")
    return ("engine", "epoch s", "÷ SJ", "peak RSS MB", "tensor MB", "loss₀", *acc)


def table_rows(rows: list[dict]) -> list[tuple[str, ...]]:
    base = next((r for r in rows if r["engine"] == SJ and "error" not in r), None)
    out = []
    for r in rows:
        if "error" in r:
            out.append((r["engine"], "-", "-", "-", "-", "-", f"not available: {r['error']}"))
            continue
        acc = r["accuracy"]
        accs = (f"{acc[0]:.3f}",) if len(acc) == 1 else (f"{acc[0]:.3f}", f"{acc[-1]:.3f}")
        out.append((r["engine"], f"{r['epoch_s']:.3f}",
                    f"{r['epoch_s'] / base['epoch_s']:.3f}" if base else "-",
                    f"{r['peak_rss'] / 2**20:.1f}", f"{r['tensor_peak'] / 2**20:.2f}",
                    f"{r['loss0']:.5f}", *accs))
    return out


def notes(rows: list[dict]) -> list[str]:
    ok = {r["engine"]: r for r in rows if "error" not in r}
    lines = []
    if SNNC in ok and SJ in ok:
        speedup = ok[SJ]["epoch_s"] / ok[SNNC]["epoch_s"]
        lines.append(f"snnc event is {speedup:.2f}x SpikingJelly's speed (goal >= 3x): "
                     f"{'holds' if speedup >= 3 else 'does not hold'}")
    if SNNC in ok and LOOP in ok:
        lines.append(f"snnc event is {ok[LOOP]['epoch_s'] / ok[SNNC]['epoch_s']:.2f}x "
                     f"the per-step loop's speed")
    for r in ok.values():
        extra = []
        if r["times_differ"]:
            extra.append(f"{r['times_differ']} spike times differ from the written-out "
                         f"encoder's")
        if abs(r["loss0"] - r["loss0_written_out"]) > 1e-6 * max(1.0, abs(r["loss0"])):
            extra.append(f"its loss {r['loss0']} != the written-out {r['loss0_written_out']}")
        if not r["peak_reset"]:
            extra.append("peak RSS not reset before training (it may include import peaks)")
        if extra:
            lines.append(f"{r['engine']}: " + "; ".join(extra))
    some = next(iter(ok.values()), None)
    if some:
        lines.append(f"{some['batches']} batches of {BATCH} an epoch, median of "
                     f"{some['repeat']} x {some['epochs']} epochs, {some['threads']} torch "
                     f"thread(s); loss₀: the first batch's loss with the initial weights; "
                     f"÷ SJ: this row's epoch time over SpikingJelly's")
    return lines


def render(rows: list[dict], markdown: bool = False) -> None:
    epochs = max((len(r["accuracy"]) for r in rows if "error" not in r), default=1)
    cols = columns(epochs)
    body = [row + ("",) * (len(cols) - len(row)) for row in table_rows(rows)]
    title = ("Tempotron digits (m = 8, T = 100), one training epoch (B = 64, Adam): snnc event vs "
             "SpikingJelly 2.0 timing_based vs a per-step PyTorch loop")
    if markdown:
        print(f"{title}\n")
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|")
        for row in body:
            print("| " + " | ".join(row) + " |")
        print()
        for line in notes(rows):
            print(f"- {line}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(cols):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in body:
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 170)
    console.print(table)
    for line in notes(rows):
        console.print(line)


# --- command line -------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed repeats (median)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per repeat")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--engines", default="snnc,spikingjelly,loop",
                    help=f"comma-separated, of {', '.join(ENGINES)}")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per engine")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--save", default=None, help="write the rows as JSON here")
    ap.add_argument("--load", default=None, help="render the rows of an earlier --save")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--weights", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        try:
            import torch
            torch.set_num_threads(args.threads)
            result = worker(args.worker, Path(args.weights), args.repeat, args.epochs)
        except Exception as exc:  # the row's "not available: ..."
            traceback.print_exc()
            print(ERROR_TAG + " ".join(f"{type(exc).__name__}: {exc}".split()), flush=True)
            return 1
        print(TAG + json.dumps(result), flush=True)
        return 0

    if args.load:
        render(json.loads(Path(args.load).read_text()), args.markdown)
        return 0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        ap.error(f"unknown engines {unknown}; known: {', '.join(ENGINES)}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    rows = []
    with tempfile.TemporaryDirectory(prefix="snnc_event_bench_") as folder:
        weights = Path(folder) / "initial.pt"
        initial_weights(weights)
        for engine in engines:
            print(f"running {ENGINES[engine]} ...", file=sys.stderr, flush=True)
            rows.append(run_row(engine, weights, args, env))
    render(rows, args.markdown)
    if args.save:
        Path(args.save).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
