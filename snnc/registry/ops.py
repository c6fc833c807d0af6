"""The ops of a connection's pipeline (`: flatten | dense(out = 10)`): for each, its
signature, its shape rule, what it counts (parameters, synapses) and the backends that
run it. Shapes never include batch or time.

A shape rule accepts exactly the inputs the runtime can build and run (snnc.runtime.factory
builds each op), raising ShapeError otherwise; snnc.check.shapes runs the rules through a
pipeline and bounds every shape they make.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from snnc.limits import MAX_ELEMENTS
from snnc.registry.core import EVENT, SOFTBP, STEPPED, P, Signature, table

Shape = tuple[int, ...]
ShapeRule = Callable[[Shape, Mapping, int], Shape]  # (input, params, size) -> output
Count = Callable[[Mapping, Shape, Shape], int]      # (params, input, output) -> count
# What the op's module keeps in a state_dict: (name, shape or None when drawn at build,
# whether it is a parameter rather than a buffer)
Tensors = Callable[[Mapping, Shape, Shape], tuple[tuple[str, "Shape | None", bool], ...]]


class ShapeError(Exception):
    """Raised by one op's rule; the pipeline turns it into an SnnError naming both shapes."""


def _none(p: Mapping, i: Shape, o: Shape) -> int:
    return 0


def _same(s: Shape, p: Mapping, out: int) -> Shape:
    return s


def _nothing(p: Mapping, i: Shape, o: Shape) -> tuple:
    return ()


@dataclass(frozen=True)
class Op(Signature):
    shape: ShapeRule = _same
    sizing: bool = False        # sets a size, from `out` or else from the target
    size_axis: int = -1         # the axis it sets: features, or channels (0)
    weighted: bool = False      # has a weight per synapse (what `learn` and delays act on)
    parameters: Count = _none
    synapses: Count = _none
    tensors: Tensors = _nothing   # the weights first, if it has any
    backends: frozenset[str] = STEPPED


# ------------------------------------------------------------------ shape rules
def _need_rank(shape: Shape, ranks: tuple[int, ...], layout: str) -> None:
    if len(shape) not in ranks:
        raise ShapeError(f"expects {layout} input")


def _window(size: int, k: int, stride: int, pad: int) -> int:
    out = (size + 2 * pad - k) // stride + 1
    if out < 1:
        raise ShapeError(f"kernel {k} does not fit an axis of size {size} (padding {pad})")
    return out


def _dense(s: Shape, p: Mapping, out: int) -> Shape:
    return (*s[:-1], out)


def _conv(rank: int) -> ShapeRule:
    def rule(s: Shape, p: Mapping, out: int) -> Shape:
        _need_rank(s, (rank + 1,), "[C, L]" if rank == 1 else "[C, H, W]")
        return (out, *(_window(d, p["k"], p["stride"], p["pad"]) for d in s[1:]))
    return rule


def _pool(s: Shape, p: Mapping, out: int) -> Shape:
    _need_rank(s, (2, 3), "[C, L] or [C, H, W]")
    return (s[0], *(_window(d, p["k"], p["k"], 0) for d in s[1:]))


def _batchnorm(s: Shape, p: Mapping, out: int) -> Shape:
    # The runtime has BatchNorm1d ([N, C] and [N, C, L]) and BatchNorm2d ([N, C, H, W]).
    _need_rank(s, (1, 2, 3), "[C], [C, L] or [C, H, W]")
    return s


def _flatten(s: Shape, p: Mapping, out: int) -> Shape:
    return (math.prod(s),)


def _channel_maxpool(s: Shape, p: Mapping, out: int) -> Shape:
    _need_rank(s, (2, 3), "[C, L] or [C, H, W]")
    return (_window(s[0], p["k"], p["k"], 0), *s[1:])


def _dct(s: Shape, p: Mapping, out: int) -> Shape:
    if len(s) < 2 or s[-1] % p["k"] or s[-2] % p["k"]:
        raise ShapeError(f"needs its last two axes divisible by k = {p['k']}")
    # It multiplies by an [n, n] DCT matrix for each of the two axes.
    if max(s[-2:]) ** 2 > MAX_ELEMENTS:
        raise ShapeError(f"would build a {max(s[-2:])}×{max(s[-2:])} matrix (at most "
                         f"{MAX_ELEMENTS} elements)")
    return s


def _axat(s: Shape, p: Mapping, out: int) -> Shape:
    if len(s) < 2 or s[-1] != s[-2]:
        raise ShapeError("expects square matrices in its last two axes [*, n, n]")
    return (*s[:-2], out, out)


# ------------------------------------------------------------------ counts
def _dense_parameters(p: Mapping, i: Shape, o: Shape) -> int:
    return i[-1] * o[-1] + (o[-1] if p.get("bias") else 0)


def _dense_synapses(p: Mapping, i: Shape, o: Shape) -> int:
    return math.prod(i) * o[-1]


def _sparse_synapses(p: Mapping, i: Shape, o: Shape) -> int:
    return round(p["p"] * math.prod(i) * o[-1])


def _sparse_parameters(p: Mapping, i: Shape, o: Shape) -> int:
    return round(p["p"] * i[-1] * o[-1])  # only the synapses that exist are stored


