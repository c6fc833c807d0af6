"""`dense` for spike inputs: a Linear layer whose forward and weight gradient visit only the
nonzero entries of its input (templates/kernels/spike_dense.c).

Spikes are mostly zeros, and a GEMM multiplies every one of them. Each call lists the
input's nonzeros once (compressed rows, 12 bytes each — saved for the backward instead
of the input) and sums rows of the weight for them. Where the input is dense (more than
`DENSITY_LIMIT` nonzeros), or the kernels cannot run, it is nn.Linear.
"""
from __future__ import annotations

import ctypes
from functools import cache

import torch
from torch import nn

from snnc.resources import data_dir
from snnc.runtime import fused, native
from snnc.runtime.batched import per_simulation
from snnc.runtime.fused import ptr

# Above this fraction of nonzeros the blocked GEMM is faster than visiting them one by one.
DENSITY_LIMIT = 0.25

_POINTER, _I64, _INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
_FUNCTIONS = {  # templates/kernels/spike_dense.c
    "spike_dense_rows": (_I64, [_POINTER, _I64, _I64, _I64, _POINTER, _POINTER, _POINTER,
                                _INT]),
    "spike_dense_columns": (None, [_POINTER] * 3 + [_I64, _I64] + [_POINTER] * 3),
    "spike_dense_gather": (None, [_POINTER] * 5 + [_I64, _I64, _INT]),
}


@cache
def _library(dtype: torch.dtype) -> native.Library | None:
    source = (data_dir("templates") / "kernels" / "spike_dense.c").read_text()
    return native.load(source, functions=_FUNCTIONS, flags=(f"-DREAL={fused.REAL[dtype]}",),
                       what="the sparse-input kernels of dense",
                       fallback="nn.Linear runs instead (same results, slower)")


class _Nonzeros:
    """The nonzeros of a [R, K] input, listed by row (and by column when asked)."""

    def __init__(self, lib, x: torch.Tensor, capacity: int):
        self.lib, self.shape = lib, x.shape
        self.start = torch.empty(x.shape[0] + 1, dtype=torch.int64)
        index = torch.empty(capacity, dtype=torch.int32)
        value = torch.empty(capacity, dtype=x.dtype)
        self.count = lib.spike_dense_rows(ptr(x), *x.shape, capacity, ptr(self.start),
                                          ptr(index), ptr(value), torch.get_num_threads())
        self.index, self.value = index[: max(self.count, 0)], value[: max(self.count, 0)]

    def by_row(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.start, self.index, self.value

    def by_column(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        start = torch.empty(self.shape[1] + 1, dtype=torch.int64)
        index, value = torch.empty_like(self.index), torch.empty_like(self.value)
        self.lib.spike_dense_columns(ptr(self.start), ptr(self.index), ptr(self.value),
                                     *self.shape, ptr(start), ptr(index), ptr(value))
        return start, index, value

    def gather(self, lists, src: torch.Tensor, dst: torch.Tensor) -> None:
        """dst[d] += the rows of src that list d picks, weighted by their values."""
        start, index, value = lists
        self.lib.spike_dense_gather(ptr(start), ptr(index), ptr(value), ptr(src),
                                    ptr(dst), dst.shape[0], dst.shape[1],
                                    torch.get_num_threads())


class _SpikeLinearFunction(torch.autograd.Function):
    """x [R, K] (as its nonzeros), weight [O, K], bias [O] -> [R, O]. Saves only the
    nonzeros and the weight; the gradient to x is a plain GEMM (the surrogate needs it at
    every neuron, spiking or not)."""

    @staticmethod
    def forward(ctx, nonzeros: _Nonzeros, x, weight, bias):
        out = (bias.expand(x.shape[0], -1).clone() if bias is not None
               else weight.new_zeros(x.shape[0], weight.shape[0]))
        nonzeros.gather(nonzeros.by_row(), weight.t().contiguous(), out)
        ctx.nonzeros = nonzeros
        ctx.save_for_backward(weight)
        return out

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        grad = grad.contiguous()
        _, need_x, need_weight, need_bias = ctx.needs_input_grad
        grad_weight = None
        if need_weight:
            grad_weight_t = grad.new_zeros(weight.shape[1], weight.shape[0])
            ctx.nonzeros.gather(ctx.nonzeros.by_column(), grad, grad_weight_t)
            grad_weight = grad_weight_t.t()
        return (None, grad @ weight if need_x else None, grad_weight,
                grad.sum(0) if need_bias else None)


class SpikeLinear(nn.Linear):
    """nn.Linear (same parameters, same state_dict) that skips the zeros of its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.dim() == 3:  # a weight per simulation [B, out, in] (runtime.batched)
            return per_simulation(self._linear, x, self.weight)
        flat = x.reshape(-1, x.shape[-1])
        nonzeros = self._nonzeros(flat)
        if nonzeros is None:
            return super().forward(x)
        out = _SpikeLinearFunction.apply(nonzeros, flat, self.weight, self.bias)
        return out.view(*x.shape[:-1], self.out_features)

    def _linear(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, weight, self.bias)

    def _nonzeros(self, flat: torch.Tensor) -> _Nonzeros | None:
        """The input's nonzeros, or None where the GEMM is the better (or only) way."""
        if (not fused.enabled() or flat.device.type != "cpu" or flat.dtype not in fused.REAL
                or flat.dtype != self.weight.dtype):
            return None
        lib = _library(flat.dtype)
        if lib is None:
            return None
        nonzeros = _Nonzeros(lib, flat.contiguous(), int(flat.numel() * DENSITY_LIMIT))
        return nonzeros if nonzeros.count >= 0 else None
