"""samples/cuba.snn (4000 LIF neurons, four sparse(p = 0.02) connections, about 320 000
synapses; recurrent, so softbp runs it step by step) three ways in one process, the same
draw swapped into each: as it runs now (the existing synapses stored by source,
snnc.runtime.sparse, and the whole run in softbp's compiled step-by-step run,
snnc.runtime.bptt: one native call for the forward, one for the backward); the same
synapses on the PyTorch step path (SNNC_BPTT=0: a dozen autograd nodes per step, the
populations in their fused kernels); and as it was before issue 9 (a dense weight and a
dense float mask, their product made once, a dense GEMV per connection and step, on the
step path). Prints the state_dict's size, the time of one forward of --steps steps
(batch 1, autograd on, as a plain call runs it) and of the backward of the summed spikes
(BPTT over every step; in this chaotic network the gradient grows without bound, so its
values are not the point, its cost is), the step path's forward split into the sparse
ops, the exp_current synapses, the LIF populations and the rest (the step loop, sums of
currents, stacking).

    python benchmarks/sparse.py [--steps 1000] [--repeat 3] [--threads N]

Goals of issue 9: a state_dict under 4 MB, and a forward at least 20 times faster than
before. All three start each run from the same initial states (the global generator
seeded alike); their spikes are compared step by step, and the first step where they
differ is printed (sums in another order may move a neuron across its threshold, and the
network is chaotic from there). On a machine shared with other work, OpenMP threads that
wait for a descheduled sibling make the figures noisy; --threads 1 is steadier there.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import peers
import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.autograd.function import once_differentiable

import snnc
from snnc.runtime.sparse import SparseLinear

CUBA = Path(__file__).resolve().parent.parent / "samples" / "cuba.snn"
PARTS = ("sparse ops", "synapses", "populations")
NEW, STEPS, OLD = ("existing synapses, compiled run (now)", "existing synapses, step path",
                   "dense weight and mask (before)")


class DenseMasked(nn.Module):
    """The layout before issue 9 (the SparseLinear of then): a dense weight, a dense float
    mask, and their product made once and kept, so that a step costs one dense GEMV."""

    def __init__(self, layer: SparseLinear):
        super().__init__()
        self.weight = nn.Parameter(layer.dense_weight().detach())
        self.register_buffer("mask", layer.dense_weight(torch.ones_like(layer.weight)).detach())
        self.masked = self.weight.detach() * self.mask  # not saved, as then

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _MaskedLinear.apply(x, self.weight, self.mask, self.masked)


class _MaskedLinear(torch.autograd.Function):
    """x (weight ⊙ mask)ᵀ from the kept product, the gradient to the weight masked."""

    @staticmethod
    def forward(ctx, x, weight, mask, masked):
        ctx.save_for_backward(x, mask, masked)
        return nn.functional.linear(x, masked)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, mask, masked = ctx.saved_tensors
        flat_grad, flat_x = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
        return grad @ masked, (flat_grad.t() @ flat_x) * mask, None, None


class Timers:
    """Seconds spent in each part of a run, by wrapping the callables that do it."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    def wrap(self, part: str, call: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start
        return timed


def timed_model(net_class: type, old_layout: bool) -> tuple[nn.Module, Timers]:
    """cuba built with the network's draw, its sparse ops swapped for the old layout if
    asked, and its parts timed."""
    torch.manual_seed(0)  # the same synapses and weights for both layouts
    model, timers = net_class(), Timers()
    for conn in model.connections.values():
        if old_layout:
            conn.ops[0] = DenseMasked(conn.ops[0])
        conn.ops[0].forward = timers.wrap("sparse ops", conn.ops[0].forward)
        conn.synapse.single_step = timers.wrap("synapses", conn.synapse.single_step)
    for pop in model.populations.values():
        pop.single_step = timers.wrap("populations", pop.single_step)
    return model, timers


