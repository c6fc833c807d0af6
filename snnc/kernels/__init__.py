"""Kernels generated from neuron definitions (issue 4): the step as a tape of operations
and its reverse (tape), the step context every target shares (context), and one renderer
per target (cpu, cuda)."""
