"""Bad input gets a clear 4xx with a message, never a 500, and never an echo of the note."""

from __future__ import annotations

import json
from typing import Any

import pytest

SECRET = "Mrs Ophelia Brackenridge, hypertension"

# (name, method, path, kwargs for the client, expected status)
CASES: list[tuple[str, str, str, dict[str, Any], int]] = [
    ("empty text", "POST", "/v1/suggest", {"json": {"text": "", "setting": "outpatient"}}, 422),
    (
        "blank text",
        "POST",
        "/v1/suggest",
        {"json": {"text": " \n\t ", "setting": "outpatient"}},
        422,
    ),
    ("no text", "POST", "/v1/suggest", {"json": {"setting": "outpatient"}}, 422),
    ("no setting", "POST", "/v1/suggest", {"json": {"text": SECRET}}, 422),
    ("bad setting", "POST", "/v1/suggest", {"json": {"text": SECRET, "setting": "er"}}, 422),
    (
        "5 MB body",
        "POST",
        "/v1/suggest",
        {"json": {"text": "a" * 5_000_000, "setting": "outpatient"}},
        413,
    ),
    (
        "text over the char limit",
        "POST",
        "/v1/suggest",
        {"json": {"text": "fever " * 40_000, "setting": "outpatient"}},
        413,
    ),
    (
        "invalid JSON",
        "POST",
        "/v1/suggest",
        {"content": b'{"text": "fever", ', "headers": {"Content-Type": "application/json"}},
        422,
    ),
    ("JSON array", "POST", "/v1/suggest", {"json": [SECRET]}, 422),
    ("JSON string", "POST", "/v1/suggest", {"json": SECRET}, 422),
    (
        "text is a number",
        "POST",
        "/v1/suggest",
        {"json": {"text": 42, "setting": "outpatient"}},
        422,
    ),
    (
        "text is a list",
        "POST",
        "/v1/suggest",
        {"json": {"text": [SECRET], "setting": "outpatient"}},
        422,
    ),
    (
        "top_k is a string",
        "POST",
        "/v1/suggest",
        {"json": {"text": SECRET, "setting": "outpatient", "top_k": "ten"}},
        422,
    ),
    (
        "huge top_k",
        "POST",
        "/v1/suggest",
        {"json": {"text": SECRET, "setting": "outpatient", "top_k": 10**12}},
        422,
    ),
    (
        "zero top_k",
        "POST",
        "/v1/suggest",
        {"json": {"text": SECRET, "setting": "outpatient", "top_k": 0}},
        422,
    ),
    (
        "unknown system",
        "POST",
        "/v1/suggest",
        {"json": {"text": SECRET, "setting": "outpatient", "systems": ["SNOMED"]}},
        422,
    ),
    (
        "empty systems",
        "POST",
        "/v1/suggest",
        {"json": {"text": SECRET, "setting": "outpatient", "systems": []}},
        422,
    ),
    (
        "unknown field",
        "POST",
        "/v1/suggest",
        {"json": {"text": SECRET, "setting": "outpatient", "txt": 1}},
        422,
    ),
    (
        "bad note_id",
        "POST",
        "/v1/suggest",
        {"json": {"text": SECRET, "setting": "outpatient", "note_id": "../x y"}},
        422,
    ),
    (
        "NUL in text",
        "POST",
        "/v1/suggest",
        {"json": {"text": "fever\x00", "setting": "outpatient"}},
        422,
    ),
    (
        "invalid UTF-8",
        "POST",
        "/v1/suggest",
        {
            "content": b'{"text": "fever \xff\xfe", "setting": "outpatient"}',
            "headers": {"Content-Type": "application/json"},
        },
        400,
    ),
    (
        "binary body",
        "POST",
        "/v1/suggest",
        {
            "content": bytes(range(256)) * 20,
            "headers": {"Content-Type": "application/octet-stream"},
        },
        400,
    ),
    ("form body", "POST", "/v1/suggest", {"data": {"text": SECRET, "setting": "outpatient"}}, 422),
    ("no body", "POST", "/v1/suggest", {}, 422),
    ("batch: empty", "POST", "/v1/suggest/batch", {"json": {"notes": []}}, 422),
    ("batch: not a list", "POST", "/v1/suggest/batch", {"json": {"notes": SECRET}}, 422),
    (
        "feedback: bad action",
        "POST",
        "/v1/feedback",
        {"json": {"suggestion_id": "x", "action": "delete"}},
        422,
    ),
    (
        "feedback: reason too long",
        "POST",
        "/v1/feedback",
        {"json": {"suggestion_id": "x", "action": "reject", "reason": "x" * 5000}},
        422,
    ),
    ("lookup: unknown system", "GET", "/v1/codes/SNOMED/123", {}, 422),
    ("lookup: odd code", "GET", "/v1/codes/ICD-10-CM/%00%01", {}, 422),
    ("search: no q", "GET", "/v1/codes/search", {}, 422),
    (
        "search: huge limit",
        "GET",
        "/v1/codes/search",
        {"params": {"q": "asthma", "limit": 10**9}},
        422,
    ),
    (
        "search: unknown system",
        "GET",
        "/v1/codes/search",
        {"params": {"q": "asthma", "system": "SNOMED"}},
        422,
    ),
    ("unknown route", "GET", "/v1/nothing", {}, 404),
    ("wrong method", "GET", "/v1/suggest", {}, 405),
]


@pytest.mark.parametrize(
    ("name", "method", "path", "kwargs", "status"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_gets_a_clear_4xx(
    client: Any, name: str, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    r = client.request(method, path, **kwargs)
    assert r.status_code == status, (name, r.status_code, r.text[:500])
    body = r.json()
    assert body["detail"], name
    assert "Brackenridge" not in r.text, "error responses must not echo the note"


def test_validation_message_names_the_field(client: Any) -> None:
    r = client.post("/v1/suggest", json={"text": "fever", "setting": "outpatient", "top_k": "ten"})
    assert r.status_code == 422
    body = r.json()
    assert body["detail"][0]["loc"] == ["body", "top_k"]
    assert "top_k" in body["message"] and "integer" in body["message"]
    r = client.post("/v1/suggest", json={"text": "fever", "setting": "outpatient", "top_k": 10**6})
    assert r.status_code == 422 and "200" in r.json()["detail"]


def test_limits_follow_settings(settings: Any, engine: Any, user_key: str) -> None:
    from fastapi.testclient import TestClient

    from clinicode.serve.app import create_app

    tight = settings.model_copy(update={"max_text_chars": 10, "max_body_bytes": 300})
    with TestClient(create_app(tight, engine_factory=lambda: engine)) as c:
        c.headers["X-API-Key"] = user_key
        assert (
            c.post("/v1/suggest", json={"text": "fever", "setting": "outpatient"}).status_code
            == 200
        )
        r = c.post("/v1/suggest", json={"text": "fever fever", "setting": "outpatient"})
        assert r.status_code == 413 and "10" in r.json()["detail"]
        r = c.post("/v1/suggest", content=json.dumps({"text": "x" * 400, "setting": "outpatient"}))
        assert r.status_code == 413 and "300 bytes" in r.json()["detail"]
