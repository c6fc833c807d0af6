"""What every backend needs: literals, names and headers."""
from __future__ import annotations

import itertools
import keyword
from pathlib import Path

from snnc.errors import printable
from snnc.ir.values import Normal, Symbol, Uniform
from snnc.plan.nodes import Plan

# Names generated code uses itself; a model's name that collides gets a trailing `_`.
_TAKEN = {"spike", "fired", "rt", "torch", "nn", "self"}  # `x` is the input, as in .snn


def py_name(name: str) -> str:
    """A language identifier as a safe Python identifier (keywords get a trailing `_`)."""
    if not name.isidentifier():
        raise ValueError(f"not an identifier: {name!r}")  # the grammar makes this impossible
    return f"{name}_" if keyword.iskeyword(name) or name in _TAKEN else name


class Scope:
    """The Python names of one generated scope (a module, a function): each is a valid
    identifier, no keyword, none of the names the generated code itself relies on there,
    and distinct from every other name handed out, so no name a user may choose can
    shadow another (inputs `h` and `s_h` must not share a variable)."""

    def __init__(self, reserved: set[str] = frozenset()):
        self.taken = set(reserved)

    def name(self, wanted: str) -> str:
        """`wanted`, else `wanted_` (Python's way past a keyword), else `wanted_2`, ..."""
        if not wanted.isidentifier():
            raise ValueError(f"not an identifier: {wanted!r}")  # the grammar prevents this
        candidates = itertools.chain((wanted, f"{wanted}_"),
                                     (f"{wanted}_{i}" for i in itertools.count(2)))
        name = next(c for c in candidates if c not in self.taken and not keyword.iskeyword(c))
        self.taken.add(name)
        return name


def camel_case(name: str) -> str:
    """`mnist_mlp` -> `MnistMlp` (LANGUAGE.md §3); a keyword (`None`) gets a trailing `_`."""
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
    camel = camel or "Network"
    camel = f"N{camel}" if camel[0].isdigit() else camel
    return f"{camel}_" if keyword.iskeyword(camel) else camel


def literal(value) -> str:
    """A checked value as Python source; nothing from the input is pasted unchecked."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Symbol):
        return repr(value.name)
    if isinstance(value, Uniform):
        return f"rt.Uniform({value.low!r}, {value.high!r})"
    if isinstance(value, Normal):
        return f"rt.Normal({value.mean!r}, {value.std!r})"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no literal for {value!r}")


def header(plan: Plan, backend: str, version: str) -> dict:
    """What the generated file says of its origin: the source files (names escaped by
    `comment`, so none can end the comment line) with the sha256 the front end computed
    of each, the snnc version and the backend. A graph that never came from a file (one
    imported from NIR, say) names none."""
    sources = plan.sources or [(plan.file, None)]
    (main, digest), imports = sources[0], sources[1:]
    shown = comment(Path(main).name) if main else "a graph built in memory"
    folder = Path(main).parent if main else Path()
    return {"source": shown, "sha256": digest, "version": version, "backend": backend,
            "imports": [(comment(_relative(n, folder)), d) for n, d in imports]}


def _relative(name: str, folder: Path) -> str:
    """An imported file as seen from the main file's folder (so that the generated file
    does not change with where the project lies), else as it was shown."""
    try:
        return str(Path(name).relative_to(folder))
    except ValueError:
        return name


def comment(text: str) -> str:
    """Text from the input (a file name) as it may appear in a generated comment: control
    characters and line breaks escaped, so it cannot end the comment and become code."""
    return printable(text)
