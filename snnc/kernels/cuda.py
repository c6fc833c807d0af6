"""Fused CUDA kernels: CUDA C++ rendered from the same step context as the CPU's
(snnc.kernels.context); snnc.runtime.fused compiles them with nvcc and launches them."""
from __future__ import annotations

from snnc.ir.nodes import Population
from snnc.kernels.context import printed_step
from snnc.printers import CudaPrinter
from snnc.templating import templates


def cuda_source(pop: Population, context: dict) -> str:
    """The CUDA source of the population's forward and backward kernels and their host
    launchers (snnc_forward_cuda, snnc_backward_cuda), from its kernels.context.step_context."""
    return templates().get_template("kernels/cuda.cu.j2").render(
        context, **printed_step(pop, context, CudaPrinter))
