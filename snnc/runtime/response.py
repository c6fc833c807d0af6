"""The event backend's populations: spike-response neurons (the Tempotron) whose voltage is
an explicit function of their inputs' spike times, computed for all T time points at once.

A population's voltage is v(t) = v_rest + the sum over its incoming connections of the
connection's linear ops (flatten, dense, conv, scale, ...) applied, at every t, to the
responses K(t - t_i - delay) of its source's spike times t_i (K the model's `kernel`, 0
before the spike and where there is none). The ops are linear, so applying them to the
responses equals summing the weighted responses neuron by neuron, and they run exactly as
softbp runs them in layer mode, on [T, B, *in].

Memory. The responses of a connection's source, [T, B, *in], are the large tensor (MNIST's
784 x 16 inputs, T = 100, a batch of 64: 321 MB in float32); `respond` makes them in
chunks of time steps of at most runtime.event.CHUNK_BYTES (one step at the least),
applies the connection to each chunk and keeps only its output, [chunk, B, *out]; under
autograd each chunk is checkpointed, so the backward makes its responses again instead of
keeping them. The peak is therefore about one chunk's responses plus the voltage
[T, B, *out], whatever T and the inputs (runtime.event's Memory section).

Spike times are tensors [B, *shape] of steps, in the runtime's dtype, with the marker of
snnc.runtime.event (NO_SPIKE) where a neuron does not fire; a population's output is its
first threshold crossing in that form (and, for monitors and readouts, as a spike train
[T, B, *shape] with one spike at that step).
"""
from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch import nn

from snnc.runtime import event
from snnc.runtime.init import DrawsAtRunTime, fill
from snnc.runtime.network import NamedParameters

Kernel = Callable[[torch.Tensor], torch.Tensor]
# The most bytes of [T, T] kernel lags `filtered` makes (T = 4096 in float32).
FILTER_BYTES = 1 << 26


def respond(times: torch.Tensor, steps: int, kernel: Kernel, connection: nn.Module,
            delay: int = 0) -> torch.Tensor:
    """What `connection` delivers at each of `steps` time points, [T, B, *out], from its
    source's spike times [B, *in]: its ops applied to K(t - delay - t_i), a chunk of
    steps at a time (runtime.event.map_traces).

    Where every time is a whole step (encoders' times are) and none needs a gradient, the
    ops are linear and time-invariant, so they are applied to the spikes themselves (one
    per input, at its step: an op on spikes visits only them) and the kernel filters their
    result over time, [T, B, *out] instead of [T, B, *in]; otherwise each input's
    responses are made and the ops applied to those."""
    times = event.delayed(times, delay)
    if whole_steps(times):
        delivered = dense_of_spikes(times, connection, steps)
        if delivered is None:
            delivered = event.map_traces(connection.through_ops, times, steps, spikes_at,
                                         event.chunk_steps(times))
        return filtered(delivered, kernel)
    return event.map_traces(connection.through_ops, times, steps,
                            lambda t, a, b: responses(t, a, b, kernel),
                            event.chunk_steps(times))


def dense_of_spikes(times: torch.Tensor, connection: nn.Module, steps: int
                    ) -> torch.Tensor | None:
    """[T, B, out]: what a connection of `flatten`s and one `dense` delivers from spikes
    at whole-step times, each spike adding its weight column at its step (the spike
    trains [T, B, in] are never made; B x in columns at most, each once); None for any
    other connection, which runs on the trains."""
    *flattens, dense = list(connection.ops)
    if not isinstance(dense, nn.Linear) or not all(isinstance(op, nn.Flatten)
                                                   for op in flattens):
        return None
    flat = times.reshape(times.shape[0], -1) if flattens else times
    if flat.dim() != 2 or flat.shape[1] != dense.in_features:
        return None
    batch = flat.shape[0]
    sample, source = (event.spiked(flat) & (flat < steps)).nonzero(as_tuple=True)
    at = flat[sample, source].long() * batch + sample
    columns = dense.weight.t()[source]                       # [spikes, out]
    out = columns.new_zeros(steps * batch, dense.out_features).index_add(0, at, columns)
    out = out.view(steps, batch, dense.out_features)
    return out + dense.bias if dense.bias is not None else out


def whole_steps(times: torch.Tensor) -> bool:
    """Whether every spike time is a whole step and none wants a gradient."""
    return not times.requires_grad and bool(
        ((times == torch.round(times)) | ~event.spiked(times)).all())


