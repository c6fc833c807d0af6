"""Where the grammar, templates and standard library live, installed or in a checkout,
and where snnc caches what it builds from them.

A wheel carries `grammar/` and `templates/` inside the package (pyproject maps
them to `snnc/grammar` and `snnc/templates`); a source checkout or an editable
install keeps them at the top of the repository.
"""
from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `name` (`grammar` or `templates`), wherever this install keeps it."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"snnc is installed without its '{name}' folder")


def stdlib_dir() -> Path:
    return _PACKAGE / "stdlib"


def cache_root() -> Path:
    """Where snnc caches what it builds: $SNNC_CACHE, else ~/.cache/snnc."""
    return Path(os.environ.get("SNNC_CACHE") or Path.home() / ".cache" / "snnc")


def cache_dir(name: str) -> Path | None:
    """The folder `name` of the cache, made if missing; None where it cannot be (a
    read-only home): then nothing is cached there."""
    folder = cache_root() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder
