"""Spike functions: a Heaviside step forward, a surrogate derivative backward.

Each derivative is the registry's equation (snnc.registry.surrogates: SpikingFlow's /
SpikingJelly's formulas, seed 003, soft_pulse_function), printed to PyTorch by
printers.TorchPrinter, the same equation the fused kernels print to C: `GRADIENTS[name](x,
*params)` is dS/dx at x = v - v_threshold.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from snnc.printers import TorchPrinter
from snnc.registry import SURROGATES
from snnc.registry.surrogates import H
from snnc.runtime import ops


def _printed(name: str) -> Callable[..., torch.Tensor]:
    """The derivative of surrogate `name` as a Python function of (h, *its parameters),
    from the registry's equation (snnc's own constant, never text from a user's file)."""
    entry = SURROGATES[name]
    params = ", ".join(p.name for p in entry.params)
    printer = TorchPrinter(like=H)
    body = [f"    {a.target} = {printer(a.value)}\n" for a in entry.steps]
    source = (f"def {name}_grad({H}, {params}):\n" + "".join(body)
              + f"    return {printer(entry.derivative)}\n")
    namespace = {"torch": torch, "rt": ops}
    exec(compile(source, f"<snnc surrogate {name}>", "exec"), namespace)
    return namespace[f"{name}_grad"]


GRADIENTS: Mapping[str, Callable[..., torch.Tensor]] = {name: _printed(name)
                                                        for name in SURROGATES}


def heaviside(x: torch.Tensor) -> torch.Tensor:
    return (x >= 0).to(x.dtype)


def _spike_function(name: str) -> type[torch.autograd.Function]:
    grad = GRADIENTS[name]

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(x, *params):
            return heaviside(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, *params = inputs
            ctx.save_for_backward(x)
            ctx.params = params

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return (grad_output * grad(x, *ctx.params), *([None] * len(ctx.params)))

    Spike.__name__ = Spike.__qualname__ = f"{name.title().replace('_', '')}Spike"
    return Spike


SPIKE_FUNCTIONS = {name: _spike_function(name) for name in GRADIENTS}


def spike(x: torch.Tensor, surrogate: str, *params: float) -> torch.Tensor:
    """Heaviside(x) forward; `surrogate`'s derivative backward."""
    return SPIKE_FUNCTIONS[surrogate].apply(x, *params)
