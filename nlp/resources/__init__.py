"""Data files of the NLP pipeline (section headers, abbreviations, synonyms, ConText rules).

Everything is read through :func:`load_resource`, so there is one place that parses them.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

NLP_RESOURCES: tuple[str, ...] = ("sections.json", "abbreviations.json", "synonyms.json")


def read_text(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=16)
def load_resource(name: str) -> Any:
    """The parsed JSON resource ``name`` (cached; callers must not mutate it)."""
    return json.loads(read_text(name))


def resources_hash(names: tuple[str, ...] = NLP_RESOURCES) -> str:
    """A short hash of the given resource files (keys the caches built from them)."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode())
        h.update(read_text(name).encode("utf-8"))
    return h.hexdigest()[:16]
