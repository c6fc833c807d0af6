"""The event backend's runtime: spike times in, Tempotron voltages out, all steps at once.

A network on the event backend (LANGUAGE.md §6) is a spike-response model: its encoder
gives each input neuron one spike time, each time becomes that input's post-synaptic
potential (PSP) trace over the T steps of the run, the connection's linear ops (flatten,
dense, ...) map the traces to the voltage of the Tempotrons, and a readout reads the
voltage. Nothing loops over time: every step is computed at once, in chunks of steps
that bound the memory.

Spike times
    Floats, in steps from the start of the run (0 is the first step), one per input
    neuron, laid out like the neurons: [B, *shape]. A time need not be an integer (the
    kernel is evaluated at t - t_i for the steps t = 0 .. T-1). "No spike" is NO_SPIKE
    (-1.0); every negative time (and NaN) counts as none, see `spiked`.

The PSP kernel (Gütig & Sompolinsky 2006; the seed's Tempotron)
    K(s) = V0 (exp(-s / tau) - exp(-s / tau_s)) for s >= 0, 0 for s < 0, with V0 making
    its peak 1 (`psp_kernel_peak`). K(0) = 0, so an input that arrives at step t adds
    nothing at t itself and first counts at t + 1 (the seed's kernel, `t >= t_i`, gives
    the same values; only the derivative in t_i at s = 0 is a choice: see `psp_traces`).
    It is the voltage of a LIF neuron (time constant tau) fed by an exponentially
    decaying current (time constant tau_s) that jumps by V0 (1/tau_s - 1/tau) at the
    spike: v' = -v / tau + I, I' = -I / tau_s (tests/test_event_runtime.py simulates it).
    It is computed as V0' exp(-s / slow) (-expm1(-s (1/fast - 1/slow))), slow and fast
    being the larger and the smaller of tau and tau_s and V0' = |V0|: the same values, but
    no cancellation when tau is close to tau_s and no overflow when tau_s > tau.

Memory
    A chunk is as many steps as fit CHUNK_BYTES (at least one step) of traces
    [steps, B, *shape]. `psp_traces` returns all T steps (T·B·inputs elements, which it
    cannot avoid) plus one chunk-sized temporary while it runs; its backward keeps only
    the times. `psp_map` applies the connection to one chunk of traces at a time and
    recomputes the chunk in the backward (torch.utils.checkpoint), so neither pass ever
    holds more than one chunk of traces: its peak is the output [T, B, *out] (twice,
    while the chunks are concatenated) plus about 3 chunks (traces, a temporary, their
    gradient in the backward) plus what `fn` itself keeps of one chunk — for MNIST with
    16 tuning curves (B = 128, 12 544 inputs, T = 100, float32) one step of traces is
    6.4 MB, a chunk of 64 MiB is 10 steps, and the 642 MB of all traces never exist.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint as _checkpoint

from snnc.runtime.encoders import Encoder

__all__ = [
    "CHUNK_BYTES", "NO_SPIKE", "GaussianTuning", "Latency", "chunk_steps", "latency_times",
    "psp_kernel", "psp_kernel_peak", "psp_map", "psp_traces", "spiked", "tempotron_readout",
]

# "No spike". Finite, so that nothing computed from a time ever becomes inf or NaN: the
# kernel's argument t - NO_SPIKE is an ordinary number (masked to 0 afterwards), and in
# a backward no 0 · inf = NaN can appear, as it would with +inf through `where` (the
# masked branch's gradient is 0, times the derivative of exp at inf). Negative, so that
# it is no step of any run and `t >= 0` tells a spike; -1 is also what the seed's
# encoder gives for "no spike" and what its Tempotron reads as none (`t < 0`).
NO_SPIKE = -1.0

# The bytes of traces one chunk of steps may hold (see Memory above).
CHUNK_BYTES = 64 << 20


def spiked(times: torch.Tensor) -> torch.Tensor:
    """Where a spike time is a spike (bool, same shape): t >= 0. NO_SPIKE, any other
    negative time and NaN are none; +inf is a spike that never arrives."""
    return times >= 0


# ----------------------------------------------------------------------------- encoders


class GaussianTuning(Encoder):
    """Bohte, Kok & La Poutré (2002)'s Gaussian receptive fields, as the seed gives them:
    m Gaussians per value with centres mu_j = x_min + (2j - 3)/2 · (x_max - x_min)/(m - 2)
    (j = 1 .. m) and one width sigma = (x_max - x_min) / (beta (m - 2)), beta = 1.5; a
    value x gives neuron j the spike time t_j = round((1 - g_j(x)) · t_max) with
    g_j(x) = exp(-(x - mu_j)² / (2 sigma²)) in [0, 1], and a time of t_max or later
    (too late) is NO_SPIKE. round is torch.round (half to even).

    x [B, *shape] -> times [B, *shape, m] (floats, whole steps or NO_SPIKE); x_min and
    x_max are numbers or tensors broadcastable to `shape` (one range per feature, as the
    seed's [n] bounds). Values outside [x_min, x_max] are encoded by the same formula.
    Rounded, the times carry no gradient (the result is detached). The ranges are kept as
    buffers outside the state_dict: an encoder has no state of its own.
    """

    def __init__(self, shape: tuple[int, ...] = (), m: int = 16,
                 x_min: float | torch.Tensor = 0.0, x_max: float | torch.Tensor = 1.0,
                 t_max: float = 100):
        super().__init__(shape)
        if int(m) != m or m <= 2:
            raise ValueError(f"gaussian_tuning needs m > 2 curves (its widths divide by "
                             f"m - 2), got {m}")
        lower = torch.as_tensor(x_min, dtype=torch.float64)
        upper = torch.as_tensor(x_max, dtype=torch.float64)
        if not bool(torch.isfinite(lower).all() & torch.isfinite(upper).all()
                    & (lower < upper).all()):
            raise ValueError("gaussian_tuning needs finite x_min < x_max")
        if not (math.isfinite(t_max) and t_max > 0):
            raise ValueError(f"gaussian_tuning needs t_max > 0, got {t_max}")
        torch.broadcast_shapes(lower.shape, upper.shape, self.shape)  # raises if not
        self.m, self.t_max = int(m), t_max
        self.register_buffer("x_min", lower, persistent=False)
        self.register_buffer("x_max", upper, persistent=False)

    def centres_and_width(self, dtype: torch.dtype = torch.float64
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """mu [*, m] and sigma [*, 1] (* broadcastable to `shape`), in `dtype`."""
        lower = self.x_min.to(dtype).unsqueeze(-1)
        width = (self.x_max.to(dtype) - self.x_min.to(dtype)).unsqueeze(-1)
        j = torch.arange(1, self.m + 1, dtype=dtype, device=lower.device)
        mu = lower + (2 * j - 3) / 2 * width / (self.m - 2)
        sigma = width / (1.5 * (self.m - 2))
        return mu, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"gaussian_tuning expects [B, {', '.join(map(str, self.shape))}]"
                             f", got {list(x.shape)}")
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        with torch.no_grad():
            mu, sigma = self.centres_and_width(dtype)
            g = torch.exp(-(x.to(dtype).unsqueeze(-1) - mu).square() / (2 * sigma.square()))
            t = torch.round((1 - g) * self.t_max)
            return t.masked_fill_(t >= self.t_max, NO_SPIKE)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, m={self.m}, t_max={self.t_max}"


def latency_times(x: torch.Tensor, t_max: float = 20, mode: str = "linear",
                  steps: int | None = None) -> torch.Tensor:
    """The `latency` encoder in time form: the step of each element's one spike, the one
    at which `encoders.Latency` (the same x, t_max and mode) emits it. Values are clipped
    to [0, 1]; linear: t = (t_max - 1)(1 - x), log: t = (t_max - 1) - ln(alpha x + 1)
    with alpha = exp(t_max - 1) - 1, then rounded (torch.round). x [B, *shape] -> times
    [B, *shape] (floats, whole steps). With `steps`, a time at or past `steps` (a step
    the run never reaches, where the encoder emits nothing) is NO_SPIKE; a NaN value
    gives NO_SPIKE too. Detached, like the encoder's spikes."""
    if mode not in ("linear", "log"):
        raise ValueError(f"latency mode is 'linear' or 'log', got {mode!r}")
    with torch.no_grad():
        value = x.clamp(0, 1)
        if mode == "linear":
            t = (t_max - 1) * (1 - value)
        else:
            alpha = math.exp(t_max - 1) - 1
            t = (t_max - 1) - torch.log(alpha * value + 1)
        t = t.clamp(min=0).round()
        none = ~spiked(t) if steps is None else ~spiked(t) | (t >= steps)
        return t.masked_fill_(none, NO_SPIKE)


class Latency(Encoder):
    """The `latency` encoder in time form as a module: x [B, *shape] -> its spike times
    [B, *shape] (`latency_times`; times past the run stay, as no step reaches them)."""

    def __init__(self, shape: tuple[int, ...] = (), t_max: float = 20, mode: str = "linear"):
        super().__init__(shape)
        if mode not in ("linear", "log"):
            raise ValueError(f"latency mode is 'linear' or 'log', got {mode!r}")
        self.t_max, self.mode = t_max, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return latency_times(x, self.t_max, self.mode)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, t_max={self.t_max}, mode={self.mode}"


# --------------------------------------------------------------------------- PSP kernel


def _constants(tau: float, tau_s: float) -> tuple[float, float, float, float]:
    """(slow, fast, delta = 1/fast - 1/slow, |V0|) of the kernel; ValueError if none."""
    if not all(isinstance(c, (int, float)) and math.isfinite(c) and c > 0
               for c in (tau, tau_s)):
        raise ValueError(f"the PSP kernel needs finite tau, tau_s > 0, got {tau}, {tau_s}")
    slow, fast = max(tau, tau_s), min(tau, tau_s)
    delta = 1 / fast - 1 / slow
    if not delta > 0:
        raise ValueError(f"the PSP kernel needs tau != tau_s, got {tau}, {tau_s}")
    t_peak = math.log1p((slow - fast) / fast) / delta  # = tau tau_s ln(tau/tau_s)/(tau - tau_s)
    scale = 1 / (math.exp(-t_peak / slow) * -math.expm1(-t_peak * delta))
    if not math.isfinite(scale):
        raise ValueError(f"the PSP kernel of tau = {tau}, tau_s = {tau_s} has no finite peak")
    return slow, fast, delta, scale


def psp_kernel_peak(tau: float, tau_s: float) -> float:
    """V0 = 1 / (exp(-t_peak / tau) - exp(-t_peak / tau_s)), t_peak = tau tau_s
    ln(tau / tau_s) / (tau - tau_s) the time of the kernel's peak: the factor that makes
    the peak of K(s) = V0 (exp(-s / tau) - exp(-s / tau_s)) 1. Negative when tau_s > tau
    (then both the difference and V0 are), never defined for tau == tau_s."""
    slow, _, _, scale = _constants(tau, tau_s)
    return scale if tau == slow else -scale


def psp_kernel(s: torch.Tensor, tau: float, tau_s: float) -> torch.Tensor:
    """K(s) elementwise (0 for s <= 0 and NaN): the PSP `s` steps after its spike."""
    slow, _, delta, scale = _constants(tau, tau_s)
    s = torch.nan_to_num(s, nan=0.0).clamp(min=0)
    return scale * torch.exp(-s / slow) * -torch.expm1(-s * delta)


def chunk_steps(times: torch.Tensor, chunk_bytes: int = CHUNK_BYTES) -> int:
    """How many steps of traces of `times` fit `chunk_bytes` (at least 1)."""
    row = max(1, times.numel() * _float_dtype(times).itemsize)
    return max(1, int(chunk_bytes) // row)


def _float_dtype(times: torch.Tensor) -> torch.dtype:
    return times.dtype if times.is_floating_point() else torch.get_default_dtype()


def _chunks(start: int, stop: int, rows: int) -> list[tuple[int, int]]:
    return [(a, min(a + rows, stop)) for a in range(start, stop, rows)] or [(start, stop)]


def _steps(times: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """Steps a .. b-1 as a [b - a, 1, ...] column against times."""
    t = torch.arange(a, b, dtype=times.dtype, device=times.device)
    return t.view(-1, *([1] * times.dim()))


class _Traces(torch.autograd.Function):
    """K(t - t_i) for steps start .. stop-1 and every input: [stop - start, *times.shape].
    Saves only the times; the backward (to the times) recomputes chunk by chunk."""

    @staticmethod
    def forward(ctx, times, start, stop, slow, delta, scale, rows):
        out = times.new_empty(stop - start, *times.shape)
        silent = ~spiked(times)
        for a, b in _chunks(start, stop, rows):
            o = out[a - start:b - start]
            s = torch.sub(_steps(times, a, b), times).clamp_(min=0)
            torch.mul(s, -1 / slow, out=o).exp_()          # exp(-s / slow)
            o.mul_(s.mul_(-delta).expm1_()).mul_(-scale)   # · -expm1(-s delta) · |V0|
            o.masked_fill_(silent, 0)
        ctx.constants = (start, stop, slow, delta, scale, rows)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(times)
        return out

    @staticmethod
    def backward(ctx, grad):
        if grad is None or not ctx.needs_input_grad[0]:
            return (None,) * 7
        (times,) = ctx.saved_tensors
        start, stop, slow, delta, scale, rows = ctx.constants
        # dK(t - t_i)/dt_i = -K'(s), s = t - t_i > 0 (0 at s = 0: the seed's closed form
        # sums over t_i < t only), with
        # K'(s) = |V0| exp(-s/slow) (delta exp(-s delta) + expm1(-s delta) / slow)
        total = torch.zeros_like(times)
        silent = ~spiked(times)
        for a, b in _chunks(start, stop, rows):
            s = torch.sub(_steps(times, a, b), times)
            after = s > 0
            s.clamp_(min=0)
            e = torch.mul(s, -1 / slow).exp_()
            m = s.mul_(-delta).expm1_()
            slope = m.mul(delta + 1 / slow).add_(delta).mul_(e).mul_(scale)  # K'(s)
            slope.masked_fill_(~after | silent, 0)
            total.sub_((grad[a - start:b - start] * slope).sum(0))
        return total, None, None, None, None, None, None


def psp_traces(times: torch.Tensor, steps: int, tau: float, tau_s: float, *,
               chunk_bytes: int = CHUNK_BYTES) -> torch.Tensor:
    """The PSP of every input at every step: times [B, *shape] -> [steps, B, *shape], out[t]
    = K(t - t_i) where input i spiked (0 where it did not, before its spike and at it).

    Computed for all steps at once, chunk_steps(times, chunk_bytes) steps at a time: peak
    memory is the result plus one chunk temporary (the time differences). Differentiable
    in the times (a custom autograd Function that saves only the times and recomputes the
    kernel's slope chunk by chunk: the backward holds the incoming gradient, the times'
    gradient and two chunk temporaries); the derivative at t = t_i is taken from the
    right, 0, as the seed's closed form sums over t_i < t. For the voltage of a layer,
    `psp_map` does not even hold all the traces."""
    steps = _check_steps(steps)
    slow, _, delta, scale = _constants(tau, tau_s)
    times = times.to(_float_dtype(times))
    return _Traces.apply(times, 0, steps, slow, delta, scale, chunk_steps(times, chunk_bytes))


def psp_map(fn: Callable[[torch.Tensor], torch.Tensor], times: torch.Tensor, steps: int,
            tau: float, tau_s: float, *, chunk_bytes: int = CHUNK_BYTES,
            checkpoint: bool = True) -> torch.Tensor:
    """fn(psp_traces(times, steps, tau, tau_s)) without ever holding all the traces: `fn`
    maps a chunk of traces [n, B, *shape] to [n, B, *out] (the connection's linear ops
    over the steps, as a connection applies them in layer mode: each step on its own),
    the chunks' results are concatenated along time -> [steps, B, *out] (map_traces)."""
    slow, _, delta, scale = _constants(tau, tau_s)
    times = times.to(_float_dtype(times))
    rows = chunk_steps(times, chunk_bytes)
    return map_traces(fn, times, steps,
                      lambda t, a, b: _Traces.apply(t, a, b, slow, delta, scale, rows), rows,
                      checkpoint=checkpoint)


def map_traces(fn: Callable[[torch.Tensor], torch.Tensor], times: torch.Tensor, steps: int,
               traces: Callable[[torch.Tensor, int, int], torch.Tensor], rows: int, *,
               checkpoint: bool = True) -> torch.Tensor:
    """fn of the traces of `times` for steps 0 .. steps-1, `rows` steps at a time:
    `traces(times, a, b)` makes steps a .. b-1 of them, [b - a, B, *shape], and `fn` maps
    them to [b - a, B, *out]; the results are concatenated along time.

    `fn` must treat each step alone and the same way in every chunk: no delay (a delay
    of d steps is `times + d`, NO_SPIKE kept), no state across steps. With `checkpoint`
    (and gradients enabled) each chunk is recomputed in the backward rather than stored
    (torch.utils.checkpoint, non-reentrant; PyTorch's default generators are restored
    for the recomputation, generators of a module's own are not: an op drawing from one
    must not run here with checkpoint). Peak memory: the Memory section of this module."""
    steps = _check_steps(steps)

    def chunk(t: torch.Tensor, a: int, b: int) -> torch.Tensor:
        y = fn(traces(t, a, b))
        if y.shape[0] != b - a:
            raise ValueError(f"map_traces: fn gave {y.shape[0]} steps for {b - a}")
        return y

    store = checkpoint and torch.is_grad_enabled()
    pieces = [_checkpoint(chunk, times, a, b, use_reentrant=False) if store
              else chunk(times, a, b) for a, b in _chunks(0, steps, rows)]
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


def delayed(times: torch.Tensor, delay: int) -> torch.Tensor:
    """The spike times `delay` steps later (NO_SPIKE kept)."""
    return torch.where(spiked(times), times + delay, times) if delay else times


def _check_steps(steps: int) -> int:
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps}")
    return int(steps)


# ------------------------------------------------------------------------------ readouts

READOUT_KINDS = ("v", "v_max", "spikes")


def tempotron_readout(v: torch.Tensor, kind: str, v_threshold: float = 1.0) -> torch.Tensor:
    """What a Tempotron layer returns, from its voltage v [T, B, *N] (N is usually one
    axis; v includes v_reset):

    - "v": the voltage with time last, [B, *N, T] (the seed's layout).
    - "v_max": the highest voltage over the T steps, [B, *N]; its gradient goes to the
      step of the maximum only (the first one where several are equal), which is the
      seed's closed form: d v_max / d w_i = sum over t_i < t_max of K(t_max - t_i).
    - "spikes": the time of the first threshold crossing, the first step t with
      v[t] >= v_threshold, as a float [B, *N] (the seed's `spikes` output: a time, not
      a spike train), NO_SPIKE where v never reaches the threshold. No gradient (a step
      index). `snnc.functional.first_spike_index` turns a train into the same mask.
    """
    if v.dim() < 2:
        raise ValueError(f"tempotron_readout expects v [T, B, ...], got {list(v.shape)}")
    if kind == "v":
        return v.movedim(0, -1)
    if kind == "v_max":
        return v.max(dim=0).values
    if kind == "spikes":
        with torch.no_grad():
            above = v >= v_threshold
            first = above.to(torch.uint8).argmax(dim=0)  # the first True (0 if none)
            times = first.to(v.dtype if v.is_floating_point() else torch.get_default_dtype())
            return times.masked_fill_(~above.any(dim=0), NO_SPIKE)
    raise ValueError(f"a Tempotron readout is one of {', '.join(READOUT_KINDS)}, got {kind!r}")
