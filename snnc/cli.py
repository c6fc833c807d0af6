"""The `snnc` command. Exit status: 0 success, 1 an error in the input, 2 bad usage, 3 an
internal error (a bug in snnc, reported in one line), 130 interrupted."""
from __future__ import annotations

import argparse
import atexit
import os
import sys
from pathlib import Path

from snnc import __version__
from snnc.compiler import frontend
from snnc.errors import SnnError, printable
from snnc.report import FORMATS, render_all

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2
EXIT_INTERNAL, EXIT_INTERRUPTED = 3, 130  # a bug in snnc; Ctrl-C


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnc", description="Compile spiking neural networks written in .snn files.")
    parser.add_argument("--version", action="version", version=f"snnc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser("check", help="check a .snn file; exit 0 when clean",
                                description="Parse and check a .snn file and print any error.")
    _common(check)

    build = commands.add_parser("build", help="generate a PyTorch module",
                                description="Compile a network to a Python module that imports "
                                "with only torch and snnc installed. The file is written "
                                "atomically: a failed build leaves an earlier one untouched.")
    _common(build)
    build.add_argument("-o", "--output", metavar="OUT.py|DIR/",
                       help="the file to write, or a folder for one file per network "
                       "(default: NET.py beside NET.snn)")
    build.add_argument("--backend", choices=("clock", "softbp", "event"),
                       help="override the network's `backend` setting")
    build.add_argument("--network", metavar="NAME", help="only this network")

    inspect = commands.add_parser("inspect", help="show the compiled graph",
                                  description="Show each network's graph: nodes with shapes, "
                                  "connections, neuron and synapse counts, parameters and "
                                  "state memory per step.")
    _common(inspect)
    inspect.add_argument("--format", choices=FORMATS, default="text",
                         help="text: tables; json: networkx node-link data; dot: Graphviz")
    inspect.add_argument("--network", metavar="NAME", help="only this network")
    _run_parser(commands)
    _import_parser(commands)
    _export_parser(commands)
    return parser


def _export_parser(commands) -> None:
    export = commands.add_parser("export", help="write a network as a NIR graph",
                                 description="Write one network as a NIR graph (docs/NIR.md) "
                                 "with the weights snnc builds it with, or those of --weights. "
                                 "The file is written atomically: a failed export leaves an "
                                 "earlier one untouched.")
    _common(export)
    export.add_argument("--nir", metavar="OUT.nir", required=True, help="the file to write")
    export.add_argument("--network", metavar="NAME", help="the network to export (needed "
                        "when the file has several)")
    export.add_argument("--weights", metavar="FILE.pt", help="a state_dict of the network's "
                        "module (torch.save(net.state_dict(), FILE)) to export instead")


def _import_parser(commands) -> None:
    imp = commands.add_parser("import", help="turn a NIR graph into a .snn file",
                              description="Write a readable .snn file and the weights file it "
                              "loads (NET.weights.pt beside it) from a NIR graph (docs/NIR.md). "
                              "Nothing is written unless both compile.")
    imp.add_argument("file", metavar="IN.nir", help="the NIR graph (nir.write's HDF5)")
    imp.add_argument("-o", "--output", metavar="NET.snn", required=True,
                     help="the .snn file to write")
    imp.add_argument("--dt", metavar="TIME", help='the step the continuous-time graph is '
                     'discretised with, e.g. "0.1 ms" (default: the graph\'s metadata, else '
                     '1 ms)')
    imp.add_argument("--reset", choices=("hard", "soft"), help="how neurons reset where the "
                     "graph's metadata does not say (default hard: to v_reset; soft subtracts "
                     "the threshold)")
    imp.add_argument("--network", metavar="NAME", help="the network's name (default: the "
                     "file's stem)")


