"""One training step of the 784-800-10 LIF MLP (T = 25, B = 64, Adam, input spikes of
density 0.2), in one process on one input: snnc's generated softbp module (fused C kernels,
the default, and its reference step), a plain PyTorch loop, torch.compile of that loop,
SpikingJelly 2.0, snnTorch and Norse (benchmarks/peers.py says how each is set up to match
snnc's LIF). Prints steps per second.

    python benchmarks/train_step.py [--iters 20] [--threads N]

The peers are optional (each one that does not import is skipped, with the reason);
benchmarks/peers.py says how to install them.

Every model starts from the same weights (snnc's); before the timing, the loss and
gradient of one step with those weights scaled by 8 (so that neurons fire) are compared
with snnc's. torch.compile (default inductor, its caches off so that each run compiles
cold) compiles the model's forward and backward on that step, reported below the table.
On a machine shared with other work, OpenMP threads that wait for a descheduled sibling
make the figures very noisy; --threads 1 is steadier there.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import peers
import torch
from rich.console import Console
from rich.table import Table

import snnc
from snnc.runtime import fused

T, B, IN, HID, OUT = 25, 64, 784, 800, 10
NET = f"""network mlp {{
    steps = {T}
    input x[{IN}]
    population hidden[{HID}] = LIF(tau = 2.0)
    population out[{OUT}] = LIF(tau = 2.0)
    connect x -> hidden : dense
    connect hidden -> out : dense
    readout out = rate
}}
"""
SNNC = "snnc softbp (generated, fused kernels)"
COMPILED = "torch.compile(hand loop)"
# With the initial weights the hidden layer never fires on this input; scaled by 8 (a power
# of two: scaling back restores them exactly), about 16% of hidden and 21% of output
# neuron-steps fire, so the check covers spikes and resets.
CHECK_GAIN = 8.0


def snnc_model() -> torch.nn.Module:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlp.snn"
        path.write_text(NET)
        return snnc.compile(path)()


class Snnc(torch.nn.Module):
    """The generated module, reset before each run, with or without its fused kernels."""

    def __init__(self, use_fused: bool):
        super().__init__()
        self.net, self.use_fused = snnc_model(), use_fused

    def forward(self, x):
        fused.use_fused(self.use_fused)
        self.net.reset()
        return self.net(x)


class PeerMlp(torch.nn.Module):
    """Linear over all T steps at once (as snnc and SpikingJelly's multi-step layers do),
    then a LIF over T, twice; the rate readout."""

    def __init__(self, make_lif):
        super().__init__()
        self.fc1 = torch.nn.Linear(IN, HID, bias=False)
        self.fc2 = torch.nn.Linear(HID, OUT, bias=False)
        self.lif1, self.lif2 = make_lif(), make_lif()  # plain functions: no parameters

    def forward(self, x):
        return self.lif2(self.fc2(self.lif1(self.fc1(x)))).mean(0)


def weights(model: torch.nn.Module) -> tuple[torch.nn.Parameter, torch.nn.Parameter]:
    """(input -> hidden, hidden -> output) weights, whatever the model names them."""
    by_shape = {tuple(p.shape): p for p in model.parameters()}
    return by_shape[(HID, IN)], by_shape[(OUT, HID)]


def loss_of(model: torch.nn.Module, x, y) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(model(x) * 10, y)


class Result:
    def __init__(self, model: torch.nn.Module, x, y, iters: int):
        # A first forward+backward, without an update, whose loss and gradient are compared
        # with snnc's: with the weights scaled by CHECK_GAIN, or no neuron would fire.
        w1, w2 = weights(model)
        with torch.no_grad():
            w1.mul_(CHECK_GAIN)
            w2.mul_(CHECK_GAIN)
        start = time.perf_counter()
        loss = loss_of(model, x, y)
        loss.backward()
        self.first = time.perf_counter() - start
        self.loss, self.grad = loss.item(), w1.grad.clone()
        with torch.no_grad():
            w1.div_(CHECK_GAIN)
            w2.div_(CHECK_GAIN)
        w1.grad = w2.grad = None
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            loss = loss_of(model, x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        for _ in range(3):
            step()
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        self.rate = 1 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20)
    args = peers.setup(parser)
    torch.manual_seed(0)
    x = (torch.rand(T, B, IN) < 0.2).float()
    y = torch.randint(0, OUT, (B,))
    models = {SNNC: Snnc(True), "snnc reference step (use_fused(False))": Snnc(False),
              "PyTorch hand loop": PeerMlp(lambda: peers.hand_lif),
              COMPILED: PeerMlp(lambda: peers.hand_lif)}
    models.update({name: PeerMlp(factory) for name, factory in peers.available().items()})
    with torch.no_grad():
        for model in models.values():
            for mine, snnc_w in zip(weights(model), weights(models[SNNC]), strict=True):
                mine.copy_(snnc_w)
    models[COMPILED] = torch.compile(models[COMPILED])
    # rich draws 80 columns when not writing to a terminal: too narrow for this table
    console = Console(width=None if sys.stdout.isatty() else 120)
    results = {}
    for name, model in models.items():
        console.print(f"running {name} ...")
        try:
            results[name] = Result(model, x, y, args.iters)
        except Exception as error:  # e.g. torch.compile without a C++ compiler
            if name == SNNC:
                raise
            console.print(f"skipped {name}: {type(error).__name__}: {error}")
    fused.use_fused(True)

    table = Table(title=f"training step, 784-800-10 LIF MLP, T={T}, B={B}, Adam, "
                        f"{args.threads} threads, median of {args.iters} steps")
    for col in ("implementation", "steps/s", "snnc ÷ this", "first loss − snnc",
                "first ∂L/∂W1 vs snnc"):
        table.add_column(col, justify="left" if col == "implementation" else "right")
    base = results[SNNC]
    for name, r in results.items():
        table.add_row(name, f"{r.rate:.2f}", f"{base.rate / r.rate:.2f}x",
                      f"{r.loss - base.loss:.1e}",
                      f"{((r.grad - base.grad).norm() / base.grad.norm()).item():.1e}")
    console.print(table)
    console.print(f"first loss, ∂L/∂W1: one forward+backward with the weights scaled by "
                  f"{CHECK_GAIN:g} (so that neurons fire), before the timing; ∂L/∂W1 vs snnc: "
                  f"‖difference‖ / ‖snnc's‖. Rounding alone gives ~1e-7; ~1e-3 is one hidden "
                  f"spike that differs: a membrane potential within an ulp of the threshold "
                  f"(the matmul's last bit depends on the buffers, and snnTorch and Norse fire "
                  f"on v > 1, snnc on v >= 1)")
    if COMPILED in results:
        console.print(f"torch.compile (inductor): the first forward+backward took "
                      f"{results[COMPILED].first:.1f} s (a cold compile, one compile thread, "
                      f"inductor's caches off; not in the rates)")


if __name__ == "__main__":
    main()
