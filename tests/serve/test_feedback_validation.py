"""Issue 13, failure 3: a coder's decision is checked against the code sets before it is
recorded. Only billable codes of a loaded system reach the training export; the 422 names the
reason; a note_id (or code) that disagrees with the suggestion_id gets 409."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import NOTE


def _suggest(client: Any, note_id: str, text: str = NOTE) -> dict[str, Any]:
    r = client.post("/v1/suggest", json={"text": text, "setting": "outpatient", "note_id": note_id})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _export(client: Any, admin_key: str) -> list[dict[str, Any]]:
    r = client.get("/v1/feedback/export", headers={"X-API-Key": admin_key})
    assert r.status_code == 200
    return [json.loads(line) for line in r.text.splitlines()]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"action": "add", "code": "E11"}, "E11 is a category of ICD-10-CM FY2026"),
        ({"action": "add", "code": "R07"}, "R07 is a category"),
        ({"action": "add", "code": "I00-I99"}, "I00-I99 is a chapter"),
        ({"action": "add", "code": "NOTACODE1", "system": "HCPCS"}, "HCPCS is not loaded"),
        ({"action": "add", "code": "XXXXXXX", "system": "ICD-10-PCS"}, "ICD-10-PCS is not loaded"),
        ({"action": "add", "code": "Q99.999"}, "Q99.999 is not a code of ICD-10-CM FY2026"),
        ({"action": "modify", "code": "I10", "final_code": "A00-B99"}, "A00-B99 is a chapter"),
        ({"action": "modify", "code": "I10", "final_code": "E08-E13"}, "E08-E13 is a block"),
        ({"action": "modify", "code": "I10", "final_code": "S72.001"}, "needs its 7th character"),
        ({"action": "modify", "code": "I10", "final_code": "E11.2"}, "E11.2 is a subcategory"),
    ],
)
def test_an_invalid_decision_is_422_naming_the_reason_and_never_exported(
    client: Any, admin_key: str, payload: dict[str, Any], reason: str
) -> None:
    _suggest(client, "v1")
    r = client.post("/v1/feedback", json={"note_id": "v1", **payload})
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    assert _export(client, admin_key) == []


def test_valid_decisions_still_pass(client: Any, admin_key: str) -> None:
    _suggest(client, "v2")
    for payload in (
        {"action": "add", "code": "S72.001A"},
        {"action": "add", "code": "99213", "system": "CPT"},
        {"action": "modify", "code": "I10", "final_code": "I11.9"},
        {"action": "accept", "code": "E11.9"},
    ):
        r = client.post("/v1/feedback", json={"note_id": "v2", **payload})
        assert r.status_code == 201, (payload, r.text)
    (row,) = _export(client, admin_key)
    assert {c["code"] for c in row["codes"]} == {"S72.001A", "99213", "I11.9", "E11.9"}


def test_a_typed_code_of_a_system_that_is_not_loaded_is_refused(client: Any) -> None:
    body = _suggest(client, "v3", "Appendectomy performed. Hypertension.")
    pcs = next(c for c in body["codes"] if c["system"] == "ICD-10-PCS")
    r = client.post(
        "/v1/feedback",
        json={"suggestion_id": pcs["suggestion_id"], "action": "modify", "final_code": "0DTJ0ZZ"},
    )
    assert r.status_code == 422 and "ICD-10-PCS is not loaded" in r.json()["detail"]
    # the engine's own suggestion of it is recorded as suggested (nothing to check it against)
    r = client.post(
        "/v1/feedback", json={"suggestion_id": pcs["suggestion_id"], "action": "accept"}
    )
    assert r.status_code == 201


def test_accepting_a_code_that_is_not_billable_is_refused(client: Any, engine: Any) -> None:
    from clinicode.schema import CodeSuggestion

    real = engine.suggest

    def with_category(text: str, setting: str = "outpatient", **kw: Any) -> Any:
        result = real(text, setting, **kw)
        result.candidates.append(
            CodeSuggestion(
                suggestion_id="cat-e11", system="ICD-10-CM", code="E11", title="T2DM", score=0.2
            )
        )
        return result

    engine.suggest = with_category
    _suggest(client, "v4")
    r = client.post("/v1/feedback", json={"suggestion_id": "cat-e11", "action": "accept"})
    assert r.status_code == 422 and "E11 is a category" in r.json()["detail"]


def test_ids_that_disagree_are_409(client: Any, admin_key: str) -> None:
    body = _suggest(client, "a1")
    _suggest(client, "b1", "Fever and chest pain.")
    sid = next(c["suggestion_id"] for c in body["codes"] if c["code"] == "E11.9")
    for extra, word in (
        ({"note_id": "b1"}, "belongs to note 'a1', not 'b1'"),
        ({"code": "I10"}, "is E11.9, not I10"),
        ({"system": "CPT", "code": "E11.9"}, "is a ICD-10-CM code, not CPT"),
    ):
        r = client.post("/v1/feedback", json={"suggestion_id": sid, "action": "accept", **extra})
        assert r.status_code == 409, r.text
        assert word in r.json()["detail"]
    r = client.post(
        "/v1/feedback", json={"suggestion_id": sid, "note_id": "a1", "action": "accept"}
    )
    assert r.status_code == 201
    assert [row["note_id"] for row in _export(client, admin_key)] == ["a1"]


def test_a_decision_on_a_note_coded_with_another_code_set_version_is_409(
    client: Any, engine: Any
) -> None:
    engine.code_sets = {**engine.code_sets, "ICD-10-CM": "FY2025"}
    _suggest(client, "old")
    r = client.post("/v1/feedback", json={"note_id": "old", "code": "I10", "action": "accept"})
    assert r.status_code == 409
    assert "coded with ICD-10-CM FY2025 but FY2026 is loaded" in r.json()["detail"]
