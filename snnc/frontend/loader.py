"""Reading files: UTF-8 decoding, imports, and the neuron models a file can use.

Imports are relative to the importing file. A path that is absolute or leaves
the main file's folder is refused unless it lies under a folder the user
allowed on the command line (`snnc ... -I DIR`).

Whatever a path names, reading it is bounded (snnc.limits): only regular files are
opened (never a FIFO or a device, which could block or never end), at most
MAX_FILE_BYTES are read from one, at most MAX_FILES files and MAX_TOTAL_SOURCE_BYTES
bytes in all per build, and imports are followed with an explicit stack, so a chain
of a thousand imports is no deeper for Python than one.
"""
from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from snnc.errors import Pos, SnnError
from snnc.frontend import ast
from snnc.frontend.parser import parse_text
from snnc.limits import MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_SOURCE_BYTES, max_memory_bytes
from snnc.resources import stdlib_dir

# Never block on a FIFO swapped in after the stat; never make a terminal ours.
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


@dataclass
class Program:
    """The main file, the neuron models it can see, and every source text read."""

    main: ast.File
    models: dict[str, ast.NeuronDef]
    sources: dict[str, str] = field(default_factory=dict)
    main_path: Path | None = None
    roots: list[Path] = field(default_factory=list)  # where imports and weights may lie

    def weights_file(self, stmt: ast.Weights) -> Path:
        """The file a network's `weights "FILE"` names, relative to the main file and
        within the folders imports may come from; a regular file within the memory limit."""
        target = _resolve_within(stmt.path, self.main_path, self.roots, stmt.pos, "weights")
        info, limit = os.stat(target), max_memory_bytes()
        if not stat.S_ISREG(info.st_mode):
            raise SnnError(f"weights {stmt.path!r} is {_file_kind(info.st_mode)}, not a file",
                           stmt.pos, "name a .pt file of the network's state_dict")
        if info.st_size > limit:
            raise SnnError(f"weights {stmt.path!r} is larger than the memory limit "
                           f"({info.st_size} > {limit} bytes)", stmt.pos,
                           "raise SNNC_MAX_MEMORY if the file is what you meant")
        return target

    def digests(self) -> list[tuple[str, str]]:
        """(file as shown, sha256 of its text as read) for every file read, the main file
        first, then its imports in the order they were read."""
        return [(name, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest())
                for name, text in self.sources.items()]


def read_source(path: Path, shown: str, limit: int = MAX_FILE_BYTES) -> str:
    """A file's text, or an SnnError saying why it cannot be read as UTF-8 text."""
    return _decode(_read_bytes(path, shown, limit), shown)


def _read_bytes(path: Path, shown: str, limit: int) -> bytes:
    """At most `limit` bytes of a regular file: a device, a FIFO or a socket is refused
    before it is opened (stat), and again after (fstat: it may have been swapped)."""
    try:
        _check_regular(os.stat(path), shown, limit)
        fd = os.open(path, _OPEN_FLAGS)
        with os.fdopen(fd, "rb", buffering=0) as file:
            _check_regular(os.fstat(file.fileno()), shown, limit)
            data = _read_at_most(file, limit + 1)  # it may grow while it is read
    except FileNotFoundError:
        raise SnnError(f"no such file: {shown}") from None
    except OSError as exc:  # permissions, a loop of links, a name too long...
        raise SnnError(f"cannot read {shown}: {exc.strerror or exc}") from None
    except ValueError:  # a NUL character in the path
        raise SnnError(f"cannot read {shown}: the path contains a NUL character") from None
    if len(data) > limit:
        raise _too_large(shown, limit)
    return data


