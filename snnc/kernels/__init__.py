"""Kernels generated from neuron definitions (issue 4): the symbolic derivatives
(symbolic), the step context every target shares (context), and one renderer per target
(cpu, cuda)."""
