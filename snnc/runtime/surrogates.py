"""Spike functions: a Heaviside step forward, a surrogate derivative backward.

The formulas are SpikingFlow's / SpikingJelly's (seed 003, soft_pulse_function):
each `*_grad(x, ...)` is dS/dx at x = v - v_threshold.
"""
from __future__ import annotations

import math

import torch


def sigmoid_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    s = torch.sigmoid(alpha * x)
    return alpha * s * (1.0 - s)


def atan_grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha / 2.0 / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)


def piecewise_grad(x: torch.Tensor, a: float, b: float, c: float) -> torch.Tensor:
    """Bilinear leaky ReLU: slope a on [-c, c], b outside."""
    return torch.where(x.abs() <= c, torch.full_like(x, a), torch.full_like(x, b))


def sign_swish_grad(x: torch.Tensor, beta: float) -> torch.Tensor:
    bx = beta * x
    return beta * (2.0 - bx * torch.tanh(bx / 2.0)) / (1.0 + torch.cosh(bx))


def rect_grad(x: torch.Tensor, width: float) -> torch.Tensor:
    return (x.abs() < width / 2.0).to(x.dtype) / width


GRADIENTS = {"sigmoid": sigmoid_grad, "atan": atan_grad, "piecewise": piecewise_grad,
             "sign_swish": sign_swish_grad, "rect": rect_grad}


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
