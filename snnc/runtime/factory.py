"""Building a connection's ops from their checked parameters (called by generated code).
The ops that are also library layers are snnc.layers' classes (snnc/runtime/layers.py)."""
from __future__ import annotations

from torch import nn

from snnc.runtime.init import init_weight
from snnc.runtime.layers import (
    AXAT,
    DCT,
    ChannelsMaxPool,
    Dropout,
    Noise,
    OneToOne,
    Scale,
    SynapseDelays,
)
from snnc.runtime.sparse import SparseLinear
from snnc.runtime.spike_dense import SpikeLinear

Shape = tuple[int, ...]


def op(kind: str, in_shape: Shape, out_shape: Shape, delays: tuple[int, int] | None = None,
       **p) -> nn.Module:
    """The nn.Module for one op of a pipeline; inputs arrive as [T·B, *in_shape].
    `delays`: (low, high) gives each synapse of a weighted op its own delay."""
    module = _BUILDERS[kind](in_shape, out_shape, **p)
    return SynapseDelays(module, *delays) if delays else module


def _dense(i: Shape, o: Shape, bias: bool, w=None, out=None) -> nn.Module:
    layer = SpikeLinear(i[-1], o[-1], bias=bias)
    init_weight(layer.weight, w)
    return layer


def _sparse(i: Shape, o: Shape, p: float, w=None, out=None) -> nn.Module:
    layer = SparseLinear(i[-1], o[-1], p)
    init_weight(layer.weight, w)  # the vector of the synapses that exist
    return layer


def _conv(dims: int):
    def build(i: Shape, o: Shape, k: int, stride: int, pad: int, bias: bool, w=None,
              out=None) -> nn.Module:
        # A stride past an axis's only window changes nothing, but a huge one overflows
        # PyTorch's index arithmetic (SIGFPE in the backward at 2**31 - 1): the largest
        # that matters on an axis is its padded size less the kernel, plus one.
        strides = tuple(min(stride, size + 2 * pad - k + 1) for size in i[1:])
        conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(i[0], o[0], k, strides, pad, bias=bias)
        init_weight(conv.weight, w)
        return conv
    return build


def _pool(cls1d, cls2d):
    def build(i: Shape, o: Shape, k: int) -> nn.Module:
        return (cls1d if len(i) == 2 else cls2d)(k, k)
    return build


def _batchnorm(i: Shape, o: Shape, eps: float, momentum: float) -> nn.Module:
    return (nn.BatchNorm2d if len(i) == 3 else nn.BatchNorm1d)(i[0], eps=eps, momentum=momentum)


_BUILDERS = {
    "dense": _dense,
    "sparse": _sparse,
    "one_to_one": lambda i, o, w=None: OneToOne(i, w),
    "conv1d": _conv(1),
    "conv2d": _conv(2),
    "maxpool": _pool(nn.MaxPool1d, nn.MaxPool2d),
    "avgpool": _pool(nn.AvgPool1d, nn.AvgPool2d),
    "flatten": lambda i, o: nn.Flatten(),
    "batchnorm": _batchnorm,
    "dropout": lambda i, o, p: Dropout(p),
    "scale": lambda i, o, c: Scale(c),
    "noise": lambda i, o, std: Noise(std),
    "channel_maxpool": lambda i, o, k: ChannelsMaxPool(k),
    "dct": lambda i, o, k: DCT(k),
    "axat": lambda i, o, out=None: AXAT(i[-1], o[-1]),
}
