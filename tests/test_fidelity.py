"""Fidelity against Brian2: statistics of whole simulations that Brian2 produced on this
machine (benchmarks/reference/*.json, written by benchmarks/brian2_nets.py; Brian2 is not
needed to run these tests)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from snnc.compiler import compile as snnc_compile

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "benchmarks" / "reference"


def rates_and_cv(spikes: torch.Tensor, dt_ms: float) -> tuple[float, float]:
    """The mean rate in Hz, and the mean over neurons with at least two ISIs of
    std(ISI) / mean(ISI) (ddof 0): the reference's convention."""
    steps, neurons = spikes.shape
    rate = spikes.sum().item() / (neurons * steps * dt_ms / 1000.0)
    cvs = []
    for n in range(neurons):
        times = spikes[:, n].nonzero().flatten().double()
        if len(times) >= 3:
            isi = times.diff()
            cvs.append((isi.std(unbiased=False) / isi.mean()).item())
    return rate, sum(cvs) / len(cvs)


def test_cuba_lands_within_three_sigma_of_brian2():
    """samples/cuba.snn for 1 s: the excitatory and inhibitory rates and CV(ISI) of
    Brian2's CUBA example over 8 seeds, each within 3 standard deviations."""
    reference = json.loads((REFERENCE / "cuba_brian2.json").read_text())["summary"]
    cls = snnc_compile(ROOT / "samples" / "cuba.snn")
    torch.manual_seed(7)
    sim = cls()
    out = sim.run(10_000)
    exc_rate, exc_cv = rates_and_cv(out["exc.spikes"][:, 0], cls.dt_ms)
    inh_rate, _ = rates_and_cv(out["inh.spikes"][:, 0], cls.dt_ms)
    both = torch.cat([out["exc.spikes"][:, 0], out["inh.spikes"][:, 0]], dim=1)
    _, cv = rates_and_cv(both, cls.dt_ms)
    for name, value in (("exc_hz", exc_rate), ("inh_hz", inh_rate), ("cv_isi_all", cv)):
        mean, std = reference[name]["mean"], reference[name]["std"]
        assert abs(value - mean) <= 3 * std, f"{name}: {value:.4f}, Brian2 {mean:.4f} ± {std:.4f}"
