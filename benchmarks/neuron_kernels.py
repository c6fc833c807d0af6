"""LIF forward and forward+backward over [T, B, N] = [32, 32, 4096] (float32): snnc's fused
CPU kernels and reference step against SpikingJelly 2.0 and a hand-written PyTorch loop,
plus the memory roofline from a bandwidth measurement taken in the same run.

    python benchmarks/neuron_kernels.py [--repeat 5] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import snnc
from snnc.runtime import fused

T, B, N = 32, 32, 4096


def snnc_population() -> torch.nn.Module:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lif.snn"
        path.write_text(f"network lif {{ steps = {T}\n input i[{N}]\n"
                        f" population p[{N}] = LIF(tau = 2.0)\n connect i -> p }}\n")
        return snnc.compile(path)()


def hand_loop(x: torch.Tensor) -> torch.Tensor:
    v, out = torch.zeros_like(x[0]), []
    for x_t in x:
        v = v + (x_t - v) / 2.0
        s = snnc.runtime.spike(v - 1.0, "sigmoid", 4.0)
        v = v * (1.0 - s)
        out.append(s)
    return torch.stack(out)


def timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bandwidth_gbs() -> float:
    """A large copy: bytes read plus bytes written per second."""
    a = torch.rand(64 * 2**20 // 4)
    b = torch.empty_like(a)
    seconds = timed(lambda: b.copy_(a), 5)
    return 2 * a.numel() * 4 / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand(T, B, N) * 1.5
    model = snnc_population()
    runners = {}

    def ours(use: bool, backward: bool):
        def run():
            fused.use_fused(use)
            model.reset()
            xx = x.requires_grad_(backward) if backward else x
            out = model(xx)
            if backward:
                out.sum().backward()
        return run
    runners["snnc fused kernels"] = (ours(True, False), ours(True, True))
    runners["snnc reference step"] = (ours(False, False), ours(False, True))
    runners["PyTorch hand loop"] = (lambda: hand_loop(x),
                                    lambda: hand_loop(x.requires_grad_()).sum().backward())
    try:
        from spikingjelly.activation_based import functional, neuron
        sj = neuron.LIFNode(tau=2.0, step_mode="m")

        def sj_run(backward: bool):
            def run():
                functional.reset_net(sj)
                out = sj(x.requires_grad_(backward))
                if backward:
                    out.sum().backward()
            return run
        runners["SpikingJelly 2.0 (torch)"] = (sj_run(False), sj_run(True))
    except ImportError:
        pass
    neuron_steps = T * B * N
    results = {name: (neuron_steps / timed(f, args.repeat), neuron_steps / timed(fb, args.repeat))
               for name, (f, fb) in runners.items()}
    gbs = bandwidth_gbs()
    # forward: x read (4 B) + spike written (4 B); fwd+bwd adds x read again, grad read, grad_x
    roof_f, roof_fb = gbs * 1e9 / 8, gbs * 1e9 / 20
    table = Table(title=f"LIF over [T, B, N] = [{T}, {B}, {N}], float32, {args.threads} threads "
                        f"(median of {args.repeat}); bandwidth {gbs:.1f} GB/s")
    for col in ("implementation", "forward n-steps/s", "fwd+bwd n-steps/s", "fwd+bwd vs snnc"):
        table.add_column(col, justify="left" if col == "implementation" else "right")
    base = results["snnc fused kernels"][1]
    for name, (f, fb) in results.items():
        table.add_row(name, f"{f:.2e}", f"{fb:.2e}", f"{base / fb:.2f}x")
    table.add_row("memory roofline", f"{roof_f:.2e}", f"{roof_fb:.2e}", "")
    Console().print(table)


if __name__ == "__main__":
    main()
