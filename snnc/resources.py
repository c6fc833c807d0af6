"""Where the grammar, templates and standard library live, installed or in a checkout.

A wheel carries `grammar/` and `templates/` inside the package (pyproject maps
them to `snnc/grammar` and `snnc/templates`); a source checkout or an editable
install keeps them at the top of the repository.
"""
from __future__ import annotations

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