def _run_parser(commands) -> None:
    run = commands.add_parser("run", help="simulate a network and print its firing rates",
                              description="Simulate a network step by step on the clock "
                              "backend (whatever its `backend` setting), its inputs from "
                              "--input files or held at zero, and print each population's "
                              "spike count and firing rates.")
    _common(run)
    run.add_argument("--input", metavar="NAME=FILE", action="append", default=[],
                     help="feed input NAME from FILE (.npy or .pt): an array of the input's "
                     "shape, held for every step, or [steps, *shape], one entry per step")
    run.add_argument("--steps", type=int, metavar="N", help="steps to simulate "
                     "(default: the network's `steps`)")
    run.add_argument("--record", metavar="POP.VAR", nargs="+", action="extend", default=[],
                     help="also record these variables (`spikes` or a state such as `v`, or "
                     "a connection's `weight`: SRC->DST.weight), besides the network's monitors")
    run.add_argument("--weight-every", type=int, metavar="N",
                     help="steps between two samples of a recorded weight (default 1000)")
    run.add_argument("--plot", metavar="FILE.png", help="draw spike rasters, population "
                     "rates and recorded states into FILE (.png, .svg or .pdf)")
    run.add_argument("--save", metavar="FILE.pt|FILE.npz",
                     help="save the monitors, with dt_ms and steps (torch.save or numpy.savez)")
    run.add_argument("--network", metavar="NAME", help="the network to run (default: the first)")


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
        if args.command == "build":
            for written in build(args):
                print(f"wrote {printable(str(written))}")
        elif args.command == "check":
            graphs = graphs_of(args.file, None, args.allow_import)
            names = ", ".join(g.graph["name"] for g in graphs) or "no network"
            print(f"{printable(args.file)}: ok ({names})")
        elif args.command == "run":
            run_command(args)
        elif args.command == "import":
            for written in import_command(args):
                print(f"wrote {printable(str(written))}")
        elif args.command == "export":
            export_command(args)
        else:
            graphs = graphs_of(args.file, args.network, args.allow_import)
            sys.stdout.write(render_all(graphs, args.format))
    except SnnError as err:
        print(err.render(), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug in snnc, not in the input: say so, briefly
        if os.environ.get("SNNC_TRACEBACK"):
            raise
        print(printable(f"snnc: internal error: {type(exc).__name__}: {exc}"), file=sys.stderr)
        print("  please report it with the input file; SNNC_TRACEBACK=1 shows where it "
              "happened", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK


def build(args) -> list[Path]:
    from snnc.compiler import build_sources
    from snnc.resources import stdlib_dir
    from snnc.writer import check_targets, write_atomically
    program, modules = build_sources(args.file, args.backend, args.network, args.allow_import)
    if not modules:
        raise SnnError(f"{args.file} defines no network", hint="add `network NAME { ... }`")
    targets = output_paths(Path(args.file), args.output, [name for name, _ in modules])
    read = [Path(name) for name in program.sources] + sorted(stdlib_dir().glob("*.snn"))
    resolved = check_targets(targets, read)
    for (_, source), target in zip(modules, resolved, strict=True):
        write_atomically(target, source)
    return targets


def graphs_of(file: str, network: str | None, allowed: list[str]):
    """The checked graphs of a .snn file, or of a .nir file as the .snn text `snnc import`
    would write (named by the .nir file)."""
    if not file.endswith(".nir"):
        return frontend(file, network, allowed=allowed)
    from snnc.interchange.nir_import import import_file, scratch_copy
    out = Path(file).with_suffix(".snn")
    with scratch_copy(import_file(file, out), out.name) as path:
        graphs = frontend(path, network)
    for graph in graphs:
        graph.graph["file"] = file
    return graphs


def import_command(args) -> list[Path]:
    from snnc.interchange.nir_import import import_file, parse_dt, write_import
    out = Path(args.output)
    if out.suffix != ".snn":
        raise SnnError(f"-o {args.output}: the output must be a .snn file")
    dt_s = parse_dt(args.dt) if args.dt is not None else None
    imported = import_file(args.file, out, args.network, dt_s, args.reset)
    for warning in imported.warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    weights = write_import(imported, out, Path(args.file))
    return [out, weights]


def export_command(args) -> None:
    from snnc.interchange.nir_export import export_file
    graph, warnings = export_file(args.file, args.nir, args.network, args.weights,
                                  args.allow_import)
    for warning in warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    print(f"wrote {printable(args.nir)}: {len(graph.nodes)} nodes, {len(graph.edges)} edges")


def run_command(args) -> None:
    from rich.console import Console

    from snnc.run import run_network
    run_network(args.file, args.steps, args.record, args.plot, args.save, args.network,
                args.allow_import, console=Console(markup=False, highlight=False),
                weight_every=args.weight_every, inputs=args.input)


def output_paths(source: Path, output: str | None, classes: list[str]) -> list[Path]:
    """Where each generated module goes: OUT.py, DIR/<Class>.py, or NET.py beside NET.snn."""
    if output and (output.endswith(("/", "\\")) or Path(output).is_dir()):
        return [Path(output) / f"{name_to_module(c)}.py" for c in classes]
    if len(classes) > 1:
        raise SnnError(f"{source} has {len(classes)} networks; choose one with --network "
                       "or give a folder: -o DIR/")
    return [Path(output) if output else source.with_suffix(".py")]


def name_to_module(class_name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in class_name).lstrip("_")


def run() -> None:
    """The `snnc` command. Once it is done, the process ends without tearing the
    interpreter down: with torch imported that takes about half a second, a sixth of a
    whole `snnc run` of CUBA. The exit handlers still run and the output is flushed
    first."""
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`snnc inspect | head`): nothing to say
            pass
    os._exit(code)
