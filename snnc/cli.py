"""The `snnc` command. Exit status: 0 success, 1 an error in the input, 2 bad usage."""
from __future__ import annotations

import argparse
import sys

from snnc import __version__
from snnc.compiler import frontend
from snnc.errors import SnnError
from snnc.report import FORMATS, render

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnc", description="Compile spiking neural networks written in .snn files.")
    parser.add_argument("--version", action="version", version=f"snnc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser("check", help="check a .snn file; exit 0 when clean",
                                description="Parse and check a .snn file and print any error.")
    _common(check)

    inspect = commands.add_parser("inspect", help="show the compiled graph",
                                  description="Show each network's graph: nodes with shapes, "
                                  "connections, neuron and synapse counts, parameters and "
                                  "state memory per step.")
    _common(inspect)
    inspect.add_argument("--format", choices=FORMATS, default="text",
                         help="text: tables; json: networkx node-link data; dot: Graphviz")
    inspect.add_argument("--network", metavar="NAME", help="only this network")
    return parser


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("file", metavar="NET.snn", help="the network description")
    sub.add_argument("-I", "--allow-import", metavar="DIR", action="append", default=[],
                     help="also allow imports from DIR (absolute or outside the file's folder)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "check":
            graphs = frontend(args.file, allowed=args.allow_import)
            names = ", ".join(g.graph["name"] for g in graphs) or "no network"
            print(f"{args.file}: ok ({names})")
        else:
            graphs = frontend(args.file, args.network, allowed=args.allow_import)
            sys.stdout.write("\n".join(render(g, args.format) for g in graphs))
    except SnnError as err:
        print(err.render(), file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


def run() -> None:
    sys.exit(main())
