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


@pytest.fixture(scope="session")
def drug_g(kb_path: Any, tmp_path_factory: pytest.TempPathFactory) -> Guidelines:
    """The guidelines layer over ICD-10-CM with the Table of Drugs imported (FY2025 XML; once
    per session; skipped where ../shared/data is absent)."""
    import shutil

    from clinicode.kb import KnowledgeBase
    from clinicode.kb.importers import run_import
    from tests.conftest import shared_path

    table = shared_path("icd10cm-tables-2025", "icd-10-cm-drug-2025.xml")
    path = tmp_path_factory.mktemp("drug_kb") / "kb.sqlite"
    shutil.copy(kb_path, path)
    run_import("drug", table, path)
    return Guidelines(KnowledgeBase(path))
