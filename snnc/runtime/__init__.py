"""The small library that generated code imports (`from snnc import runtime as rt`)."""
import contextlib

import torch

from snnc.ir.values import Normal, Uniform
from snnc.runtime import bptt, encoders, event, readouts, response
from snnc.runtime.factory import op
from snnc.runtime.init import fill, init_weight
from snnc.runtime.layers import (
    ChannelsMaxPool,
    Connection,
    Dropout,
    Noise,
    OneToOne,
    Scale,
    delay_sequence,
)
from snnc.runtime.network import BUILDING_SEED, Named, Network, total
from snnc.runtime.ops import (
    clamp,
    logical_and,
    logical_not,
    logical_or,
    maximum,
    minimum,
    truth,
    where,
)
from snnc.runtime.plasticity import STDP
from snnc.runtime.population import Population
from snnc.runtime.simulator import Simulator
from snnc.runtime.sparse import SparseLinear
from snnc.runtime.surrogates import heaviside, spike
from snnc.runtime.synapses import Synapse
from snnc.runtime.weights import load_weights

__all__ = [
    "ChannelsMaxPool", "Connection", "bptt", "Dropout", "Network", "Noise", "Normal", "OneToOne",
    "Population", "STDP", "Scale", "Simulator", "SparseLinear", "Uniform", "clamp",
    "delay_sequence", "encoders", "event", "load_weights", "response",
    "fill", "heaviside", "init_weight", "logical_and", "logical_not", "logical_or", "maximum",
    "minimum", "Named", "op", "readouts", "seeded", "spike", "Synapse", "total", "truth",
    "where", "blend",
]


def blend(fired, new, old):
    """`new` where the neuron fired, `old` elsewhere, differentiable through `fired`
    (SpikingJelly's hard reset: (1 - s) * v + s * v_reset)."""
    return old * (1.0 - fired) + new * fired


@contextlib.contextmanager
def seeded(seed: int | None):
    """Build a network from `seed` (if given) without disturbing the caller's random state:
    its weights, masks and delays from PyTorch's CPU generator seeded `seed`, and the
    streams its modules draw from at run time from `seed` too (docs/RNG.md)."""
    if seed is None:
        yield
        return
    building = BUILDING_SEED.set(seed)
    try:
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only: torch.manual_seed would also reseed every GPU's,
            # which fork_rng(devices=[]) does not restore
            torch.default_generator.manual_seed(seed)
            yield
    finally:
        BUILDING_SEED.reset(building)
