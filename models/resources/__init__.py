"""The models' clinical knowledge as data files (YAML), read by one function."""

from __future__ import annotations

from collections.abc import Iterator
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
