"""What an integrator meets: error messages that say what to send, compact responses, code
search with synonyms, and /docs + /redoc served with local assets only."""

from __future__ import annotations

import re
from typing import Any

import pytest

JSON = {"Content-Type": "application/json"}


def test_invalid_json_says_so_and_where(client: Any) -> None:
    body = b'{"text": "fever",\n "setting": outpatient}'
    r = client.post("/v1/suggest", content=body, headers=JSON)
    assert r.status_code == 422
    msg = r.json()["message"]
    assert "not valid JSON" in msg and "line 2, column 13" in msg
    assert "body." not in msg  # no bare character offsets


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_sent_as_json_says_to_send_application_json(
    client: Any, ctype: str | None
) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    r = client.post(
        "/v1/suggest", content=b'{"text": "fever", "setting": "outpatient"}', headers=headers
    )
    assert r.status_code == 422
    msg = r.json()["message"]
    assert "Content-Type: application/json" in msg
    assert (ctype or "none") in msg


def test_wrong_types_name_the_field_and_the_type(client: Any) -> None:
    r = client.post("/v1/suggest", json={"text": 42, "setting": "outpatient"})
    assert r.json()["message"] == "field 'text': expected a string, got a number"
    r = client.post("/v1/suggest", json={"setting": "outpatient"})
    assert r.json()["message"] == "field 'text' is required"
    r = client.post("/v1/suggest", json=["Mrs Smith, fever"])
    assert r.json()["message"] == "the body must be a JSON object {...}, not an array"
    assert "Smith" not in r.text
    r = client.get("/v1/codes/search", params={"q": "asthma", "limit": "many"})
    assert "query parameter 'limit': expected an integer, got a string" in r.json()["message"]


def test_compact_drops_mentions_candidates_and_suppressed(client: Any, note: str) -> None:
    full = client.post("/v1/suggest", json={"text": note, "setting": "outpatient"})
    small = client.post("/v1/suggest?compact=true", json={"text": note, "setting": "outpatient"})
    assert small.status_code == 200
    a, b = full.json(), small.json()
    assert a["mentions"] and a["suppressed"]
    assert "mentions" not in b and "suppressed" not in b and "candidates" not in b
    assert [c["code"] for c in b["codes"]] == [c["code"] for c in a["codes"]]
    assert len(small.content) < len(full.content)
    r = client.post(
        "/v1/suggest/batch?compact=true",
        json={"notes": [{"text": note, "setting": "outpatient"}]},
    )
    assert "mentions" not in r.json()["results"][0]["result"]


def test_code_search_understands_lay_and_clinical_synonyms(client: Any) -> None:
    def codes(q: str) -> list[str]:
        r = client.get("/v1/codes/search", params={"q": q, "limit": 8})
        assert r.status_code == 200, r.text
        return [h["code"] for h in r.json()["results"]]

    assert codes("heart attack")[0].startswith("I21")
    assert codes("MI")[0].startswith("I21")
    assert "I10" in codes("high blood pressure")[:3]
    assert codes("renal failure")[0].startswith("N1")
    hit = client.get("/v1/codes/search", params={"q": "heart attack"}).json()["results"][0]
    assert hit["via"] == "synonym: myocardial infarction"
    # a code, or words with no synonym, search as before
    assert codes("E11.9") == ["E11.9"]
    assert codes("hyperlipidemia")[0] == "E78.5"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(client: Any, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    for u in urls:
        assert client.get(u).status_code == 200, u
    assert "googleapis" not in r.text and "cdn." not in r.text
