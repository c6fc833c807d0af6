"""snnc: a compiler for spiking neural networks written in the .snn language."""
from snnc.errors import SnnError

__version__ = "0.1.0"

__all__ = ["SnnError", "__version__", "compile", "frontend"]


def compile(path, backend=None, network=None, allowed=()):  # noqa: A001 - the documented API
    """The generated nn.Module class of a network in `path`, without writing a file."""
    from snnc.compiler import compile as _compile
    return _compile(path, backend, network, allowed)


def frontend(path, network=None, allowed=()):
    """Parse, check and lower `path` to one networkx graph per network (see snnc.compiler)."""
    from snnc.compiler import frontend as _frontend
    return _frontend(path, network, allowed)
