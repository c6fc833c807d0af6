"""Fidelity of the STDP samples (issue 10): samples/song_stdp.snn against Brian2's
Song-Miller-Abbott example, and samples/spikingflow_stdp.snn against the two STDP
tutorials of the SpikingFlow documentation (../shared/seeds/003_*.txt, "学习规则
SpikingFlow.learning": `STDPModule`, figures 4-3 .. 4-6, and `STDPUpdater`, figure 4-7).

Song-Miller-Abbott: statistics of a whole 100 s run against benchmarks/reference/
song_brian2.json (written by benchmarks/brian2_nets.py; Brian2 is not needed here).

SpikingFlow: the references below are written in plain torch, step by step, from the
tutorial's code and formulas (no snnc in them). Where the document leaves the code out,
they follow SpikingFlow's source of the same release (June 2020, the release that has
the STPTransformer and GaussianLinear the document describes): the `ConstantDelay`s that
STDPModule puts between its three modules, and the order in which STDPModule and
STDPUpdater update the traces and weights. Each reference is first checked against the
document's own figures (numbers read off the PNGs of that release), then the snnc
sample against the reference:

- The sample's networks learn by `learn spikingflow_stdp` (every weight changes at every
  step, by f_w(w) = |w| + 1e-6 or |w| / (sum |w| + 1e-6), Euler traces), with the
  tutorials' weights, delays and pipelines: run in float64 they give the references'
  post spikes and weights on every step (step() and run()), and in float32 (as the
  tutorial ran) they draw figures 4-5, 4-6 and 4-7.
- What the sample cannot express (the first step of STDPUpdater's simulator, which
  fills its pipeline with the first input: the voltage before the first post spike) is a
  strict xfail that says why.
- The document's text read as Brian2's trace STDP (`trace_stdp`: a weight changes when a
  spike arrives, by the other side's trace), the tutorial's network learning by
  `learn stdp`, is compared step by step too: every post spike, membrane voltage and
  weight.
"""
from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from snnc.compiler import compile as snnc_compile
from snnc.runtime import compiled, native

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "benchmarks" / "reference"
SAMPLES = ROOT / "samples"


# ====================================================================== Song-Miller-Abbott
SONG_STEPS = 1_000_000           # 100 s at dt = 0.1 ms
SONG_CHUNK = 100_000             # run() in chunks of 10 s: the monitors of one chunk only
SONG_SEED = 1                    # benchmarks/clock.py's default seed (Brian2's: 1 too)
GMAX = 0.01

# Tolerances, from the spread between seeds (100 s each; snnc seeds 1-12 with
# torch.manual_seed, Brian2 cpp_standalone seeds 1-6 of benchmarks/brian2_nets.py:song,
# seed 1 being the reference file's), mean ± sample std:
#
#                         snnc (12 seeds)   Brian2 (6 seeds)   reference (seed 1)
#   w < 0.1 gmax          0.245 ± 0.007     0.240 ± 0.010      0.251
#   w > 0.9 gmax          0.189 ± 0.008     0.188 ± 0.006      0.186
#   0.2 <= w/gmax <= 0.8  0.355 ± 0.011     0.361 ± 0.011      0.367
#   rate, last 10 s (Hz)  22.9  ± 1.6       21.1  ± 1.1        21.3
#   rate, first 10 s (Hz) 31.6 .. 49.3      -                  -
#
# One snnc run against the one Brian2 run of the reference differs by the spread of both
# (std of a difference sqrt(s1² + s2²)): 0.012, 0.010, 0.016 for the three fractions, so a
# tolerance of about 3 of those: 0.04, 0.03, 0.05 (the 12 seeds are at most 0.021, 0.015
# and 0.028 away). The output rate of snnc's last 10 s sits 1.6 Hz above the reference's
# on average (Brian2's own seeds: 0.2 below; the cause is not established: giving ge
# Brian2's Euler decay, tau 4.95 ms, leaves it at 23.1 Hz over 6 seeds) and scatters by
# 1.6 Hz, so it must lie within 6.5 Hz (the offset + 3 std; the 12 seeds are at most 4.1
# away). Over the run the rate falls from 30-50 Hz in the first 10 s, in every seed.
# For comparison, the initial uniform draw has 0.1, 0.1 and 0.6.
SONG_TOLERANCE = {"below": 0.04, "above": 0.03, "middle": 0.05, "rate_last_10s_hz": 6.5}