def _check_regular(info: os.stat_result, shown: str, limit: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise SnnError(f"{shown} is a folder, not a .snn file")
    if not stat.S_ISREG(info.st_mode):
        raise SnnError(f"{shown} is {_file_kind(info.st_mode)}, not a regular file",
                       hint="a .snn file is plain UTF-8 text in a regular file")
    if info.st_size > limit:
        raise _too_large(shown, limit)


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    for test, kind in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a special file"


def _read_at_most(file, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = file.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _too_large(shown: str, limit: int) -> SnnError:
    return SnnError(f"{shown} is larger than {limit // 2**20} MiB",
                    hint=f"a .snn file may hold at most {limit} bytes")


def _decode(data: bytes, shown: str) -> str:
    """UTF-8 text without its BOM. A byte that is not UTF-8 is named in hex with its
    position, and the line is not shown: it would echo the raw bytes to the terminal."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        # Columns count characters, as the lexer's do; the line is valid up to the byte.
        col = len(data[line_start:exc.start].decode("utf-8")) + 1
        raise SnnError(f"this file is not UTF-8 text: byte 0x{data[exc.start]:02x} at "
                       f"{line}:{col} is not UTF-8", Pos(shown, line, col),
                       "a .snn file is plain UTF-8 text") from None
    return text.removeprefix("\ufeff")


@lru_cache(maxsize=1)
def stdlib_models() -> dict[str, ast.NeuronDef]:
    models: dict[str, ast.NeuronDef] = {}
    for path in sorted(stdlib_dir().glob("*.snn")):
        for defn in parse_text(path.read_text(encoding="utf-8"), f"<stdlib>/{path.name}").neurons:
            models[defn.name] = defn
    return models


@dataclass
class _Open:
    """A file being loaded: its imports are followed one by one, then its models added."""

    path: Path
    shown: str
    parsed: ast.File
    next_import: int = 0


def load(path: str | Path, allowed: Iterable[str | Path] = ()) -> Program:
    """Parse `path` and everything it imports. A file's models shadow those of the
    files it imports (added after them, in import order), which shadow the stdlib's; a
    file already read (a cycle, or a second import) is skipped."""
    main_path = Path(path)
    main = _resolve(main_path, str(path))
    roots = [main.parent, *(_resolve(Path(a), str(a)) for a in allowed)]
    program = Program(main=None, models=dict(stdlib_models()),  # type: ignore[arg-type]
                      main_path=main, roots=roots)
    seen, budget = {main}, _Budget()
    stack = [_open(main_path, str(path), program, budget)]
    program.main = stack[0].parsed
    while stack:  # depth-first, as recursion would, without Python's stack
        top = stack[-1]
        if top.next_import == len(top.parsed.imports):
            stack.pop()
            _add_models(top.parsed.neurons, program, top.shown)
            continue
        imp = top.parsed.imports[top.next_import]
        top.next_import += 1
        try:
            target = _resolve_within(imp.path, top.path, roots, imp.pos, "import")
        except SnnError as err:
            raise err.with_source(program.sources[top.shown]) from None
        if target not in seen:
            seen.add(target)
            stack.append(_open(target, _display(target), program, budget, (imp, top)))
    return program


class _Budget:
    """What a build may still read: MAX_FILES files, MAX_TOTAL_SOURCE_BYTES bytes."""

    def __init__(self):
        self.files, self.size = MAX_FILES, MAX_TOTAL_SOURCE_BYTES

    def take_file(self, imp: ast.Import | None) -> None:
        if self.files < 1:
            raise SnnError(f"one file too many: a build reads at most {MAX_FILES} files",
                           imp.pos if imp else None, "import fewer files")
        self.files -= 1

    def take_bytes(self, size: int, imp: ast.Import | None) -> None:
        if size > self.size:
            raise SnnError(f"this import takes the sources of the build over "
                           f"{MAX_TOTAL_SOURCE_BYTES // 2**20} MiB", imp.pos if imp else None,
                           f"a build reads at most {MAX_TOTAL_SOURCE_BYTES} bytes of .snn files")
        self.size -= size


def _open(path: Path, shown: str, program: Program, budget: _Budget,
          importer: tuple[ast.Import, _Open] | None = None) -> _Open:
    """Read and parse one file within the budget."""
    try:
        budget.take_file(importer and importer[0])
        data = _read_bytes(path, shown, MAX_FILE_BYTES)
        budget.take_bytes(len(data), importer and importer[0])
        text = _decode(data, shown)
    except SnnError as err:
        raise _at_import(err, importer, program) from None
    program.sources[shown] = text
    return _Open(path, shown, parse_text(text, shown))  # its errors carry its source


def _at_import(err: SnnError, importer: tuple[ast.Import, _Open] | None,
               program: Program) -> SnnError:
    """An error about reading an imported file: without a position of its own it is
    placed at the import statement, with the importing file's line."""
    if importer is None:
        return err
    imp, by = importer
    if err.pos is None:
        err = SnnError(f"cannot import {imp.path!r}: {err.message}", imp.pos, err.hint)
    if err.file == by.shown:
        err.with_source(program.sources[by.shown])
    return err


def _resolve(path: Path, shown: str) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a loop of links
        raise SnnError(f"cannot read {shown}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, RuntimeError):
        return "a loop of symbolic links"
    if isinstance(exc, ValueError):
        return "the path contains a NUL character"
    return str(getattr(exc, "strerror", None) or exc)


def _resolve_within(path: str, importer: Path, roots: list[Path], pos: Pos, what: str
                    ) -> Path:
    """`path` (an import's or a weights file's) relative to the file that names it; one
    that is absolute or leaves the main file's folder must lie under an allowed root."""
    if not path:
        raise SnnError(f"empty {what} path", pos)
    if "\x00" in path:
        raise SnnError(f"{what} path contains a NUL character", pos)
    raw = Path(path)
    try:
        target = (raw if raw.is_absolute() else importer.parent / raw).resolve()
        if not any(target.is_relative_to(r) for r in roots):
            why = "an absolute path" if raw.is_absolute() else "outside the folder of the main file"
            raise SnnError(f"{what} of {path!r} refused: {why}", pos,
                           f"allow its folder on the command line: -I {target.parent}")
        if not target.exists():
            verb = "import" if what == "import" else "read weights"
            raise SnnError(f"cannot {verb} {path!r}: no such file", pos)
    except (OSError, RuntimeError) as exc:  # a name too long, a loop of links...
        raise SnnError(f"cannot {what} {path!r}: {_reason(exc)}", pos) from None
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
                           f"first defined at line {local[defn.name].pos.line}",
                           program.sources[shown])
        local[defn.name] = defn
    program.models.update(local)
