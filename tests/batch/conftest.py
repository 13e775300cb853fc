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


@pytest.fixture(scope="session")
def spark() -> Any:
    """One local[2] Spark session for every Spark test (skipped without pyspark or Java)."""
    from clinicode.batch.spark import spark_available, spark_session

    missing = spark_available()
    if missing is not None:
        pytest.skip(f"Spark tests need {missing}")
    session = spark_session(None, 2)
    yield session
    session.stop()
