"""snnc: a compiler for spiking neural networks written in the .snn language."""
from snnc.errors import SnnError

__version__ = "0.1.0"

__all__ = ["SnnError", "__version__", "frontend"]


def frontend(path, network=None, allowed=()):
    """Parse, check and lower `path` to one networkx graph per network (see snnc.compiler)."""
    from snnc.compiler import frontend as _frontend
    return _frontend(path, network, allowed)
