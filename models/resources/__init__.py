"""The models' clinical knowledge as data files (YAML), read by one function."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


@lru_cache(maxsize=32)
def load_resource(name: str) -> dict[str, Any]:
    """One YAML file of ``models/resources`` (read once, cached; callers must not mutate it)."""
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def strings_of(data: Any) -> Iterator[str]:
    """Every string in a loaded data file (its nested lists and mappings, keys aside)."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from strings_of(value)
    elif isinstance(data, list | tuple):
        for value in data:
            yield from strings_of(value)


def compile_every(data: Any, compile_one: Callable[[str], object]) -> None:
    """``compile_one`` each string of a loaded data file, now rather than on the note that first
    needs it (warm-up). Every string is compiled, codes and names too: harmless, and no list of
    which fields hold patterns to keep in step with the data. A string that is no regular
    expression is skipped."""
    for p in set(strings_of(data)):
        with contextlib.suppress(re.error):
            compile_one(p)
