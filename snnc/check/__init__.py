"""The check stage: every user error is found here (or in the parser)."""
from __future__ import annotations

from snnc.check.network import check_backend, check_network
from snnc.check.neurons import check_neuron
from snnc.errors import SnnError, unknown
from snnc.frontend.loader import Program
from snnc.ir.nodes import Network

__all__ = ["check_program", "check_backend"]


def check_program(program: Program, network: str | None = None) -> list[Network]:
    """Check the models and the networks of the main file (one, if `network` names it)."""
    for defn in program.models.values():
        check_neuron(defn)
    networks = program.main.networks
    if network is not None:
        chosen = [n for n in networks if n.name == network]
        if not chosen:
            raise unknown("network", network, [n.name for n in networks], None)
        networks = tuple(chosen)
    _check_unique_networks(networks)
    return [check_network(net, program.models, program.main.path, program.weights_file)
            for net in networks]


def _check_unique_networks(networks) -> None:
    seen = {}
    for net in networks:
        if net.name in seen:
            raise SnnError(f"network {net.name} is defined twice", net.pos,
                           f"first defined at line {seen[net.name].pos.line}")
        seen[net.name] = net
