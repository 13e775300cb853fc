"""Fixtures for the NLP tests: one real pipeline per session (its lexicon built in a tmp dir)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def pipe(kb: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The full pipeline over the test KB; the lexicon cache lives in a session tmp dir."""
    from clinicode.nlp import load_pipeline

    cache: Path = tmp_path_factory.mktemp("nlp-cache")
    return load_pipeline(kb, cache=cache)
