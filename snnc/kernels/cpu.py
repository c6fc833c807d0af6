"""Fused CPU kernels: C rendered from the population's step context (snnc.kernels.context);
snnc.runtime.fused compiles and calls them."""
from __future__ import annotations

from snnc.ir.nodes import Population
from snnc.kernels.context import printed_step
from snnc.printers import CPrinter
from snnc.templating import templates


def kernel_source(pop: Population, context: dict) -> str:
    """The C source of the population's forward and backward kernels, from its
    kernels.context.step_context."""
    return templates().get_template("kernels/cpu.c.j2").render(
        context, **printed_step(pop, context, CPrinter))
