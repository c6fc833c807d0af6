"""LIF over [T, B, N] = [32, 32, 4096] (float32), forward and forward+backward, in one
process on one input: snnc's generated module (fused C kernels, the default) and its
reference step, a hand-written PyTorch loop, torch.compile of that loop, SpikingJelly 2.0,
snnTorch and Norse (benchmarks/peers.py says how each is set up to match snnc's LIF),
with the memory roofline from a bandwidth measurement taken in the same run.

    python benchmarks/neuron_kernels.py [--repeat 7] [--threads N]

The peers are optional (each one that does not import is skipped, with the reason);
benchmarks/peers.py says how to install them.

The forward runs under torch.no_grad(). torch.compile (default inductor, its caches off so
that each run compiles cold) compiles on the first forward and again on the first
forward+backward; those two first calls are reported below the table, not in the rates.
On a machine shared with other work, OpenMP threads that wait for a descheduled sibling
make the figures very noisy; --threads 1 is steadier there.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import peers
import torch
from rich.console import Console
from rich.table import Table

import snnc
from snnc.runtime import fused

T, B, N = 32, 32, 4096
SNNC = "snnc (fused C kernels)"


def snnc_population() -> torch.nn.Module:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lif.snn"
        path.write_text(f"network lif {{ steps = {T}\n input i[{N}]\n"
                        f" population p[{N}] = LIF(tau = 2.0)\n connect i -> p }}\n")
        return snnc.compile(path)()


def snnc_lif(model: torch.nn.Module, use_fused: bool) -> peers.Lif:
    def lif(x_seq: torch.Tensor) -> torch.Tensor:
        fused.use_fused(use_fused)
        model.reset()
        return model(x_seq)
    return lif


def timed(fn: Callable[[], object], repeat: int,
          before: Callable[[], object] = lambda: None) -> tuple[float, float]:
    """(seconds of the first call, the warm-up; median seconds of `repeat` calls after
    it); `before` runs ahead of each call, outside the clock."""
    times = []
    for _ in range(repeat + 1):
        before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


def bandwidth_gbs(repeat: int) -> float:
    """A large copy: bytes read plus bytes written per second."""
    a = torch.rand(256 * 2**20 // 4)
    b = torch.empty_like(a)
    _, seconds = timed(lambda: b.copy_(a), repeat)
    return 2 * a.numel() * 4 / seconds / 1e9


_LOAD_ONCE = """
import sys, time
from pathlib import Path
from snnc.runtime import fused
source = Path(sys.argv[1]).read_text()
start = time.perf_counter()
assert fused.load(source, "float") is not None
print(time.perf_counter() - start)
"""


def kernel_load_seconds(source: str) -> tuple[float, float]:
    """(first build, load from the disk cache) of the kernels, each in a new process with
    an empty cache folder of its own: what a user's first and second runs pay."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.c"
        path.write_text(source)
        env = {**os.environ, "SNNC_CACHE": tmp}
        return tuple(float(subprocess.run([sys.executable, "-c", _LOAD_ONCE, str(path)],
                                          env=env, check=True, capture_output=True,
                                          text=True).stdout) for _ in range(2))


def kernels_alone(model: torch.nn.Module, x: torch.Tensor, repeat: int) -> tuple[float, float]:
    """Neuron-steps/s of the population's C kernels called directly on buffers allocated
    once (forward; forward + backward): what the PyTorch around them costs is the gap to
    the snnc row."""
    lib = fused.load(model.populations["p"].kernel, "float")
    flat = x.reshape(T, -1)
    spikes, grad_x = torch.empty_like(flat), torch.empty_like(flat)
    state0, params = torch.zeros(1, flat.shape[1]), torch.zeros(0)
    state, one = torch.zeros(1, flat.shape[1]), torch.ones(())
    partial, ptr = torch.zeros(flat.shape[1], 1), fused.ptr
    threads = torch.get_num_threads()

    def forward():
        state.zero_()
        lib.snnc_forward(ptr(flat), ptr(spikes), ptr(state), ptr(params), None, T,
                         flat.shape[1], threads)

    def backward():  # the gradient of out.sum(): one value, strides (0, 0)
        lib.snnc_backward(ptr(flat), ptr(one), 0, 0, ptr(state0), None, ptr(params), None,
                          ptr(grad_x), ptr(partial), None, T, flat.shape[1], 0, threads)
    forward_s, backward_s = timed(forward, repeat)[1], timed(backward, repeat)[1]
    return x.numel() / forward_s, x.numel() / (forward_s + backward_s)


