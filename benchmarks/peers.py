"""The LIF neurons that the benchmarks compare snnc against, all with snnc's LIF dynamics
(`LIF(tau = 2.0)` of snnc/stdlib/neurons.snn) as far as each library allows:

    v = v + (x - v) / 2          (tau = 2, the input decays too)
    s = H(v - 1)                 (threshold 1)
    v = v * (1 - s)              (hard reset to 0, not detached: gradients flow through s)
    dS/dv = 4 sigmoid(4 (v - 1)) (1 - sigmoid(4 (v - 1)))   (sigmoid surrogate, alpha 4)

Each peer is a factory: called with no argument it returns a fresh `lif(x_seq)` that maps
input current [T, B, ...] to spikes [T, B, ...] from a zero state (a plain function, so a
model holding it registers no parameters of the library's). A library that does not
import is skipped with its reason.

The peers are installed into the venv without their dependencies, since SpikingJelly's
and Norse's declared ones (torchvision, torchaudio) would replace the CPU torch:

    .venv/bin/pip install --no-deps spikingjelly==2.0.0 snntorch==1.0.0 norse==1.1.0 \\
        nir==1.0.8 nirtorch==2.6
    .venv/bin/pip install numpy h5py      # what nir imports; neither pulls torch

Norse 1.1.0 needs neither torchvision nor a compiled extension to import: `norse.task`
imports torchvision only in its submodules, which `import norse` leaves alone; but
`norse.torch` imports its NIR import/export unconditionally, hence nir (numpy, h5py) and
nirtorch.
"""
from __future__ import annotations

import argparse
import warnings
import weakref
from collections.abc import Callable

import torch
import torch._inductor.config

Lif = Callable[[torch.Tensor], torch.Tensor]


def setup(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """A benchmark's arguments, with --threads, and torch set up the same for every run."""
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # compile cold, as a first use does: no inductor cache from an earlier run
    torch._inductor.config.force_disable_caches = True
    # no pool of compile workers beside the other rows' measurements (compile time grows)
    torch._inductor.config.compile_threads = 1
    warnings.filterwarnings("ignore", message="dynamo_pgo force disabled")
    return args
TAU, THRESHOLD, ALPHA = 2.0, 1.0, 4.0


class SigmoidSpike(torch.autograd.Function):
    """Heaviside (>= 0) forward, derivative of sigmoid(ALPHA x) backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(ALPHA * x)
        return grad * ALPHA * s * (1 - s)


def hand_lif(current: torch.Tensor) -> torch.Tensor:
    """The loop a user writes by hand (and what torch.compile is given)."""
    v, spikes = torch.zeros_like(current[0]), []
    for x in current:
        v = v + (x - v) / TAU
        s = SigmoidSpike.apply(v - THRESHOLD)
        v = v * (1 - s)
        spikes.append(s)
    return torch.stack(spikes)


def spikingjelly() -> Lif:
    """SpikingJelly 2.0 multi-step LIFNode. Its options are exactly snnc's LIF: same
    charge, >= threshold, hard reset (1 - s) h + s v_reset kept in the graph. On CPU
    its multi-step path is its torch implementation: a custom op running a Python loop
    over T that saves the charged voltage h, with a hand-written backward (SpikingJelly
    2.0 has no `backend` argument; CuPy/Triton apply on CUDA only)."""
    from spikingjelly.activation_based import functional, neuron, surrogate

    node = neuron.LIFNode(tau=TAU, decay_input=True, v_threshold=THRESHOLD, v_reset=0.0,
                          surrogate_function=surrogate.Sigmoid(alpha=ALPHA),
                          detach_reset=False, step_mode="m")

    def lif(x_seq: torch.Tensor) -> torch.Tensor:
        functional.reset_net(node)
        return node(x_seq)
    return lif


def snntorch() -> Lif:
    """snnTorch Leaky: mem = beta mem + input, so beta = 0.5 and the input is scaled by
    0.5 (snnTorch does not scale it by 1 - beta; the scaling is part of the timed loop)
    to get v + (x - v) / 2. reset_mechanism="zero" with reset_delay=False resets in the
    same step, as mem - spk * mem with spk in the graph: snnc's hard reset. Differences:
    it fires on mem > threshold (snnc: >=), computes 0.5 mem + 0.5 x (rounds differently
    from v + (x - v) / 2 in the last bit, so a spike can rarely differ), clamps beta and
    evaluates the delayed-reset term (always 0 here) at every step. snnTorch has no
    multi-step mode: the loop over T is the user's, as in its tutorials."""
    import snntorch as snn
    from snntorch import surrogate

    leaky = snn.Leaky(beta=0.5, threshold=THRESHOLD, spike_grad=surrogate.sigmoid(slope=ALPHA),
                      reset_mechanism="zero", reset_delay=False)

    def lif(x_seq: torch.Tensor) -> torch.Tensor:
        mem, spikes = torch.zeros_like(x_seq[0]), []
        for x in x_seq:
            spk, mem = leaky(0.5 * x, mem)
            spikes.append(spk)
        return torch.stack(spikes)
    return lif


def norse() -> Lif:
    """Norse LIF (multi-step module; 1.1.0 has no LIFBox module, only a single-step
    LIFBoxCell). Its LIF is current-based: i += x; v += dt tau_mem_inv (v_leak - v + i);
    i -= dt tau_syn_inv i. With dt = 1, tau_mem_inv = 0.5 and tau_syn_inv = 1 the current
    is emptied every step, so v + (x - v) / 2 exactly (it still computes the current, three
    more elementwise ops a step). The reset (1 - z) v + z v_reset keeps z in the graph, as
    snnc does. Norse has no sigmoid surrogate: method "tanh" with alpha 2 gives
    1 - tanh(2 u)^2, which is exactly 4 sigmoid(4 u) (1 - sigmoid(4 u)). It fires on
    v > threshold (snnc: >=), and its initial v requires grad."""
    from norse.torch import LIF, LIFParameters

    p = LIFParameters(tau_syn_inv=torch.as_tensor(1.0), tau_mem_inv=torch.as_tensor(1 / TAU),
                      v_leak=torch.as_tensor(0.0), v_th=torch.as_tensor(THRESHOLD),
                      v_reset=torch.as_tensor(0.0), method="tanh", alpha=ALPHA / 2)
    module = LIF(p, dt=1.0)

    def lif(x_seq: torch.Tensor) -> torch.Tensor:
        return module(x_seq)[0]
    return lif


LIBRARIES: dict[str, Callable[[], Lif]] = {
    "SpikingJelly 2.0 (LIFNode, multi-step)": spikingjelly,
    "snnTorch (Leaky)": snntorch,
    "Norse (LIF)": norse,
}


def available() -> dict[str, Callable[[], Lif]]:
    """The libraries that import here; one line for each one skipped, with the reason."""
    found = {}
    for name, factory in LIBRARIES.items():
        try:
            factory()
        except Exception as error:  # an import error, or one raised while importing
            print(f"skipped {name}: {type(error).__name__}: {error}")
            continue
        found[name] = factory
    return found


def saved_bytes(lif: Lif, x_seq: torch.Tensor) -> tuple[int, torch.Tensor]:
    """(bytes of the tensors that autograd keeps for the backward of lif(x_seq), its
    output). Each storage counts once (views of one tensor, or a tensor saved twice), and
    only tensors still held once the forward is over: one saved by a graph branch that
    was dropped (a detached reset) is not kept for the backward."""
    packed = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        packed.append(weakref.ref(t))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = lif(x_seq)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                for t in (ref() for ref in packed) if t is not None}
    return sum(storages.values()), out
