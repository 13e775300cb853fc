"""The HTTP API against the fake engine: suggest, batch, codes, feedback, export, health, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clinicode.schema import SYSTEMS, SuggestResult

NOTE = (
    "HPI: 58-year-old man with type 2 diabetes mellitus, on metformin.\n"
    "Assessment: hypertension, controlled. No pneumonia on chest X-ray.\n"
)


def test_suggest_returns_the_engine_result_with_offsets(client: Any, note: str) -> None:
    r = client.post("/v1/suggest", json={"text": note, "setting": "outpatient"})
    assert r.status_code == 200, r.text
    body = r.json()
    # Exactly a SuggestResult, as `clinicode suggest` prints it.
    assert SuggestResult.model_validate(body).model_dump(mode="json") == body
    assert body["model"] == {"name": "fake-engine", "version": "0.0.1-test", "threshold": 0.5}
    assert body["code_sets"]["ICD-10-CM"] == "FY2026"
    codes = {c["code"]: c for c in body["codes"]}
    assert set(codes) == {"E11.9", "I10"}
    for c in body["codes"]:
        assert c["suggestion_id"]
        for ev in c["evidence"]:
            assert note[ev["start"] : ev["end"]] == ev["text"]
    assert [s["code"] for s in body["suppressed"]] == ["J18.9"]
    assert body["suppressed"][0]["reason"] == "negated mention"
    assert r.headers["X-Clinicode-Note-Id"].startswith("n-")


def test_suggest_passes_options_and_keeps_the_callers_note_id(
    client: Any, engine: Any, note: str
) -> None:
    r = client.post(
        "/v1/suggest",
        json={
            "text": note,
            "setting": "inpatient",
            "top_k": 1,
            "note_id": "enc-1",
            "systems": ["ICD-10-CM"],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["setting"] == "inpatient"
    assert [c["code"] for c in body["codes"]] == ["E11.9"]
    assert [c["code"] for c in body["candidates"]] == ["I10"]
    assert r.headers["X-Clinicode-Note-Id"] == "enc-1"


def test_batch(client: Any, note: str) -> None:
    notes = [
        {"text": note, "setting": "outpatient", "note_id": "a"},
        {"text": "Chest pain on exertion.", "setting": "inpatient", "note_id": "b"},
        {"text": "Fever since Monday.", "setting": "outpatient"},
    ]
    r = client.post("/v1/suggest/batch", json={"notes": notes})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["note_id"] for x in results[:2]] == ["a", "b"]
    assert [c["code"] for c in results[1]["result"]["codes"]] == ["R07.9"]
    assert results[1]["result"]["setting"] == "inpatient"
    assert [c["code"] for c in results[2]["result"]["codes"]] == ["R50.9"]
    too_many = {"notes": [{"text": "fever", "setting": "outpatient"}] * 101}
    r = client.post("/v1/suggest/batch", json=too_many)
    assert r.status_code == 413 and "100" in r.json()["detail"]
    dup = {"notes": [{"text": "fever", "setting": "outpatient", "note_id": "x"}] * 2}
    assert client.post("/v1/suggest/batch", json=dup).status_code == 422


def test_code_lookup_and_search(client: Any, kb: Any) -> None:
    r = client.get("/v1/codes/ICD-10-CM/e119")
    assert r.status_code == 200
    assert r.json()["code"] == "E11.9" and "diabetes" in r.json()["title"].lower()
    assert client.get("/v1/codes/ICD-10-CM/Z99.999").status_code == 404
    loaded = set(kb.versions())
    missing = [s for s in SYSTEMS if s not in loaded]
    if missing:  # a system with no codes imported: 404 that says so
        r = client.get(f"/v1/codes/{missing[0]}/99213")
        assert r.status_code == 404 and "not loaded" in r.json()["detail"]
    r = client.get("/v1/codes/LOINC/1234-5")
    assert r.status_code == 422 and "system" in r.json()["message"]
    r = client.get("/v1/codes/search", params={"q": "type 2 diabetes", "limit": 5})
    assert r.status_code == 200
    hits = r.json()["results"]
    assert 0 < len(hits) <= 5 and all(h["code"].startswith("E11") for h in hits[:3])
    assert client.get("/v1/codes/search", params={"q": ""}).status_code == 422
    assert client.get("/v1/codes/search", params={"q": "x", "limit": 1000}).status_code == 422


def _suggest(client: Any, note_id: str, text: str) -> dict[str, Any]:
    r = client.post("/v1/suggest", json={"text": text, "setting": "outpatient", "note_id": note_id})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_feedback_and_export_round_trip(
    client: Any, tmp_path: Path, note: str, admin_key: str
) -> None:
    body = _suggest(client, "n1", NOTE)
    by_code = {c["code"]: c for c in body["codes"]}
    r = client.post(
        "/v1/feedback",
        json={"suggestion_id": by_code["E11.9"]["suggestion_id"], "action": "accept"},
    )
    assert r.status_code == 201, r.text
    fb = r.json()
    assert fb["note_id"] == "n1" and fb["code"] == "E11.9" and fb["feedback_id"] > 0
    assert fb["model_version"] == "0.0.1-test" and fb["code_set_version"] == "FY2026"
    # by note + code, and a modify to a more specific code
    r = client.post(
        "/v1/feedback",
        json={
            "note_id": "n1",
            "code": "i10",
            "action": "modify",
            "final_code": "i110",
            "reason": "HF documented",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["final_code"] == "I11.0"
    r = client.post("/v1/feedback", json={"note_id": "n1", "code": "R50.9", "action": "add"})
    assert r.status_code == 201, r.text
    _suggest(client, "n2", "Chest pain. Hypertension.")
    assert (
        client.post(
            "/v1/feedback", json={"note_id": "n2", "code": "R07.9", "action": "reject"}
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/v1/feedback", json={"note_id": "n2", "code": "I10", "action": "accept"}
        ).status_code
        == 201
    )
    # A later decision on the same code wins.
    assert (
        client.post(
            "/v1/feedback", json={"note_id": "n2", "code": "I10", "action": "reject"}
        ).status_code
        == 201
    )

    # Export needs an admin key: 403 for a user key, which is authenticated.
    assert client.get("/v1/feedback/export").status_code == 403
    r = client.get("/v1/feedback/export", headers={"X-API-Key": admin_key})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in r.text.splitlines()]
    review = {row["id"]: (row.pop("rejected"), row.pop("unreviewed")) for row in rows}
    cs = {"ICD-10-CM": "FY2026", "ICD-10-PCS": "FY2026"}
    assert all(row.pop("code_sets") == cs for row in rows)
    assert all(row.pop("model_versions") == ["0.0.1-test"] for row in rows)
    assert all(row.pop("partial_codes") == [] for row in rows)  # no partial PCS code confirmed
    # n1: I10 was modified (so turned down); n2: both proposed codes rejected
    assert review == {
        "n1": ([{"system": "ICD-10-CM", "code": "I10"}], []),
        "n2": (
            [{"system": "ICD-10-CM", "code": "R07.9"}, {"system": "ICD-10-CM", "code": "I10"}],
            [],
        ),
    }
    assert {row["id"]: row for row in rows} == {
        "n1": {
            "id": "n1",
            "note_id": "n1",
            "version": 1,
            "text": note,
            "codes": [
                {"system": "ICD-10-CM", "code": "E11.9"},
                {"system": "ICD-10-CM", "code": "I11.0"},
                {"system": "ICD-10-CM", "code": "R50.9"},
            ],
        },
        "n2": {
            "id": "n2",
            "note_id": "n2",
            "version": 1,
            "text": "Chest pain. Hypertension.",
            "codes": [],
        },
    }
    data = pytest.importorskip("clinicode.training.data", reason="training.data not installed yet")
    path = tmp_path / "fb.jsonl"
    path.write_text(r.text, encoding="utf-8")
    notes = {n.id: n for n in data.load_jsonl(path)}
    assert notes["n1"].codes == [
        ("ICD-10-CM", "E11.9"),
        ("ICD-10-CM", "I11.0"),
        ("ICD-10-CM", "R50.9"),
    ]
    assert notes["n2"].rejected == [("ICD-10-CM", "R07.9"), ("ICD-10-CM", "I10")]


def test_feedback_errors(client: Any) -> None:
    _suggest(client, "n3", NOTE)
    cases: list[tuple[dict[str, Any], int]] = [
        ({"suggestion_id": "nope", "action": "accept"}, 404),
        ({"note_id": "n3", "code": "J45.909", "action": "accept"}, 404),  # never suggested
        ({"note_id": "unknown", "code": "I10", "action": "add"}, 404),
        ({"note_id": "n3", "code": "Q99.999", "action": "add"}, 422),  # not a code
        ({"note_id": "n3", "code": "I10", "action": "modify"}, 422),  # no final_code
        ({"note_id": "n3", "code": "I10", "action": "modify", "final_code": "X00.000"}, 422),
        ({"note_id": "n3", "code": "I10", "action": "approve"}, 422),
        ({"action": "accept"}, 422),
        ({"note_id": "n3", "code": "I10", "action": "accept", "final_code": "I11.0"}, 422),
    ]
    for payload, status in cases:
        r = client.post("/v1/feedback", json=payload)
        assert r.status_code == status, (payload, r.status_code, r.text)
        assert r.json()["detail"]


def test_auth(client: Any, admin_key: str) -> None:
    anon = {"X-API-Key": ""}
    r = client.get("/v1/me", headers=anon)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert "missing API key" in r.json()["detail"]
    r = client.get("/v1/me", headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and "unknown API key" in r.json()["detail"]
    r = client.get("/v1/me", headers={"X-API-Key": "", "Authorization": f"Bearer {admin_key}"})
    assert r.status_code == 200 and r.json()["role"] == "admin"
    assert len(r.json()["key_id"]) == 12 and r.json()["key_id"] not in admin_key
    assert client.get("/metrics", headers=anon).status_code == 401
    # Unauthenticated bodies are not even read: 401 before 413 or 422.
    assert client.post("/v1/suggest", headers=anon, content=b"{").status_code == 401
    for path in (
        "/health/live",
        "/",
        "/static/app.js",
        "/static/style.css",
        "/docs",
        "/openapi.json",
    ):
        assert client.get(path, headers=anon).status_code == 200, path
    assert client.get("/static/__init__.py", headers=anon).status_code == 404
    assert client.get("/static/..%2Fapp.py", headers=anon).status_code == 404


def test_health_ready_and_metrics(client: Any) -> None:
    r = client.get("/health/ready")
    assert r.status_code == 200 and r.json()["model"]["name"] == "fake-engine"
    _suggest(client, "m1", NOTE)
    client.post("/v1/feedback", json={"note_id": "m1", "code": "I10", "action": "accept"})
    text = client.get("/metrics").text
    assert 'route="/v1/suggest",status="200"' in text
    assert (
        'clinicode_suggestions_total{worker="' in text
        and 'system="ICD-10-CM",status="suggested"} 2' in text
    )
    assert 'action="accept"} 1' in text
    assert "clinicode_http_request_duration_seconds_bucket" in text
    assert "clinicode_model_loaded" in text


def test_not_ready_when_the_pack_is_missing(settings: Any, note: str, user_key: str) -> None:
    from fastapi.testclient import TestClient

    from clinicode.serve.app import create_app

    app = create_app(settings, engine_factory=_fail)
    with TestClient(app) as c:
        c.headers["X-API-Key"] = user_key
        r = c.get("/health/ready")
        assert r.status_code == 503 and r.json()["status"] == "failed"
        assert "no model pack" in r.json()["reason"]
        r = c.post("/v1/suggest", json={"text": note, "setting": "outpatient"})
        assert r.status_code == 503 and "clinicode setup" in r.json()["detail"]
        # Code look-up still works from the KB.
        assert c.get("/v1/codes/ICD-10-CM/I10").status_code == 200
        assert c.get("/health/live").status_code == 200


def _fail() -> Any:
    raise FileNotFoundError("no model pack at /nowhere/packs/default")


def test_code_sets_unavailable_is_503_but_bad_input_is_still_422(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinicode.errors import ClinicodeError

    def broken() -> Any:
        raise ClinicodeError("kb.sqlite is corrupt")

    monkeypatch.setattr(client.app.state.service, "kb", broken)
    for url in ("/v1/codes/search?q=x", "/v1/codes/ICD-10-CM/E11"):
        r = client.get(url)
        assert r.status_code == 503 and "code sets unavailable" in r.json()["detail"], url
    # A malformed request is told so first: the code sets are opened after the input checks.
    for url in (
        "/v1/codes/search?q=%20",
        "/v1/codes/search?q=x&limit=0",
        "/v1/codes/NOPE/E11",
        "/v1/codes/ICD-10-CM/E11%20x",
    ):
        assert client.get(url).status_code == 422, url
    _suggest(client, "u1", NOTE)
    r = client.post("/v1/feedback", json={"note_id": "u1", "code": "I10", "action": "reject"})
    assert r.status_code == 201  # a rejection keeps no code: no code sets needed
    r = client.post("/v1/feedback", json={"note_id": "u1", "code": "I10", "action": "accept"})
    assert r.status_code == 503  # a kept code is checked: never recorded unchecked
    r = client.post("/v1/feedback", json={"note_id": "u1", "code": "R50.9", "action": "add"})
    assert r.status_code == 503


def test_audit_is_append_only(client: Any, settings: Any) -> None:
    import sqlalchemy

    _suggest(client, "a1", NOTE)
    engine = sqlalchemy.create_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sqlalchemy.text("SELECT kind, key_id, model_version, code_set_version FROM audit")
        ).all()
        assert rows and all(r[0] == "suggestion" and r[1] and r[2] == "0.0.1-test" for r in rows)
        for stmt in ("UPDATE audit SET code='X'", "DELETE FROM audit"):
            with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"):
                conn.execute(sqlalchemy.text(stmt))
    engine.dispose()


def test_note_text_is_never_logged(
    client: Any, caplog: pytest.LogCaptureFixture, engine: Any
) -> None:
    secret = "Patient Zelda Quuxworth has hypertension"
    caplog.set_level("DEBUG")

    def boom(*_a: Any, **_k: Any) -> Any:
        raise ValueError(f"could not parse {secret}")

    _suggest(client, "l1", secret)
    client.post("/v1/suggest", json={"text": secret, "setting": "nowhere"})
    engine.suggest = boom
    r = client.post("/v1/suggest", json={"text": secret, "setting": "outpatient"})
    assert r.status_code == 500 and "ref" in r.json()["detail"]
    assert secret not in r.text
    assert "ValueError" in caplog.text  # the error is logged ...
    assert "Quuxworth" not in caplog.text  # ... but not its message, which quotes the note
