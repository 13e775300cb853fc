"""The JSON views that `clinicode codes search/lookup --json` and the HTTP API both print."""

from __future__ import annotations

from typing import Any

from clinicode.kb.records import SearchHit
from clinicode.kb.views import hit_json, record_json, search_json


def test_hit_json_names_the_version_and_rounds_the_score() -> None:
    hit = SearchHit(
        system="ICD-10-CM",
        code="E11.9",
        title="Type 2 diabetes mellitus without complications",
        billable=True,
        score=12.345678,
        matched="Diabetes, type 2",
        source="index",
    )
    assert hit_json(hit, {"ICD-10-CM": "FY2026"}) == {
        "system": "ICD-10-CM",
        "version": "FY2026",
        "code": "E11.9",
        "title": "Type 2 diabetes mellitus without complications",
        "billable": True,
        "score": 12.3457,
        "matched": "Diabetes, type 2",
        "matched_source": "index",
    }
    assert hit_json(hit, {})["version"] is None


def test_search_json_keeps_the_kb_ranking_and_filters(kb: Any) -> None:
    hits = kb.search("heart failure", systems=["ICD-10-CM"], limit=7, billable_only=True)
    rows = search_json(kb, "heart failure", systems=["ICD-10-CM"], limit=7, billable_only=True)
    assert [r["code"] for r in rows] == [h.code for h in hits] and len(rows) == 7
    assert all(r["billable"] and r["version"] == "FY2026" for r in rows)
    assert search_json(kb, "qwxzv", systems=None, limit=5, billable_only=False) == []


def test_record_json_has_parents_and_children(kb: Any) -> None:
    data = record_json(kb, kb.get("E11.2", "ICD-10-CM"))
    assert data["code"] == "E11.2" and data["billable"] is False
    assert [p["code"] for p in data["parents"]][:1] == ["E11"]
    assert "E11.22" in [c["code"] for c in data["children"]]
