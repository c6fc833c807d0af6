"""One training step of the 784-800-10 LIF MLP (T = 25, B = 64, Adam): snnc's generated
softbp module against SpikingJelly 2.0 (multi-step, torch backend) and a plain PyTorch
loop, measured in the same process on the same input. Prints steps per second.

    python benchmarks/train_step.py [--iters 20] [--threads N]
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import snnc

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


def snnc_model() -> torch.nn.Module:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlp.snn"
        path.write_text(NET)
        return snnc.compile(path)()


def spikingjelly_model() -> torch.nn.Module | None:
    try:
        from spikingjelly.activation_based import functional, layer, neuron
    except ImportError:
        return None
    net = torch.nn.Sequential(layer.Linear(IN, HID, bias=False), neuron.LIFNode(tau=2.0),
                              layer.Linear(HID, OUT, bias=False), neuron.LIFNode(tau=2.0))
    functional.set_step_mode(net, "m")

    class Rate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x).mean(0)

        def reset(self):
            functional.reset_net(self.net)
    return Rate()


class SigmoidSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(4.0 * x)
        return grad * 4.0 * s * (1 - s)


class HandLoop(torch.nn.Module):
    """The loop a user would write by hand: Linear, then LIF over T, twice."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(IN, HID, bias=False)
        self.fc2 = torch.nn.Linear(HID, OUT, bias=False)

    @staticmethod
    def lif(current):
        v, spikes = torch.zeros_like(current[0]), []
        for x in current:
            v = v + (x - v) / 2.0
            s = SigmoidSpike.apply(v - 1.0)
            v = v * (1 - s)
            spikes.append(s)
        return torch.stack(spikes)

    def forward(self, x):
        h = self.lif(self.fc1(x))
        return self.lif(self.fc2(h)).mean(0)

    def reset(self):
        pass


def steps_per_second(model: torch.nn.Module, x, y, iters: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        model.reset()
        loss = torch.nn.functional.cross_entropy(model(x) * 10, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return iters / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.rand(T, B, IN) < 0.2).float()
    y = torch.randint(0, OUT, (B,))
    models = {"snnc softbp (generated)": snnc_model(), "PyTorch hand loop": HandLoop()}
    sj = spikingjelly_model()
    if sj is not None:
        models["SpikingJelly 2.0 (torch)"] = sj
    results = {name: steps_per_second(m, x, y, args.iters) for name, m in models.items()}
    base = results["snnc softbp (generated)"]
    table = Table(title=f"training step, 784-800-10 LIF MLP, T={T}, B={B}, Adam, "
                        f"{args.threads} threads, {args.iters} steps")
    for col in ("implementation", "steps/s", "snnc / this"):
        table.add_column(col, justify="left" if col == "implementation" else "right")
    for name, rate in results.items():
        table.add_row(name, f"{rate:.2f}", f"{base / rate:.2f}x" if math.isfinite(rate) else "-")
    Console().print(table)


if __name__ == "__main__":
    main()