def spikes_at(times: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """The spike trains of whole-step times for steps start .. stop-1: [stop - start, B,
    *in], 1 where a neuron's time is that step."""
    clock = torch.arange(start, stop, dtype=times.dtype, device=times.device)
    return (clock.view(-1, *([1] * times.dim())) == times).to(times.dtype)


def filtered(delivered: torch.Tensor, kernel: Kernel) -> torch.Tensor:
    """v[t] = the sum over s <= t of K(t - s) delivered[s]: the kernel as a causal filter
    over time. Up to FILTER_BYTES of [T, T] lags, one matrix product over the targets (the
    fastest, and exact sums); beyond, the convolution by FFT, whose time and memory grow
    as T log T, not T² (round-off of the transform's size: 1e-7 relative in float32)."""
    steps = delivered.shape[0]
    clock = torch.arange(steps, dtype=delivered.dtype, device=delivered.device)
    if steps * steps * delivered.element_size() > FILTER_BYTES:
        size = 2 * steps  # no wrap-around: the product of two length-T series fits
        series = torch.fft.rfft(delivered.reshape(steps, -1), n=size, dim=0)
        taps = torch.fft.rfft(kernel(clock), n=size)[:, None]
        out = torch.fft.irfft(series * taps, n=size, dim=0)[:steps]
        return out.reshape(delivered.shape)
    lag = clock[:, None] - clock[None, :]
    causal = lag >= 0
    weights = torch.where(causal, kernel(torch.where(causal, lag, torch.zeros_like(lag))),
                          torch.zeros_like(lag))
    return (weights @ delivered.reshape(steps, -1)).view(delivered.shape)


def responses(times: torch.Tensor, start: int, stop: int, kernel: Kernel) -> torch.Tensor:
    """K(t - t_i) at steps start .. stop-1 for each spike time: [stop - start, B, *in], 0
    before the spike and where there is none (the kernel is never evaluated there, so that
    a time far away gives no overflow, nor its gradient a NaN)."""
    clock = torch.arange(start, stop, dtype=times.dtype, device=times.device)
    lag = clock.view(-1, *([1] * times.dim())) - times
    after = (lag >= 0) & event.spiked(times)
    return torch.where(after, kernel(torch.where(after, lag, torch.zeros_like(lag))),
                       torch.zeros_like(lag))


class SpikeResponse(nn.Module):
    """A population of spike-response neurons: v = v_rest + what its connections deliver,
    [T, B, *shape] (recorded as recorded["v"]); it fires where `fire(v)` first holds.
    forward() returns that step as spike times [B, *shape] (NO_SPIKE: never). Every
    connection's spikes are filtered by the model's `kernel`."""

    def __init__(self, shape: tuple[int, ...], fire: Callable[[torch.Tensor], torch.Tensor],
                 v_rest: float = 0.0, kernel: Kernel | None = None):
        super().__init__()
        self.shape, self.fire, self.v_rest = tuple(shape), fire, float(v_rest)
        self.model_kernel = kernel
        self.recorded: dict[str, torch.Tensor] = {}

    def kernel(self, synapse: nn.Module | None, steps: int, like: torch.Tensor) -> Kernel:
        """The kernel of what a connection delivers through `synapse` (the model's: its
        connections have none)."""
        return self.model_kernel

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return self.fires(current + self.v_rest)

    def fires(self, v: torch.Tensor) -> torch.Tensor:
        """Records the voltage [T, B, *shape] and its first crossing; their spike times."""
        self.recorded = {"v": v, "spikes": first_crossing(self.fire(v) != 0, v.dtype)}
        return spike_times(self.recorded["spikes"])

    def reset(self) -> None:
        self.recorded = {}

    def extra_repr(self) -> str:
        return f"shape={self.shape}, v_rest={self.v_rest:g}"


class LinearResponse(DrawsAtRunTime, SpikeResponse):
    """A stepped model whose charge is affine in its states and its input, on the event
    backend: its voltage (the state `voltage`, which its fire condition reads) is its
    free evolution from its initial states plus, for each connection, what the connection
    delivers filtered by that connection's kernel: the impulse response of its synapse
    and the charge, found by stepping both once from a unit spike (the system is linear,
    so one response serves every spike, and the difference of two runs from the same
    state is that response whatever the state). A LIF with an exp_current synapse gives
    the two-exponential kernel of the Tempotron. Resets and refractory periods are not
    modelled: it fires at its first threshold crossing, as the Tempotron does.

    `charge(x, *states, *learnable) -> states` is the model's charge; a connection's
    synapse stays in the connection (the state_dict is softbp's), which gives it to
    `kernel` and applies only its ops (runtime.layers.Connection.through_ops)."""

    def __init__(self, shape: tuple[int, ...], fire: Callable[[torch.Tensor], torch.Tensor],
                 charge: Callable, state_init: dict[str, object], voltage: str,
                 learnable: dict[str, float] | None = None):
        super().__init__(shape, fire)
        self.charge, self.state_init, self.voltage = charge, dict(state_init), voltage
        self.learnable = NamedParameters(
            {k: nn.Parameter(torch.tensor(float(v))) for k, v in (learnable or {}).items()})

    def kernel(self, synapse: nn.Module | None, steps: int, like: torch.Tensor) -> Kernel:
        """The impulse response of the voltage to one spike through `synapse` (None: the
        spike is the input), at lags 0 .. steps-1 (a kernel of whole-step lags)."""
        table = self._table(synapse, steps, like)
        return lambda lag: table[lag.long().clamp(0, steps - 1)]

    def _table(self, synapse: nn.Module | None, steps: int, like: torch.Tensor
               ) -> torch.Tensor:
        """impulse_response, kept from one forward to the next while the parameters it
        depends on hold the same values and no gradient is to flow through it."""
        learnt = [*self.learnable.values(),
                  *(getattr(synapse, n) for n in (synapse.learnable if synapse else ()))]
        if torch.is_grad_enabled() and any(p.requires_grad for p in learnt):
            return self.impulse_response(synapse, steps, like)
        key = (steps, like.dtype, like.device, tuple(float(p) for p in learnt))
        tables = self.__dict__.setdefault("_tables", weakref.WeakKeyDictionary())
        own = tables.setdefault(synapse if synapse is not None else self, {})
        if key not in own:
            own.clear()  # one table per connection at a time: keys change with the values
            own[key] = self.impulse_response(synapse, steps, like).detach()
        return own[key]

    def impulse_response(self, synapse: nn.Module | None, steps: int,
                         like: torch.Tensor) -> torch.Tensor:
        # one neuron stands for all: a population's parameters are scalars
        zero = like.new_zeros(1, 1)
        runs = [self._voltage(synapse, steps, zero, impulse) for impulse in (1.0, 0.0)]
        return (runs[0] - runs[1]).reshape(steps)

    def _voltage(self, synapse: nn.Module | None, steps: int, zero: torch.Tensor,
                 impulse: float) -> torch.Tensor:
        """The voltage over `steps` steps from the states' constant initial values (0 for
        drawn ones: the difference of two runs does not depend on them), input `impulse`
        at step 0 only."""
        states = [zero + (float(v) if isinstance(v, (int, float)) else 0.0)
                  for v in self.state_init.values()]
        syn_states = None if synapse is None else \
            tuple(zero + v for v in synapse.initial.values())
        index = list(self.state_init).index(self.voltage)
        out = []
        for t in range(steps):
            x = zero + (impulse if t == 0 else 0.0)
            if synapse is not None:
                x, syn_states = synapse.step(x, *syn_states,
                                             *(getattr(synapse, n) for n in synapse.learnable))
            states = list(self.charge(x, *states, *self.learnable.values()))
            out.append(states[index])
        return torch.stack(out)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return self.fires(self.baseline(current) + current)

    def baseline(self, like: torch.Tensor) -> torch.Tensor:
        """The voltage without input, [T, B, *shape], from the initial states (drawn where
        they are distributions, as a stepped population draws them)."""
        batch = like.shape[1:like.dim() - len(self.shape)]
        states = [fill(v, (*batch, *self.shape), like, self.generator)
                  for v in self.state_init.values()]
        index = list(self.state_init).index(self.voltage)
        zero = torch.zeros_like(states[0])
        out = []
        for _ in range(like.shape[0]):
            states = list(self.charge(zero, *states, *self.learnable.values()))
            out.append(states[index])
        return torch.stack(out)


def first_crossing(crossed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[T, B, *shape] 0/1 of `dtype`: one spike at the first step where `crossed` holds
    (none where it never does)."""
    first = crossed & (torch.cumsum(crossed, dim=0) == 1)
    return first.to(dtype)


def spike_times(spikes: torch.Tensor) -> torch.Tensor:
    """A spike train [T, B, *shape] (at most one spike per neuron) as spike times."""
    steps = spikes.shape[0]
    index = torch.arange(steps, dtype=spikes.dtype, device=spikes.device)
    index = index.view(-1, *([1] * (spikes.dim() - 1)))
    fired = spikes.amax(0) > 0
    time = (spikes * index).sum(0)
    return torch.where(fired, time, torch.full_like(time, event.NO_SPIKE))