class Result:
    def __init__(self, lif: peers.Lif, x: torch.Tensor, repeat: int):
        xg = x.clone().requires_grad_()

        def forward():
            with torch.no_grad():
                lif(x)

        def forward_backward():
            lif(xg).sum().backward()

        def no_grad():
            xg.grad = None  # nobody pays for accumulating into an old gradient
        self.first_forward, forward_s = timed(forward, repeat)
        self.first_backward, backward_s = timed(forward_backward, repeat, no_grad)
        self.forward, self.backward = x.numel() / forward_s, x.numel() / backward_s
        # one more run for what it saves for the backward, its spikes and its gradient
        no_grad()
        saved, out = peers.saved_bytes(lif, xg)
        out.sum().backward()
        self.saved, self.spikes, self.grad = saved / x.numel(), out.detach(), xg.grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = peers.setup(parser)
    torch.manual_seed(0)
    x = torch.rand(T, B, N) * 1.5
    model = snnc_population()
    lifs = {SNNC: snnc_lif(model, True),
            "snnc reference step (use_fused(False))": snnc_lif(model, False),
            "PyTorch hand loop": peers.hand_lif,
            "torch.compile(hand loop)": torch.compile(peers.hand_lif)}
    lifs.update({name: factory() for name, factory in peers.available().items()})
    # rich draws 80 columns when not writing to a terminal: too narrow for this table
    console = Console(width=None if sys.stdout.isatty() else 120)
    alone_f, alone_fb = kernels_alone(model, x, args.repeat)
    results = {}
    for name, lif in lifs.items():
        console.print(f"running {name} ...")
        try:
            results[name] = Result(lif, x, args.repeat)
        except Exception as error:  # e.g. torch.compile without a C++ compiler
            if name == SNNC:
                raise
            console.print(f"skipped {name}: {type(error).__name__}: {error}")
    fused.use_fused(True)
    gbs = bandwidth_gbs(args.repeat)
    # forward: x read (4 B) + spike written (4 B); fwd+bwd: x read twice, spike written,
    # grad read, grad_x written (20 B)
    roof_f, roof_fb = gbs * 1e9 / 8, gbs * 1e9 / 20

    table = Table(title=f"LIF over [T, B, N] = [{T}, {B}, {N}], float32, {args.threads} "
                        f"threads, median of {args.repeat}; bandwidth {gbs:.1f} GB/s")
    for col in ("implementation", "forward\nn-steps/s", "snnc ÷\nthis", "fwd+bwd\nn-steps/s",
                "snnc ÷\nthis", "saved for\nbwd, B/n-step", "spikes\n≠ snnc",
                "∂L/∂x\n≠ snnc"):
        table.add_column(col, justify="left" if col == "implementation" else "right")
    base = results[SNNC]
    tolerance = 1e-5 * base.grad.abs().max().item()
    for name, r in results.items():
        wrong_spikes = int((r.spikes != base.spikes).sum())
        wrong_grads = int(((r.grad - base.grad).abs() > tolerance).sum())
        table.add_row(name, f"{r.forward:.2e}", f"{base.forward / r.forward:.2f}x",
                      f"{r.backward:.2e}", f"{base.backward / r.backward:.2f}x",
                      f"{r.saved:.2f}", f"{wrong_spikes}", f"{wrong_grads}")
    table.add_row("memory roofline", f"{roof_f:.2e}", f"{base.forward / roof_f:.2f}x",
                  f"{roof_fb:.2e}", f"{base.backward / roof_fb:.2f}x", "", "", "")
    console.print(table)
    console.print(f"forward under torch.no_grad(); fwd+bwd: loss = out.sum(). ≠ snnc: how many "
                  f"of the {x.numel()} spikes, or elements of ∂L/∂x (by more than "
                  f"{tolerance:.1e}, 1e-5 of the largest), differ from snnc's. snnTorch and "
                  f"Norse fire on v > 1, snnc on v >= 1: they differ where v is exactly 1, and "
                  f"in those neurons' gradients")
    console.print("roofline: the copy's bytes read and written per second; a copy with cached "
                  "stores also reads each destination line before writing it, which snnc's "
                  "kernels avoid by streaming their outputs, so they can pass this roofline")
    console.print(f"snnc saves {base.saved:.2f} bytes per neuron-step for the backward "
                  f"(saved_tensors_hooks, each storage once)")
    console.print(f"snnc's C kernels alone (buffers allocated once, no autograd; measured "
                  f"just before the table's rows): forward {alone_f:.2e}, fwd+bwd "
                  f"{alone_fb:.2e} n-steps/s")
    build, cached = kernel_load_seconds(model.populations["p"].kernel)
    console.print(f"snnc kernels of this population: first build {build:.2f} s, load from the "
                  f"disk cache in a new process {cached:.3f} s")
    compiled = results.get("torch.compile(hand loop)")
    if compiled is not None:
        console.print(f"torch.compile (inductor): first forward {compiled.first_forward:.1f} s,"
                      f" first forward+backward {compiled.first_backward:.1f} s (cold compiles, "
                      f"one compile thread, inductor's caches off; not in the rates)")


if __name__ == "__main__":
    main()