class Result:
    def __init__(self, model: nn.Module, timers: Timers, steps: int, repeat: int,
                 compiled: bool):
        self.state_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        os.environ["SNNC_BPTT"] = "1" if compiled else "0"
        model.steps = 20
        self._run(model)  # warm up: kernels built, allocator primed
        model.steps = steps
        runs = []
        for _ in range(repeat):
            timers.seconds.clear()
            start = time.perf_counter()
            out = self._run(model)
            forward = time.perf_counter() - start
            start = time.perf_counter()
            (out["exc"].sum() + out["inh"].sum()).backward()
            runs.append((forward, time.perf_counter() - start, dict(timers.seconds)))
            self.spikes = torch.cat([out["exc"], out["inh"]], -1).detach()
        self.seconds, self.backward, self.parts = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
        self.compiled = compiled

    @staticmethod
    def _run(model: nn.Module) -> dict[str, torch.Tensor]:
        model.reset()
        model.zero_grad()
        torch.manual_seed(1)  # the same initial states for every layout
        return model()

    def row(self, name: str) -> list[str]:
        rest = self.seconds - sum(self.parts.get(part, 0.0) for part in PARTS)
        parts = ["-"] * (len(PARTS) + 1) if self.compiled else \
            [*(f"{self.parts.get(part, 0.0):.2f}" for part in PARTS), f"{rest:.2f}"]
        return [name, f"{self.state_bytes / 2**20:.2f} MiB", f"{self.seconds:.3f}",
                f"{self.backward:.3f}", *parts]


def ratio(now: float, before: float) -> str:
    return f"{before / now:.1f}×" if now > 0 else "-"


def first_difference(a: torch.Tensor, b: torch.Tensor) -> str:
    differ = (a != b).flatten(1).any(1).nonzero()
    return "none" if len(differ) == 0 else f"step {int(differ[0])}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = peers.setup(parser)
    console = Console(width=None if sys.stdout.isatty() else 130)
    net_class = snnc.compile(CUBA, backend="softbp")
    results = {}
    for name, old, compiled in ((NEW, False, True), (STEPS, False, False), (OLD, True, False)):
        console.print(f"running {name} ...")
        results[name] = Result(*timed_model(net_class, old), args.steps, args.repeat, compiled)
    new, stepwise, old = results[NEW], results[STEPS], results[OLD]
    table = Table(title=f"cuba (softbp, step by step), {args.steps} steps, B = 1, "
                        f"{torch.get_num_threads()} threads, median of {args.repeat} "
                        "(seconds; the parts are the step path's forward)")
    for col in ("layout", "state_dict", "forward", "backward", *PARTS, "rest"):
        table.add_column(col, justify="left" if col == "layout" else "right")
    for name, result in results.items():
        table.add_row(*result.row(name))
    for label, now in (("before / now", new), ("before / step path", stepwise)):
        table.add_row(label, ratio(now.state_bytes, old.state_bytes),
                      ratio(now.seconds, old.seconds), ratio(now.backward, old.backward),
                      *(("",) * len(PARTS) if now.compiled else
                        (ratio(now.parts.get(p, 0.0), old.parts.get(p, 0.0)) for p in PARTS)),
                      "")
    console.print(table)
    synapses = sum(conn.ops[0].synapse_count
                   for conn in timed_model(net_class, False)[0].connections.values())
    console.print(f"{synapses} synapses; spikes {int(new.spikes.sum())} now, "
                  f"{int(stepwise.spikes.sum())} on the step path, {int(old.spikes.sum())} "
                  f"before; first step where now and the step path differ: "
                  f"{first_difference(new.spikes, stepwise.spikes)}, now and before: "
                  f"{first_difference(new.spikes, old.spikes)}")
    console.print(f"goals: state_dict under 4 MB: {new.state_bytes < 4e6}; forward 20× "
                  f"faster: {old.seconds / new.seconds >= 20} "
                  f"({old.seconds / new.seconds:.1f}×; forward and backward together "
                  f"{(old.seconds + old.backward) / (new.seconds + new.backward):.1f}×)")


if __name__ == "__main__":
    main()
