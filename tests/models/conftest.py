"""Fixtures of the model tests."""

from __future__ import annotations

from typing import Any

import pytest

from clinicode.models.guidelines import Guidelines


@pytest.fixture(scope="module")
def g(kb: Any) -> Guidelines:
    """The guidelines layer over the session's ICD-10-CM knowledge base."""
    return Guidelines(kb)


@pytest.fixture(scope="session")
def pcs_kb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A knowledge base holding only the FY2026 ICD-10-PCS order file (imported once per
    session; skipped where ../shared/data is absent)."""
    from clinicode.kb import KnowledgeBase
    from clinicode.kb.importers import run_import
    from tests.conftest import shared_path

    order = shared_path("pcs", "icd10pcs_order_2026.txt")
    path = tmp_path_factory.mktemp("pcs_kb") / "kb.sqlite"
    run_import("pcs", order, path)
    return KnowledgeBase(path)