def _elementwise(p: Mapping, i: Shape, o: Shape) -> int:
    return math.prod(i)


def _taps(p: Mapping, i: Shape) -> int:
    return p["k"] ** (len(i) - 1)  # conv1d [C, L]: k taps; conv2d [C, H, W]: k²


def _conv_parameters(p: Mapping, i: Shape, o: Shape) -> int:
    return o[0] * i[0] * _taps(p, i) + (o[0] if p.get("bias") else 0)


def _conv_synapses(p: Mapping, i: Shape, o: Shape) -> int:
    return math.prod(o) * i[0] * _taps(p, i)


def _bias(p: Mapping, size: int) -> tuple:
    return (("bias", (size,), True),) if p.get("bias") else ()


def _dense_tensors(p: Mapping, i: Shape, o: Shape) -> tuple:
    return (("weight", (o[-1], i[-1]), True), *_bias(p, o[-1]))


def _sparse_tensors(p: Mapping, i: Shape, o: Shape) -> tuple:
    # CSR by source (snnc.runtime.sparse): a row's targets and weights, as many as drawn
    return (("weight", None, True), ("offsets", (i[-1] + 1,), False),
            ("targets", None, False))


def _conv_tensors(p: Mapping, i: Shape, o: Shape) -> tuple:
    return (("weight", (o[0], i[0], *[p["k"]] * (len(i) - 1)), True), *_bias(p, o[0]))


def _batchnorm_tensors(p: Mapping, i: Shape, o: Shape) -> tuple:
    c = (i[0],)
    return (("weight", c, True), ("bias", c, True), ("running_mean", c, False),
            ("running_var", c, False), ("num_batches_tracked", (), False))


_WEIGHTS = (P("w", "init", None), P("out", "int+", None))
# linear ops, which the event backend applies to its sources' responses (their sum over
# the spikes is the sum of what the op makes of each)
LINEAR = STEPPED | {EVENT}
# batch statistics and dropout masks belong to training, which a simulation does not do
TRAINING = frozenset({SOFTBP})


OPS: dict[str, Op] = table(
    Op("dense", (P("bias", "bool", False), *_WEIGHTS), doc="fully connected on the last axis",
       shape=_dense, sizing=True, weighted=True, parameters=_dense_parameters,
       synapses=_dense_synapses, tensors=_dense_tensors, backends=LINEAR),
    Op("sparse", (P("p", "prob", 0.02), *_WEIGHTS), doc="each synapse exists with probability p",
       shape=_dense, sizing=True, weighted=True, parameters=_sparse_parameters,
       synapses=_sparse_synapses, tensors=_sparse_tensors, backends=LINEAR),
    Op("one_to_one", (P("w", "init", None),), doc="one weight per neuron", weighted=True,
       parameters=_elementwise, synapses=_elementwise,
       tensors=lambda p, i, o: (("weight", i, True),), backends=LINEAR),
    Op("conv1d", (P("k", "int+", 3), P("stride", "int+", 1), P("pad", "int0", 0),
                  P("bias", "bool", False), *_WEIGHTS), doc="1-d convolution over [C, L]",
       shape=_conv(1), sizing=True, size_axis=0, weighted=True, parameters=_conv_parameters,
       synapses=_conv_synapses, tensors=_conv_tensors, backends=LINEAR),
    Op("conv2d", (P("k", "int+", 3), P("stride", "int+", 1), P("pad", "int0", 1),
                  P("bias", "bool", False), *_WEIGHTS), doc="2-d convolution over [C, H, W]",
       shape=_conv(2), sizing=True, size_axis=0, weighted=True, parameters=_conv_parameters,
       synapses=_conv_synapses, tensors=_conv_tensors, backends=LINEAR),
    Op("maxpool", (P("k", "int+", 2),), doc="max over k×k windows, stride k", shape=_pool),
    Op("avgpool", (P("k", "int+", 2),), doc="mean over k×k windows, stride k", shape=_pool,
       backends=LINEAR),
    Op("flatten", doc="all axes into one", shape=_flatten, backends=LINEAR),
    Op("batchnorm", (P("eps", "positive", 1e-5), P("momentum", "prob", 0.1)),
       doc="batch normalisation over channels", shape=_batchnorm,
       parameters=lambda p, i, o: 2 * i[0], tensors=_batchnorm_tensors,
       backends=TRAINING),
    Op("dropout", (P("p", "prob<1", 0.5),), doc="SNN dropout: one mask per run",
       backends=TRAINING),
    Op("scale", (P("c", "number"),), doc="times a constant", backends=LINEAR),
    Op("noise", (P("std", "nonneg"),), doc="plus Gaussian noise"),
    Op("channel_maxpool", (P("k", "int+"),), doc="max over groups of k channels",
       shape=_channel_maxpool),
    Op("dct", (P("k", "int+"),), doc="blockwise DCT of the last two axes", shape=_dct),
    Op("axat", (P("out", "int+", None),), doc="A X Aᵀ on the last two axes, A learnt",
       shape=_axat, sizing=True, parameters=lambda p, i, o: o[-1] * i[-1],
       tensors=lambda p, i, o: (("weight", (o[-1], i[-1]), True),)),
)
