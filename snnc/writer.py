"""Writing generated files so that a failed build never leaves a half-written one, and a
build never replaces what it must not: one of its own inputs, a device, a folder."""
from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from snnc.errors import SnnError, printable


def check_targets(targets: list[Path], inputs: Iterable[Path]) -> list[Path]:
    """The files a build will write, resolved (through symbolic links, so a link keeps
    pointing where it did): refused when one is a file the build reads, when two builds
    would write one file, or when one exists and is not a regular file."""
    read = {path.resolve() for path in inputs}
    resolved: list[Path] = []
    for target in targets:
        real = target.resolve()
        if real in read:
            raise SnnError(f"refusing to write {printable(str(target))}: it is an input of "
                           "this build", hint="choose another output with -o OUT.py")
        if real in resolved:
            raise SnnError(f"two networks would both be written to {printable(str(target))}",
                           hint="build them one at a time with --network NAME")
        if real.exists() and not real.is_file():
            raise SnnError(f"refusing to write {printable(str(target))}: it exists and is not "
                           "a regular file", hint="choose another output with -o OUT.py")
        resolved.append(real)
    return resolved


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (write_atomically_with)."""
    write_atomically_with(path, lambda out: out.write(text.encode("utf-8")))


def write_atomically_with(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """`write` fills a temporary file beside `path` (bytes: text, torch.save, numpy.savez,
    savefig), which is then renamed over `path`, so a failed write leaves an earlier file
    whole. The file gets the mode an ordinary write would give it: an existing file's,
    else 0666 less the umask (mkstemp's own 0600 would hide it from the user's group)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".snnc.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SnnError(f"cannot write {printable(str(path))}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except OSError as exc:
        raise SnnError(f"cannot write {printable(str(path))}: {exc.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)  # the only way to read it; set back at once
        os.umask(umask)
        return 0o666 & ~umask
