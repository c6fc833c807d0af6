"""Reading files: UTF-8 decoding, imports, and the neuron models a file can use.

Imports are relative to the importing file. A path that is absolute or leaves
the main file's folder is refused unless it lies under a folder the user
allowed on the command line (`snnc ... -I DIR`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from snnc.errors import Pos, SnnError
from snnc.frontend import ast
from snnc.frontend.parser import parse_text
from snnc.resources import stdlib_dir

MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass
class Program:
    """The main file, the neuron models it can see, and every source text read."""

    main: ast.File
    models: dict[str, ast.NeuronDef]
    sources: dict[str, str] = field(default_factory=dict)


def read_source(path: Path, shown: str) -> str:
    """A file's text, or an SnnError saying why it cannot be read as UTF-8 text."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnnError(f"no such file: {shown}") from None
    except IsADirectoryError:
        raise SnnError(f"{shown} is a folder, not a .snn file") from None
    except OSError as exc:
        raise SnnError(f"cannot read {shown}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SnnError(f"{shown} is larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SnnError("this file is not UTF-8 text", Pos(shown, line, col),
                       "a .snn file is plain UTF-8 text",
                       data.decode("utf-8", errors="replace")) from None
    return text.removeprefix("\ufeff")


@lru_cache(maxsize=1)
def stdlib_models() -> dict[str, ast.NeuronDef]:
    models: dict[str, ast.NeuronDef] = {}
    for path in sorted(stdlib_dir().glob("*.snn")):
        for defn in parse_text(path.read_text(encoding="utf-8"), f"<stdlib>/{path.name}").neurons:
            models[defn.name] = defn
    return models


def load(path: str | Path, allowed: Iterable[str | Path] = ()) -> Program:
    """Parse `path` and everything it imports; models of later files shadow the stdlib."""
    main_path = Path(path)
    root = main_path.resolve().parent
    roots = [root, *(Path(a).resolve() for a in allowed)]
    program = Program(main=None, models=dict(stdlib_models()))  # type: ignore[arg-type]
    program.main = _load_file(main_path, str(path), roots, program, set())
    return program


def _load_file(path: Path, shown: str, roots: list[Path], program: Program,
               seen: set[Path]) -> ast.File:
    seen.add(path.resolve())
    text = read_source(path, shown)
    program.sources[shown] = text
    try:
        parsed = parse_text(text, shown)
        for imp in parsed.imports:
            target = _resolve_import(imp, path, roots)
            if target.resolve() in seen:
                continue
            _load_file(target, _display(target), roots, program, seen)
        _add_models(parsed.neurons, program, shown)
    except SnnError as err:
        raise err.with_source(program.sources.get(err.file, text)) from None
    return parsed


def _resolve_import(imp: ast.Import, importer: Path, roots: list[Path]) -> Path:
    if not imp.path:
        raise SnnError("empty import path", imp.pos)
    if "\x00" in imp.path:
        raise SnnError("import path contains a NUL character", imp.pos)
    raw = Path(imp.path)
    try:
        target = (raw if raw.is_absolute() else importer.parent / raw).resolve()
        if not any(target.is_relative_to(r) for r in roots):
            why = "an absolute path" if raw.is_absolute() else "outside the folder of the main file"
            raise SnnError(f"import of {imp.path!r} refused: {why}", imp.pos,
                           f"allow its folder on the command line: -I {target.parent}")
        if not target.is_file():
            raise SnnError(f"cannot import {imp.path!r}: no such file", imp.pos)
    except OSError as exc:  # a name too long, a loop of links...
        raise SnnError(f"cannot import {imp.path!r}: {exc.strerror or exc}", imp.pos) from None
    return target


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _add_models(defs: tuple[ast.NeuronDef, ...], program: Program, shown: str) -> None:
    local: dict[str, ast.NeuronDef] = {}
    for defn in defs:
        if defn.name in local:
            raise SnnError(f"neuron {defn.name} is defined twice", defn.pos,
                           f"first defined at line {local[defn.name].pos.line}")
        local[defn.name] = defn
    program.models.update(local)
