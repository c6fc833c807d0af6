"""Fused CPU kernels: C rendered from the population's step context (snnc.kernels.context);
snnc.runtime.fused compiles and calls them."""
from __future__ import annotations

from snnc.ir.nodes import Population
from snnc.kernels.context import step_context
from snnc.templating import templates


def kernel_source(pop: Population) -> str:
    """The C source of the population's forward and backward kernels."""
    return templates().get_template("kernels/cpu.c.j2").render(step_context(pop))
