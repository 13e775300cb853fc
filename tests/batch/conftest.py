"""Fixtures of the batch tests: the tiny trained pack (fast) and its engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.training.tiny_pack import build_tiny_pack


@pytest.fixture(scope="session")
def tiny_pack(kb: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batch_packs") / "tiny"
    build_tiny_pack(kb, out)
    return out


@pytest.fixture(scope="module")
def engine(tiny_pack: Path, kb_path: Path) -> Any:
    from clinicode.engine import load

    eng = load(tiny_pack, kb_path=kb_path)
    yield eng
    eng.close()
