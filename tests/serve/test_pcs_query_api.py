"""An ICD-10-PCS code the note documents only in part, through ``POST /v1/suggest``.

The PCS builder (``models/pcs``) never guesses an axis the note leaves out: the code comes back
in ``codes`` with status ``needs_query``, a placeholder value, and a ``query`` naming the axis
("approach not documented"). The API contract is that ``/v1/suggest`` returns exactly the
``SuggestResult`` JSON of ``clinicode suggest`` (docs/serve.md), so the query must reach an
integrator as the engine made it, ``?compact=true`` included (it drops only mentions, candidates
and suppressed codes). Real engine (a tiny pack) over ICD-10-CM plus the FY2026 PCS order file;
skipped where ../shared/data has no PCS file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from clinicode.schema import SuggestResult

pytestmark = pytest.mark.slow

NOTE = "PREOPERATIVE DIAGNOSIS: Acute appendicitis.\nPROCEDURE: Appendectomy.\n"


@pytest.fixture(scope="module")
def pcs_engine(kb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The real engine over ICD-10-CM and ICD-10-PCS, with the tiny test pack."""
    import clinicode
    from clinicode.kb import open_kb
    from clinicode.kb.importers import run_import
    from tests.conftest import shared_path
    from tests.training.tiny_pack import build_tiny_pack

    order = shared_path("pcs", "icd10pcs_order_2026.txt")
    tmp = tmp_path_factory.mktemp("pcs_api")
    kb = tmp / "kb.sqlite"
    shutil.copy(kb_path, kb)
    run_import("pcs", order, kb)
    build_tiny_pack(open_kb(kb), tmp / "pack")
    return clinicode.load(tmp / "pack", kb_path=kb, cache=False)


@pytest.fixture
def engine(pcs_engine: Any) -> Any:
    """The real PCS engine behind ``conftest.client`` (instead of the fake)."""
    return pcs_engine


def _pcs(body: dict[str, Any], field: str = "codes") -> list[dict[str, Any]]:
    return [s for s in body.get(field, []) if s["system"] == "ICD-10-PCS"]


def test_undocumented_approach_comes_back_as_a_query(client: Any, pcs_engine: Any) -> None:
    r = client.post("/v1/suggest", json={"text": NOTE, "setting": "inpatient"})
    assert r.status_code == 200, r.text
    body = r.json()
    queried = [s for s in _pcs(body) if s["status"] == "needs_query"]
    assert len(queried) == 1, _pcs(body)
    s = queried[0]
    assert s["code"].startswith("0DTJ")  # resection of the appendix, approach unknown
    assert s["query"]["axis"] == "approach"
    assert "approach not documented" in s["query"]["question"].lower()
    assert any("QUERY" in line for line in s["explanation"])
    assert s["suggestion_id"]
    assert [NOTE[e["start"] : e["end"]] for e in s["evidence"]] == [
        e["text"] for e in s["evidence"]
    ]
    # exactly the engine's result (the ids are the engine's too: same text, pack and code)
    direct = pcs_engine.suggest(NOTE, setting="inpatient").model_dump(mode="json")
    assert [c for c in _pcs(direct) if c["status"] == "needs_query"] == queried
    assert SuggestResult.model_validate(body).model_dump(mode="json") == body


def test_compact_keeps_the_query_and_outpatient_gets_none(client: Any) -> None:
    r = client.post("/v1/suggest?compact=true", json={"text": NOTE, "setting": "inpatient"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "candidates" not in body and "mentions" not in body
    (s,) = [s for s in _pcs(body) if s["status"] == "needs_query"]
    assert s["query"]["axis"] == "approach"
    # ICD-10-PCS is the inpatient facility's code set: an outpatient note gets no PCS query
    out = client.post("/v1/suggest", json={"text": NOTE, "setting": "outpatient"}).json()
    assert not [c for c in _pcs(out) if c["status"] == "needs_query"]
    assert not _pcs(out)  # and no suggested PCS code at all
