"""Data files of the service (loaded by :func:`load`, cached; importing does no I/O)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any


@lru_cache(maxsize=8)
def load(name: str) -> Any:
    """The parsed JSON resource ``name`` (callers must not mutate it)."""
    return json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))
