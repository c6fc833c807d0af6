"""The Jinja2 environment over templates/ that every code generator renders with."""
from __future__ import annotations

from functools import lru_cache

import jinja2

from snnc.backends.common import literal
from snnc.resources import cache_dir, data_dir


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    # Compiling the templates costs more than rendering them: their bytecode is cached
    # (Jinja checks each against its template's text).
    folder = cache_dir("templates")
    bytecode = None if folder is None else jinja2.FileSystemBytecodeCache(str(folder))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             bytecode_cache=bytecode)
    env.filters["py"] = literal
    return env
