"""Front-end speed: parse + check + graph (+ passes) of a generated file with
1 000 populations and 3 000 connections. Prints a table of the measured times.

    python benchmarks/frontend.py [--populations 1000] [--connections 3000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from snnc.check import check_program
from snnc.frontend.loader import load
from snnc.ir.graph import to_graph
from snnc.passes import fold_constants, schedule

MODELS = ["LIF(tau = 2.0)", "IF", "CubaLIF(v_decay = 0.5)", "PLIF(init_tau = 3.0)",
          "LIF(tau = 20 ms, v_rest = -49, v_reset = -60, v_threshold = -50, refractory = 5 ms)"]
PIPELINES = ["", ": dense", ": sparse(p = 0.1, w = uniform(0, 0.5))", ": one_to_one(w = 0.5)",
             ": dense | dropout(0.2) | scale(2)"]


def generate(populations: int, connections: int, seed: int = 0) -> str:
    """A feed-forward chain plus random extra connections; back edges get a delay."""
    rng = random.Random(seed)
    lines = ["network big {", "    dt = 0.5 ms", "    input drive[64]",
             "    encoder spikes = poisson(drive)"]
    for i in range(populations):
        lines.append(f"    population p{i}[64] = {rng.choice(MODELS)}")
    lines.append("    connect spikes -> p0 : dense")
    edges = [(i, i + 1) for i in range(populations - 1)]
    while len(edges) < connections - 1:
        edges.append((rng.randrange(populations), rng.randrange(populations)))
    for n, (a, b) in enumerate(edges):
        delay = f" delay {rng.randint(1, 5)}" if b <= a else ""
        synapse = rng.choice(["", " via exp_current(tau = 5 ms)"])
        lines.append(f"    connect p{a} -> p{b} as c{n} {rng.choice(PIPELINES)}{delay}{synapse}")
    lines.append("    monitor p0.spikes, p0.v")
    lines.append("}")
    return "\n".join(lines) + "\n"


def measure(path: Path) -> dict[str, float]:
    """Seconds spent in each stage of one compile."""
    t0 = time.perf_counter()
    program = load(path)
    t1 = time.perf_counter()
    (network,) = check_program(program)
    t2 = time.perf_counter()
    graph = to_graph(network)
    t3 = time.perf_counter()
    schedule(fold_constants(graph))
    t4 = time.perf_counter()
    return {"parse": t1 - t0, "check": t2 - t1, "graph": t3 - t2, "passes": t4 - t3,
            "total": t4 - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--populations", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    text = generate(args.populations, args.connections)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.snn"
        path.write_text(text)
        measure(path)  # warm-up: grammar construction and imports are not per-file costs
        runs = [measure(path) for _ in range(args.repeat)]
    table = Table(title=f"front end: {args.populations} populations, {args.connections} "
                        f"connections, {len(text.splitlines())} lines "
                        f"(median of {args.repeat})")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage in runs[0]:
        table.add_row(stage, f"{statistics.median(r[stage] for r in runs):.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
