"""The Jinja2 environment over templates/ that every code generator renders with."""
from __future__ import annotations

from functools import lru_cache

import jinja2

from snnc.backends.common import literal
from snnc.resources import data_dir


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["py"] = literal
    return env