def song_without_monitors(tmp_path: Path) -> Path:
    """samples/song_stdp.snn without its `monitor` statement (inputs.spikes and post.v
    over 100 s would be 4 GB): run() records post.spikes through `record` instead."""
    text = (SAMPLES / "song_stdp.snn").read_text(encoding="utf-8")
    stripped, count = re.subn(r"^\s*monitor\b[^\n]*$", "", text, flags=re.M)
    assert count == 1, "samples/song_stdp.snn should have one monitor line"
    path = tmp_path / "song_stdp.snn"
    path.write_text(stripped, encoding="utf-8")
    return path


def test_song_weights_turn_u_shaped_and_the_rate_settles_like_brian2(tmp_path):
    """100 s of samples/song_stdp.snn on the clock backend: the weights, drawn uniform in
    [0, gmax], end U-shaped as Brian2's (mass below 0.1 gmax and above 0.9 gmax, middle
    bins thin), and the output rate of the last 10 s is Brian2's."""
    ref = json.loads((REFERENCE / "song_brian2.json").read_text())
    assert ref["duration_s"] == 100.0 and ref["dt_ms"] == 0.1 and ref["gmax"] == GMAX
    cls = snnc_compile(song_without_monitors(tmp_path), backend="clock")
    assert cls.dt_ms == pytest.approx(0.1)
    torch.manual_seed(SONG_SEED)
    model = cls(batch_size=1)
    weight = model.connection("inputs->post").weight
    w0 = weight.detach().double().numpy().ravel().copy()
    spikes_per_chunk = []
    for _ in range(SONG_STEPS // SONG_CHUNK):
        out = model.run(SONG_CHUNK, record=("post.spikes",))
        assert set(out) == {"post.spikes"}
        spikes_per_chunk.append(int(out["post.spikes"].sum().item()))
    assert model.t == SONG_STEPS
    w = weight.detach().double().numpy().ravel()
    assert w.shape == (1000,) and w.min() >= 0.0 and w.max() <= GMAX

    def shape(x):
        hist, _ = np.histogram(x, bins=ref["bins"], range=(0.0, GMAX))
        return {"hist": hist / len(x), "below": float(np.mean(x < 0.1 * GMAX)),
                "above": float(np.mean(x > 0.9 * GMAX)),
                "middle": float(np.mean((x >= 0.2 * GMAX) & (x <= 0.8 * GMAX)))}

    start, end = shape(w0), shape(w)
    brian2 = {"below": ref["frac_below_0.1_gmax"], "above": ref["frac_above_0.9_gmax"],
              # bins 4 .. 15 of 20: [0.2, 0.8] gmax
              "middle": sum(ref["hist_fraction"][4:16])}
    # It started uniform: ~0.1 at each end, ~0.6 in the middle.
    assert start["below"] < 0.15 and start["above"] < 0.15 and start["middle"] > 0.5
    for key in ("below", "above", "middle"):
        assert abs(end[key] - brian2[key]) <= SONG_TOLERANCE[key], \
            f"{key}: snnc {end[key]:.3f}, Brian2 {brian2[key]:.3f}"
    # U-shaped: the two outer bins are the largest, every middle bin holds less than
    # half of the smaller of them (as in Brian2's histogram: at most 45 against 124).
    hist = end["hist"]
    outer = min(hist[0], hist[-1])
    assert outer > max(hist[1:-1])
    assert max(hist[4:16]) < 0.5 * outer, hist
    # The output rate settles: Brian2's over the last 10 s, below the first 10 s.
    rates = [n / (SONG_CHUNK * cls.dt_ms / 1000.0) for n in spikes_per_chunk]
    last = rates[-1]
    assert abs(last - ref["output_rate_last_10s_hz"]) <= SONG_TOLERANCE["rate_last_10s_hz"], \
        f"last 10 s: snnc {last:.1f} Hz, Brian2 {ref['output_rate_last_10s_hz']:.1f} Hz"
    assert rates[0] > 1.2 * last, rates


# ====================================================================== SpikingFlow: references
# Plain torch, one step at a time, as SpikingFlow's code does it (spikes are torch.bool,
# currents and weights float; the references run in float64, snnc in float32).

class SpikingFlowNode:
    """SpikingFlow's clock-driven IFNode / LIFNode (document: neuron.BaseNode, IFNode,
    LIFNode.forward): the spike of a crossing comes out one step later; the voltage is
    clipped to [v_reset, v_threshold]."""

    def __init__(self, r: float, v_threshold: float = 1.0, v_reset: float = 0.0,
                 tau: float | None = None):
        self.r, self.v_threshold, self.v_reset, self.tau = r, v_threshold, v_reset, tau
        self.v = torch.full((1,), v_reset, dtype=torch.float64)
        self.next_out_spike = torch.zeros(1, dtype=torch.bool)

    def __call__(self, i: torch.Tensor) -> torch.Tensor:
        out_spike = self.next_out_spike
        self.v[out_spike] = self.v_reset                      # reset last step's crossings
        if self.tau is None:                                  # IFNode: dV/dt = R I
            self.v += self.r * i
        else:                                                 # LIFNode
            v_decay = -(self.v - self.v_reset)
            self.v += (self.r * i + v_decay) / self.tau
        self.next_out_spike = self.v >= self.v_threshold
        self.v[self.next_out_spike] = self.v_threshold
        self.v[self.v < self.v_reset] = self.v_reset
        return out_spike


def spike_current(spike: torch.Tensor, amplitude: float) -> torch.Tensor:
    """tf.SpikeCurrent: the spikes as 0/1 floats times amplitude."""
    return spike.to(torch.float64) * amplitude


def linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """connection.Linear: y = x W^T (w is [out, in])."""
    return torch.matmul(x, w.t())


class ConstantDelay:
    """connection.ConstantDelay(delay_time=1) as STDPModule uses it between its modules.
    The document only says that the module's input at t gives its output at t + 3dt; the
    code of that release keeps a list and returns `queue.pop()`, the entry it just
    appended, once the list is longer than delay_time: zeros on the first call, then the
    input itself. `fifo=True` is the documented delay (pop(0)). Figure 4-5 tells them
    apart: its post spikes at 138 and 152 come from the code's behaviour (the FIFO gives
    137 and 151), see test_stdp_module_reference_draws_figures_4_5_and_4_6."""

    def __init__(self, fifo: bool = False):
        self.queue: list[torch.Tensor] = []
        self.fifo = fifo

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.queue.append(x)
        if len(self.queue) > 1:
            return self.queue.pop(0) if self.fifo else self.queue.pop()
        return torch.zeros_like(x)


def f_w_module(w: torch.Tensor) -> torch.Tensor:
    """STDPModule's / STDPUpdater's default weight function."""
    return torch.abs(w) + 1e-6


def f_w_updater(w: torch.Tensor) -> torch.Tensor:
    """The weight function of the STDPUpdater example."""
    w_abs = w.abs()
    return w_abs / (w_abs.sum() + 1e-6)


def module_pattern(steps: int = 200) -> torch.Tensor:
    """The STDPModule example's pre spikes [T, 2]: for t < 100 both on even steps; from
    t = 100 only pre_spike[1], on every step."""
    pattern = torch.zeros(steps, 2, dtype=torch.bool)
    for t in range(steps):
        if t < 100:
            pattern[t] = t % 2 == 0
        else:
            pattern[t, 1] = True
    return pattern


def updater_pattern(generator: torch.Generator, steps: int = 500) -> torch.Tensor:
    """The STDPUpdater example's pre spikes [T, 2]: for t < 250 both on even steps and at
    random (torch.randint(0, 2)) on odd steps; from t = 250 only pre_spike[1], on even
    steps. The tutorial draws from the global generator unseeded: any draw is one."""
    pattern = torch.zeros(steps, 2, dtype=torch.bool)
    for t in range(steps):
        if t < 250:
            if t % 2 == 0:
                pattern[t] = True
            else:
                pattern[t] = torch.randint(low=0, high=2, size=[2], generator=generator).bool()
        elif t % 2 == 0:
            pattern[t, 1] = True
    return pattern


def spikingflow_stdp_module(pattern: torch.Tensor, w: torch.Tensor, *, fifo: bool = False,
                            tau_pre: float = 10.0, tau_post: float = 10.0,
                            learning_rate: float = 1e-3, f_w=f_w_module, r: float = 50.0,
                            amplitude: float = 0.5):
    """The STDPModule example: Simulator() with one STDPModule(SpikeCurrent(0.5),
    Linear(2, 1), IFNode(r=50, v_threshold=1), tau_pre=10, tau_post=10,
    learning_rate=1e-3). Per step (STDPModule.forward): the pre trace decays and jumps
    (trace += -trace / tau + spike), w -= lr f_w(w) trace_post, the spikes run through
    SpikeCurrent -> ConstantDelay -> Linear -> ConstantDelay -> IFNode, the post trace
    decays and jumps, w += lr f_w(w) trace_pre. The weight changes on every step, not
    only where a spike arrives (the document's text says "when a pre spike arrives"; its
    figure 4-6 is what every-step updates give: w[0] falls once pre_spike[0] is silent).
    Returns post spikes [T], v [T], w [T, 1, 2] after each step, and the weights [T, 1, 2]
    each step's Linear computed with (after that step's `w -=`)."""
    w = w.to(torch.float64).clone()
    node, delay_in, delay_out = SpikingFlowNode(r), ConstantDelay(fifo), ConstantDelay(fifo)
    trace_pre, trace_post = 0, 0            # ints until the first spikes arrive, as there
    posts, vs, ws, used = [], [], [], []
    for pre_spike in pattern:
        trace_pre = trace_pre - trace_pre / tau_pre + pre_spike.to(torch.float64)
        if isinstance(trace_post, torch.Tensor):           # update_param(pre=True)
            w = w - (learning_rate * f_w(w).t() * trace_post.view(-1, w.shape[0]).mean(0)).t()
        used.append(w.clone())
        post_spike = node(delay_out(linear(delay_in(spike_current(pre_spike, amplitude)), w)))
        trace_post = trace_post - trace_post / tau_post + post_spike.to(torch.float64)
        if isinstance(trace_post, torch.Tensor):           # update_param(pre=False)
            w = w + learning_rate * f_w(w) * trace_pre.view(-1, w.shape[1]).mean(0)
        posts.append(post_spike.clone())
        vs.append(node.v.clone())
        ws.append(w.clone())
    return torch.cat(posts), torch.cat(vs), torch.stack(ws), torch.stack(used)


def spikingflow_stdp_updater(pattern: torch.Tensor, w: torch.Tensor, *,
                             tau_pre: float = 50.0, tau_post: float = 100.0,
                             learning_rate: float = 1e-1, f_w=f_w_updater, r: float = 10.0,
                             tau: float = 100.0, amplitude: float = 0.5):
    """The STDPUpdater example: Simulator() with SpikeCurrent(0.5), Linear(2, 1),
    LIFNode(r=10, v_threshold=1, tau=100) as three pipeline stages (document:
    simulating.Simulator.step, fast=True: the first step fills the pipeline with the first
    input, later steps move every stage on by one, last stage first), then
    updater.update(linear, pre_spike, post_spike) with tau_pre=50, tau_post=100, lr=0.1
    and f_w = |w| / (sum |w| + 1e-6): both traces decay and jump, w += lr f_w(w)
    trace_pre, then w -= lr f_w(w) trace_post, on every step. Returns post [T], v [T] and
    w [T, 1, 2] after each step."""
    w = w.to(torch.float64).clone()
    node = SpikingFlowNode(r, tau=tau)
    stages = [lambda x: spike_current(x, amplitude), lambda x: linear(x, w), node]
    pipeline: list[torch.Tensor | None] = [None] * (len(stages) + 1)
    trace_pre, trace_post = 0, 0
    posts, vs, ws = [], [], []
    for t, pre_spike in enumerate(pattern):
        pipeline[0] = pre_spike
        if t == 0:                                             # fast: run the whole pipeline
            for i, stage in enumerate(stages):
                pipeline[i + 1] = stage(pipeline[i])
        else:
            for i in range(len(stages), 0, -1):
                pipeline[i] = None if pipeline[i - 1] is None else stages[i - 1](pipeline[i - 1])
        post_spike = pipeline[-1]
        trace_pre = trace_pre - trace_pre / tau_pre + pre_spike.to(torch.float64)
        trace_post = trace_post - trace_post / tau_post + post_spike.to(torch.float64)
        w = w + learning_rate * f_w(w) * trace_pre.view(-1, w.shape[1]).mean(0)
        w = (w.t() - learning_rate * f_w(w).t() * trace_post.view(-1, w.shape[0]).mean(0)).t()
        posts.append(post_spike.clone())
        vs.append(node.v.clone())
        ws.append(w.clone())
    return torch.cat(posts), torch.cat(vs), torch.stack(ws)


def trace_stdp(pattern: torch.Tensor, w: torch.Tensor, node: SpikingFlowNode, *, delay: int,
               amplitude: float, tau_pre: float, tau_post: float, a_pre: float,
               a_post: float, w_min: float, w_max: float):
    """The tutorial's network learning by the document's trace formulas: dx_j/dt = -x_j /
    tau_x + sum delta(t - t_j) (solved exactly over a step: x *= exp(-1 / tau)), and
    where a pre spike arrives w changes by a_post y_i, where a post spike comes by a_pre
    x_j (F(w) constant), clipped to [w_min, w_max]. A pre spike reaches the neuron
    (SpikeCurrent, Linear with the weights of the step) `delay` steps after it is sent;
    a pre and a post spike of one step count in that order (Brian2's). Returns post [T],
    v [T] and w [T, 1, 2] after each step."""
    w = w.to(torch.float64).clone()
    x_pre, x_post = torch.zeros_like(w), torch.zeros(w.shape[0], dtype=torch.float64)
    decay_pre, decay_post = math.exp(-1.0 / tau_pre), math.exp(-1.0 / tau_post)
    posts, vs, ws = [], [], []
    for t in range(len(pattern)):
        arrived = pattern[t - delay] if t >= delay else torch.zeros_like(pattern[0])
        post_spike = node(linear(spike_current(arrived, amplitude), w))
        x_pre, x_post = x_pre * decay_pre, x_post * decay_post
        at_pre = arrived[None, :].expand_as(w)
        x_pre = torch.where(at_pre, x_pre + 1, x_pre)
        w = torch.where(at_pre, (w + a_post * x_post[:, None]).clamp(w_min, w_max), w)
        at_post = post_spike[:, None].expand_as(w)
        x_post = torch.where(post_spike, x_post + 1, x_post)
        w = torch.where(at_post, (w + a_pre * x_pre).clamp(w_min, w_max), w)
        posts.append(post_spike.clone())
        vs.append(node.v.clone())
        ws.append(w.clone())
    return torch.cat(posts), torch.cat(vs), torch.stack(ws)


# ====================================================================== the document's figures
# Read off the PNGs of that release (docs/source/_static/tutorials/4-5.png, 4-6.png,
# 4-7.png of fangwei123456/spikingjelly at 37b32606, the pictures of the document) from
# the pixel positions of the curves and bars against the axis ticks: one pixel is 1.8e-5
# of weight in 4-6, 0.38 steps in 4-5 and 0.76 steps in 4-7.
FIGURE_4_5_SPIKES = [41, 49, 85, 91, 138, 152, 180, 185]   # the bars drawn (not all are:
#                                                         the document says lone ones vanish)
FIGURE_4_6_W = {0: (0.00712, 0.00326), 10: (0.00730, 0.00335), 25: (0.00768, 0.00352),
                50: (0.00842, 0.00385), 75: (0.00923, 0.00423), 100: (0.01004, 0.00460),
                110: (0.01015, 0.00490), 125: (0.01008, 0.00550), 150: (0.00978, 0.00681),
                175: (0.00940, 0.00838), 199: (0.00898, 0.01014)}
FIGURE_4_6_W_INIT = (0.0071, 0.00325)                       # the curves' start
FIGURE_4_6_TOLERANCE = 6e-5                                 # ~3 pixels (a line is 2 wide)
# Figure 4-7 (random inputs, so features only): post spikes from step ~15 to ~253, then
# none; w[0] ends at -163, w[1] near 0 (-0.0); w[1] peaks at ~40 before t = 250.


def figure_4_6_features(ws: torch.Tensor) -> None:
    for t, (w0, w1) in FIGURE_4_6_W.items():
        assert ws[t, 0, 0].item() == pytest.approx(w0, abs=FIGURE_4_6_TOLERANCE), t
        assert ws[t, 0, 1].item() == pytest.approx(w1, abs=FIGURE_4_6_TOLERANCE), t


def figure_4_7_features(posts: torch.Tensor, ws: torch.Tensor) -> bool:
    fired = posts.nonzero().flatten().tolist()
    return (bool(fired) and 10 <= fired[0] <= 20 and fired[-1] < 300
            and ws[-1, 0, 0].item() < -100 and abs(ws[-1, 0, 1].item()) < 5)


def test_stdp_module_reference_draws_figures_4_5_and_4_6():
    """The STDPModule reference, from the figure's initial weights, draws figure 4-6 (both
    weights grow for 100 steps; then w[0] falls and w[1] grows to 0.0101) and fires at
    every post spike figure 4-5 shows. With the documented t + 3dt (a FIFO delay) the
    weights are the same to the eye but two of the drawn spikes come a step early."""
    posts, _, ws, _ = spikingflow_stdp_module(module_pattern(),
                                              torch.tensor([FIGURE_4_6_W_INIT]))
    figure_4_6_features(ws)
    fired = set(posts.nonzero().flatten().tolist())
    assert set(FIGURE_4_5_SPIKES) <= fired
    fifo_posts, _, fifo_ws, _ = spikingflow_stdp_module(module_pattern(),
                                                        torch.tensor([FIGURE_4_6_W_INIT]),
                                                        fifo=True)
    figure_4_6_features(fifo_ws)
    fifo_fired = set(fifo_posts.nonzero().flatten().tolist())
    assert not set(FIGURE_4_5_SPIKES) <= fifo_fired
    assert {137, 151} <= fifo_fired and not {138, 152} & fifo_fired


def test_stdp_updater_reference_draws_figure_4_7():
    """The STDPUpdater reference, from Linear's initial draw (torch.rand([1, 2]) / 128 in
    that release) on 20 draws of the random inputs: the post neuron fires from step
    10-20 on and stops before 300; w[0] ends below -100 and w[1] near 0, as in figure
    4-7. About 1 draw in 10 does not (mostly w[0] -> 0, w[1] -> 20, firing to the end:
    3 of these 20, 3 of the next 40), so 15 of 20 must."""
    matches, first = 0, []
    for seed in range(20):
        generator = torch.Generator().manual_seed(1000 + seed)
        w = torch.rand([1, 2], generator=generator) / 128
        posts, _, ws = spikingflow_stdp_updater(updater_pattern(generator), w)
        matches += figure_4_7_features(posts, ws)
        first.append(posts.nonzero().flatten()[0].item())
    assert matches >= 15
    assert all(10 <= t <= 20 for t in first), first


# ====================================================================== snnc's samples
@functools.cache
def sample_class(network: str):
    return snnc_compile(SAMPLES / "spikingflow_stdp.snn", network=network, backend="clock")


def run_sample(cls, pattern: torch.Tensor, w: torch.Tensor | None, seed: int = 1,
               whole: bool = True, dtype: torch.dtype = torch.float32):
    """A network from initial weights `w` (None: its own draw after manual_seed(seed)), in
    `dtype`, step by step: post spikes [T], v [T], w [T, 1, 2] after each step, and the
    initial w; then (`whole`) a second instance run() over the whole pattern (the compiled
    loop where there is a C compiler): its post spikes [T] and final weights (else None,
    None)."""
    steps = len(pattern)
    assert cls.steps == steps
    given = pattern.to(dtype)[None]                       # input pattern[T, 2], batch 1
    torch.manual_seed(seed)
    sim = cls().to(dtype)
    weight = sim.connection("pre->post").weight
    with torch.no_grad():
        if w is not None:
            weight.copy_(w)
    w_init = weight.detach().clone()
    posts, vs, ws = [], [], []
    for _ in range(steps):
        sent = sim.step(pattern=given)
        posts.append(sent["post"][0].clone())
        vs.append(sim.populations["post"].states["v"][0].clone())
        ws.append(weight.detach().clone())
    stepped = torch.cat(posts), torch.cat(vs), torch.stack(ws), w_init
    if not whole:
        return (*stepped, None, None)
    again = cls().to(dtype)
    with torch.no_grad():
        again.connection("pre->post").weight.copy_(w_init)
    if native.c_compiler() is not None:
        assert compiled.loop_for(again) is not None    # run() is the compiled loop's
    out = again.run(steps, pattern=given)
    return (*stepped, out["post.spikes"][:, 0, 0],
            again.connection("pre->post").weight.detach().clone())


def initial_weights(network: str, init: str, generator: torch.Generator):
    """The tutorial's initial weights (figure 4-6's; Linear's rand / 128 for the
    updater), or None: the sample's own draw (uniform(0, 1/128) after manual_seed(1))."""
    if init == "sample":
        return None
    if network == "stdp_module":
        return torch.tensor([FIGURE_4_6_W_INIT])
    return torch.rand([1, 2], generator=generator) / 128


PATTERNS = {"stdp_module": lambda generator: module_pattern(),
            "stdp_updater": updater_pattern}


def tutorial(network: str, pattern: torch.Tensor, w: torch.Tensor):
    """The tutorial's reference of the sample's network from `w`: post spikes [T], v [T],
    and the weights snnc's must hold after each step [T', 1, 2]. STDPModule's `w -=` of
    step t + 1 comes first in that step, before anything reads w; snnc's rule does it at
    the end of step t, so after step t its weights are those the tutorial's Linear
    computes with at step t + 1 (T' = T - 1)."""
    if network == "stdp_module":
        posts, vs, _, used = spikingflow_stdp_module(pattern, w)
        return posts, vs, used[1:]
    return spikingflow_stdp_updater(pattern, w)


def first_post_spike(posts: torch.Tensor) -> int:
    return int(posts.nonzero().flatten()[0])


@pytest.mark.parametrize("init", ["tutorial", "sample"])
@pytest.mark.parametrize("network", sorted(PATTERNS))
def test_sample_learns_as_the_tutorial_step_by_step(network, init):
    """The sample in float64 against the tutorial's reference on the same input spikes,
    from the tutorial's initial weights or the sample's own draw: the same post spikes on
    every step (step() and run()), the same weights after every step and the same
    voltage (the updater's from its first post spike on: see
    test_stdp_updater_sample_fills_its_pipeline_on_the_first_step), to 1e-12."""
    generator = torch.Generator().manual_seed(1000)
    w = initial_weights(network, init, generator)
    pattern = PATTERNS[network](generator)
    posts, vs, ws, w_init, run_posts, run_w = run_sample(sample_class(network), pattern, w,
                                                         dtype=torch.float64)
    ref_posts, ref_vs, ref_ws = tutorial(network, pattern, w_init)
    assert torch.equal(posts.bool(), ref_posts)
    assert torch.equal(run_posts.bool(), ref_posts)
    scale = max(1.0, ref_ws.abs().max().item())
    assert (ws[:len(ref_ws)] - ref_ws).abs().max().item() <= 1e-12 * scale
    assert (run_w - ws[-1]).abs().max().item() <= 1e-12 * scale
    start = 0 if network == "stdp_module" else first_post_spike(ref_posts)
    assert (vs - ref_vs)[start:].abs().max().item() <= 1e-12
    # the post neuron fires and the rule has work to do
    assert ref_posts.sum() > 20 and (ref_ws[-1] != w_init).all()


def test_stdp_module_sample_draws_figure_4_6():
    """The sample as the tutorial ran it (float32), from figure 4-6's initial weights: its
    weights are the figure's curves and it fires at every post spike figure 4-5 shows."""
    posts, _, ws, _, _, _ = run_sample(sample_class("stdp_module"), module_pattern(),
                                       torch.tensor([FIGURE_4_6_W_INIT]), whole=False)
    figure_4_6_features(ws.double())
    assert set(FIGURE_4_5_SPIKES) <= set(posts.nonzero().flatten().tolist())


def test_stdp_updater_sample_draws_figure_4_7():
    """The first 8 draws of test_stdp_updater_reference_draws_figure_4_7 (7 of which the
    reference draws as figure 4-7), of which 6 must, in float32 as the tutorial ran."""
    matches = 0
    for seed in range(8):
        generator = torch.Generator().manual_seed(1000 + seed)
        w = torch.rand([1, 2], generator=generator) / 128
        posts, _, ws, _, _, _ = run_sample(sample_class("stdp_updater"),
                                           updater_pattern(generator), w, whole=False)
        matches += figure_4_7_features(posts.double(), ws.double())
    assert matches >= 6


@pytest.mark.xfail(strict=True, reason=(
    "STDPUpdater's simulator fills its pipeline on the first step with the first input "
    "(Simulator.step with fast=True), so its LIF takes pre_spike[0]'s current on steps 0 "
    "and 1 as well; the sample's pipeline (delay 1, then the neuron a step late) holds "
    "nothing before step 2, and no construct hands a neuron the current of a spike before "
    "it has reached it: the voltage lies below the tutorial's by that input (about 1e-3) "
    "until the first post spike resets both (spikes and weights are the tutorial's)"))
def test_stdp_updater_sample_fills_its_pipeline_on_the_first_step():
    generator = torch.Generator().manual_seed(1000)
    w = initial_weights("stdp_updater", "tutorial", generator)
    pattern = updater_pattern(generator)
    _, vs, _, w_init, _, _ = run_sample(sample_class("stdp_updater"), pattern, w,
                                        whole=False, dtype=torch.float64)
    _, ref_vs, _ = tutorial("stdp_updater", pattern, w_init)
    assert (vs - ref_vs).abs().max().item() <= 1e-12


# ====================================================================== the document's text
# The tutorial's networks as the document's text reads (a weight changes when a spike
# arrives), written with `learn stdp`: a_pre = lr, a_post = -lr, w in [0, 1e9], `delay 2`
# for the pipeline (the documented t + 3dt), the stdlib's SFIF / SFLIF for the nodes,
# Linear's weights as uniform(0, 1).
DOCUMENT_READING = """
network stdp_module {
    steps = 200
    backend = clock
    input pattern[200, 2]
    encoder pre = periodic(pattern)
    population post[1] = SFIF(r = 50.0, v_threshold = 1.0, v_reset = 0.0)
    connect pre -> post : dense(w = uniform(0, 1)) delay 2
        via spike_current(amplitude = 0.5)
        learn stdp(tau_pre = 10.0, tau_post = 10.0, a_pre = 1e-3, a_post = -1e-3,
                   w_min = 0, w_max = 1e9)
    monitor post.spikes, post.v
}

network stdp_updater {
    steps = 500
    backend = clock
    input pattern[500, 2]
    encoder pre = periodic(pattern)
    population post[1] = SFLIF(r = 10.0, tau = 100.0, v_threshold = 1.0, v_reset = 0.0)
    connect pre -> post : dense(w = uniform(0, 1)) delay 2
        via spike_current(amplitude = 0.5)
        learn stdp(tau_pre = 50.0, tau_post = 100.0, a_pre = 1e-1, a_post = -1e-1,
                   w_min = 0, w_max = 1e9)
    monitor post.spikes, post.v
}
"""

DOCUMENT_NETWORKS = {
    "stdp_module": dict(node=lambda: SpikingFlowNode(50.0),
                        rule=dict(delay=2, amplitude=0.5, tau_pre=10.0, tau_post=10.0,
                                  a_pre=1e-3, a_post=-1e-3, w_min=0.0, w_max=1e9)),
    "stdp_updater": dict(node=lambda: SpikingFlowNode(10.0, tau=100.0),
                         rule=dict(delay=2, amplitude=0.5, tau_pre=50.0, tau_post=100.0,
                                   a_pre=1e-1, a_post=-1e-1, w_min=0.0, w_max=1e9)),
}


@pytest.fixture(scope="module")
def document_reading(tmp_path_factory):
    path = tmp_path_factory.mktemp("document") / "spikingflow_stdp_text.snn"
    path.write_text(DOCUMENT_READING, encoding="utf-8")
    return {network: snnc_compile(path, network=network, backend="clock")
            for network in DOCUMENT_NETWORKS}


@pytest.mark.parametrize("init", ["tutorial", "sample"])
@pytest.mark.parametrize("network", sorted(DOCUMENT_NETWORKS))
def test_the_document_s_text_learns_by_the_trace_formulas_step_by_step(document_reading,
                                                                       network, init):
    """The document's reading against `trace_stdp` on the same input spikes, from the
    tutorial's initial weights or the network's own draw (uniform(0, 1) after
    manual_seed(1): 0.40 and 0.73, large enough for the updater's LIF to fire): the same
    post spikes on every step (step() and run()), and voltages and weights to float32
    rounding: the reference is float64, and snnc's float32 weights take up to ~250
    rounded updates (the updater's reach 63 with 4.6e-5 of difference, the module's 0.84
    with 3.4e-7), hence 4e-6 of the largest weight (~30 float32 ulps); a missed or
    doubled update is 1e-3 of it or more."""
    spec = DOCUMENT_NETWORKS[network]
    generator = torch.Generator().manual_seed(1000)
    w = initial_weights(network, init, generator)
    pattern = PATTERNS[network](generator)
    posts, vs, ws, w_init, run_posts, run_w = run_sample(document_reading[network], pattern, w)
    ref_posts, ref_vs, ref_ws = trace_stdp(pattern, w_init, spec["node"](), **spec["rule"])
    assert torch.equal(posts.bool(), ref_posts)
    assert torch.equal(run_posts.bool(), ref_posts)
    scale = max(1.0, ref_ws.abs().max().item())
    assert (vs.double() - ref_vs).abs().max().item() <= 1e-5
    assert (ws.double() - ref_ws).abs().max().item() <= 4e-6 * scale
    assert (run_w.double() - ref_ws[-1]).abs().max().item() <= 4e-6 * scale
    if init == "sample":                 # the post neuron fires: the rule has work to do
        assert ref_posts.sum() > 20 and (ref_ws[-1] != ref_ws[0]).all()
