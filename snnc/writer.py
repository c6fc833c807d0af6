"""Writing generated files so that a failed build never leaves a half-written one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from snnc.errors import SnnError


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SnnError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise SnnError(f"cannot write {path}: {exc.strerror}") from None
