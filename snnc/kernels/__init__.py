"""Kernels generated from neuron definitions (issue 4): the symbolic derivatives first."""
