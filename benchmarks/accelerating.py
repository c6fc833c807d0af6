"""SpikingFlow's `softbp.accelerating` (issue 12, item 7) against the plain expressions:
mul(x, s) = x * s, add(x, s) = x + s, sub(x, s) = x - s,
soft_voltage_transform(v, s, v_th) = v - s * v_th and
hard_voltage_transform(v, s, v_reset) = v * (1 - s) + v_reset * s, where s is a 0/1 spike.

    python benchmarks/accelerating.py [--repeat 5] [--threads 1,2] [--sizes 8x64x256,...]

(a) is the plain PyTorch expression, differentiated by autograd; (b) is the seed's approach,
written from its documentation: a custom torch.autograd.Function per operation that uses
the spike as a bool mask (masked_fill instead of multiplications) and saves the mask, not
the float spike, for backward. Each timing is forward+backward the way the runtime uses
these operations: one call per time step on a [B, N] slice of a [T, B, N] float32 input,
the T results stacked and backpropagated, with the spike differentiable (its surrogate
gradient, the runtime's default) and detached (detach_reset). (a) and (b) alternate in the
same run; the figure is the median of `repeat` calls after one warm-up. Before timing,
every case checks that (b)'s result and gradients equal (a)'s.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table


class MultiplySpike(torch.autograd.Function):
    """x * spike as x with the non-spiking places filled with 0."""

    @staticmethod
    def forward(ctx, x, spike):
        silent = spike == 0
        ctx.save_for_backward(silent, x if ctx.needs_input_grad[1] else None)
        return x.masked_fill(silent, 0.0)

    @staticmethod
    def backward(ctx, grad):
        silent, x = ctx.saved_tensors
        grad_x = grad.masked_fill(silent, 0.0) if ctx.needs_input_grad[0] else None
        grad_spike = grad * x if ctx.needs_input_grad[1] else None
        return grad_x, grad_spike


class AddSpike(torch.autograd.Function):
    """x + spike; the gradient passes unchanged to both, so nothing is saved."""

    @staticmethod
    def forward(ctx, x, spike):
        return x + spike

    @staticmethod
    def backward(ctx, grad):
        return grad, grad if ctx.needs_input_grad[1] else None


class SubtractSpike(torch.autograd.Function):
    """x - spike; nothing is saved."""

    @staticmethod
    def forward(ctx, x, spike):
        return x - spike

    @staticmethod
    def backward(ctx, grad):
        return grad, -grad if ctx.needs_input_grad[1] else None


class SoftVoltageTransform(torch.autograd.Function):
    """v - spike * v_threshold in one kernel (sub with alpha, exact for a 0/1 spike);
    the gradient needs nothing saved."""

    @staticmethod
    def forward(ctx, v, spike, v_threshold: float):
        ctx.v_threshold = v_threshold
        return torch.sub(v, spike, alpha=v_threshold)

    @staticmethod
    def backward(ctx, grad):
        grad_spike = grad * -ctx.v_threshold if ctx.needs_input_grad[1] else None
        return grad, grad_spike, None


class HardVoltageTransform(torch.autograd.Function):
    """v * (1 - spike) + v_reset * spike as v with the spiking places filled with v_reset."""

    @staticmethod
    def forward(ctx, v, spike, v_reset: float):
        fired = spike != 0
        ctx.v_reset = v_reset
        ctx.save_for_backward(fired, v if ctx.needs_input_grad[1] else None)
        return v.masked_fill(fired, v_reset)

    @staticmethod
    def backward(ctx, grad):
        fired, v = ctx.saved_tensors
        grad_v = grad.masked_fill(fired, 0.0) if ctx.needs_input_grad[0] else None
        grad_spike = grad * (ctx.v_reset - v) if ctx.needs_input_grad[1] else None
        return grad_v, grad_spike, None


V_THRESHOLD, V_RESET = 1.0, -0.25

Op = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OPS: dict[str, tuple[Op, Op]] = {
    "mul  x * s": (lambda x, s: x * s, MultiplySpike.apply),
    "add  x + s": (lambda x, s: x + s, AddSpike.apply),
    "sub  x - s": (lambda x, s: x - s, SubtractSpike.apply),
    "soft v - s*v_th": (lambda v, s: v - s * V_THRESHOLD,
                        lambda v, s: SoftVoltageTransform.apply(v, s, V_THRESHOLD)),
    "hard v*(1-s) + v_r*s": (lambda v, s: v * (1 - s) + V_RESET * s,
                             lambda v, s: HardVoltageTransform.apply(v, s, V_RESET)),
}


def inputs(shape: tuple[int, int, int], spike_grad: bool, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=dtype).requires_grad_()
    spike = (torch.rand(shape, generator=g) < 0.2).to(dtype).requires_grad_(spike_grad)
    upstream = torch.randn(shape, generator=g, dtype=dtype)
    return x, spike, upstream


def step_through(op: Op, x, spike, upstream):
    """One call per time step, stacked and backpropagated; (result, grad x, grad spike)."""
    x.grad = spike.grad = None
    out = torch.stack([op(x[t], spike[t]) for t in range(x.shape[0])])
    out.backward(upstream)
    return out.detach(), x.grad, spike.grad


def check(plain: Op, fast: Op, x, spike, upstream) -> float:
    """Largest difference between (a) and (b) over the result and both gradients; raises
    if they differ by more than float32 rounding."""
    worst = 0.0
    for a, b in zip(step_through(plain, x, spike, upstream),
                    step_through(fast, x, spike, upstream), strict=True):
        if a is None or b is None:
            assert a is None and b is None
            continue
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)
        worst = max(worst, (a - b).abs().max().item())
    return worst


def timed_pair(plain: Op, fast: Op, args, repeat: int) -> tuple[float, float]:
    """Median seconds of (a) and (b), alternating, after one warm-up each."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(repeat + 1):
        for which, op in enumerate((plain, fast) if i % 2 else (fast, plain)):
            start = time.perf_counter()
            step_through(op, *args)
            if i:
                times[which].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--sizes", default="8x64x256,32x64x1024,16x64x4096")
    opts = parser.parse_args()
    sizes = [tuple(int(n) for n in s.split("x")) for s in opts.sizes.split(",")]
    threads = [int(n) for n in opts.threads.split(",")]

    table = Table(title="forward+backward, ms per [T, B, N] sequence (median); "
                        "ratio = plain / accelerating (>1: accelerating faster)")
    for column in ("operation", "[T, B, N]", "threads", "spike grad", "(a) plain ms",
                   "(b) accelerating ms", "ratio", "max |a-b|"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for shape in sizes:
            for spike_grad in (True, False):
                args = inputs(shape, spike_grad)
                for name, (plain, fast) in OPS.items():
                    diff = check(plain, fast, *args)
                    a, b = timed_pair(plain, fast, args, opts.repeat)
                    table.add_row(name, "x".join(map(str, shape)), str(n_threads),
                                  "yes" if spike_grad else "no (detached)",
                                  f"{a * 1e3:.2f}", f"{b * 1e3:.2f}", f"{a / b:.2f}x",
                                  f"{diff:.1e}")
            table.add_section()
    Console(width=140).print(table)
    print(f"torch {torch.__version__}, float32; v_threshold = {V_THRESHOLD}, "
          f"v_reset = {V_RESET}, spike rate 0.2")


if __name__ == "__main__":
    main()
