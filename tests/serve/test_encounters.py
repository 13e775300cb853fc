"""The work queue API: encounters stored with their status and the coder's worksheet, surviving
a restart; filters; decisions through the feedback service; sequence, POA, queries; exports."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from clinicode.serve.workqueue import WorkQueueStore

DOC_1 = (
    "HPI: 58-year-old man with type 2 diabetes mellitus, on metformin.\n"
    "Assessment: hypertension, controlled. No pneumonia on chest X-ray.\n"
)
DOC_2 = "Operative note: laparoscopic appendectomy. Post-op fever resolved.\n"


def _create(client: Any, **kw: Any) -> dict[str, Any]:
    body = {
        "label": kw.pop("label", "ACCT-1"),
        "setting": kw.pop("setting", "inpatient"),
        "encounter_date": kw.pop("encounter_date", "2026-11-02"),
        "documents": kw.pop("documents", [{"text": DOC_1, "note_type": "history_physical"}]),
        **kw,
    }
    r = client.post("/v1/encounters", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _sid(enc: dict[str, Any], code: str) -> str:
    for s in enc["result"]["codes"] + enc["result"]["candidates"]:
        if s["code"] == code:
            return str(s["suggestion_id"])
    raise AssertionError(f"{code} not suggested")


def test_several_documents_are_one_encounter_with_their_spans(client: Any) -> None:
    enc = _create(
        client,
        documents=[
            {"text": DOC_1, "note_type": "history_physical"},
            {"text": DOC_2, "title": "Operative note"},
        ],
    )
    assert enc["status"] == "new" and enc["version"] == 1
    for doc, src in zip(enc["documents"], (DOC_1, DOC_2), strict=True):
        assert enc["text"][doc["start"] : doc["end"]] == src
    assert "=== Operative note ===" in enc["text"]
    codes = {s["code"] for s in enc["result"]["codes"]}
    assert {"E11.9", "I10", "0DTJ4ZZ", "R50.9"} <= codes  # both documents were coded
    # the evidence offsets are offsets into the encounter's text
    for s in enc["result"]["codes"]:
        for e in s["evidence"]:
            assert enc["text"][e["start"] : e["end"]] == e["text"]


def test_decisions_survive_a_restart_and_reach_the_training_export(
    client: Any, settings: Any, engine: Any, admin_key: str
) -> None:
    from fastapi.testclient import TestClient

    from clinicode.serve.app import create_app

    enc = _create(client, encounter_id="enc-0001")
    eid = enc["encounter_id"]
    r = client.post(
        f"/v1/encounters/{eid}/decisions",
        json={"action": "accept", "suggestion_id": _sid(enc, "E11.9")},
    )
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    r = client.post(
        f"/v1/encounters/{eid}/decisions",
        json={"action": "reject", "suggestion_id": _sid(enc, "I10"), "reason": "not_documented"},
    )
    assert r.status_code == 200
    r = client.patch(
        f"/v1/encounters/{eid}/worksheet", json={"poa": {"ICD-10-CM|E11.9": "Y"}, "cursor": 1}
    )
    assert r.status_code == 200, r.text

    # A new app on the same data dir: the worksheet is as it was left.
    app = create_app(settings, engine_factory=lambda: engine)
    with TestClient(app) as c2:
        c2.headers["X-API-Key"] = admin_key
        again = c2.get(f"/v1/encounters/{eid}").json()
        ws = again["worksheet"]
        assert ws["cursor"] == 1 and ws["poa"] == {"ICD-10-CM|E11.9": "Y"}
        assert ws["decisions"][_sid(enc, "I10")]["reason"] == "not_documented"
        assert [ln["code"] for ln in again["final"]] == ["E11.9"]
        assert again["final"][0]["poa"] == "Y" and again["final"][0]["principal"]
        # the decisions went through the feedback service: the training export has them
        rows = [json.loads(x) for x in c2.get("/v1/feedback/export").text.splitlines()]
        assert {c["code"] for c in next(r for r in rows if r["id"] == eid)["codes"]} == {"E11.9"}


def test_reject_needs_a_reason_from_the_closed_list(client: Any) -> None:
    enc = _create(client)
    url = f"/v1/encounters/{enc['encounter_id']}/decisions"
    sid = _sid(enc, "I10")
    r = client.post(url, json={"action": "reject", "suggestion_id": sid})
    assert r.status_code == 422 and "not_documented" in r.text
    r = client.post(url, json={"action": "reject", "suggestion_id": sid, "reason": "bored"})
    assert r.status_code == 422
    r = client.post(url, json={"action": "reject", "suggestion_id": sid, "reason": "other"})
    assert r.status_code == 422 and "reason_text" in r.text
    r = client.post(
        url,
        json={
            "action": "reject",
            "suggestion_id": sid,
            "reason": "other",
            "reason_text": "=HYPERLINK(1)",
        },
    )
    assert r.status_code == 200
    rows = list(
        csv.DictReader(io.StringIO(client.get(url.replace("decisions", "export?format=csv")).text))
    )
    assert rows[-1]["reason_text"] == "'=HYPERLINK(1)"  # never a live formula in a spreadsheet


def test_queue_filters(client: Any) -> None:
    a = _create(client, label="ACCT-A", setting="inpatient", encounter_date="2026-10-01")
    b = _create(
        client,
        label="ACCT-B",
        setting="outpatient",
        encounter_date="2026-11-15",
        documents=[{"text": DOC_2}],
    )
    client.post(
        f"/v1/encounters/{b['encounter_id']}/decisions",
        json={"action": "accept", "suggestion_id": _sid(b, "R50.9")},
    )

    def ids(**params: Any) -> list[str]:
        r = client.get("/v1/encounters", params=params)
        assert r.status_code == 200, r.text
        return [i["encounter_id"] for i in r.json()["items"]]

    both = [a["encounter_id"], b["encounter_id"]]
    assert ids() == both
    assert ids(status="new") == [a["encounter_id"]]
    assert ids(status=["new", "in_progress"]) == both
    assert ids(setting="outpatient") == [b["encounter_id"]]
    assert ids(**{"from": "2026-11-01"}) == [b["encounter_id"]]
    assert ids(**{"to": "2026-10-31"}) == [a["encounter_id"]]
    assert ids(code="E11") == [a["encounter_id"]]
    assert ids(code="0DTJ") == [b["encounter_id"]]
    assert ids(q="acct-b") == [b["encounter_id"]]
    counts = client.get("/v1/encounters").json()["counts"]
    assert counts["new"] == 1 and counts["in_progress"] == 1
    assert client.get("/v1/encounters", params={"status": "done"}).status_code == 422


def _code_fully(client: Any, enc: dict[str, Any]) -> dict[str, Any]:
    eid = enc["encounter_id"]
    url = f"/v1/encounters/{eid}/decisions"
    for s in enc["result"]["codes"]:
        body: dict[str, Any] = {"action": "accept", "suggestion_id": s["suggestion_id"]}
        if s["code"] == "R50.9":
            body = {**body, "action": "reject", "reason": "integral_symptom"}
        if s["code"] == "I10":
            body = {**body, "action": "modify", "final_code": "I11.9"}
        assert client.post(url, json=body).status_code == 200
    r = client.post(url, json={"action": "add", "code": "E78.5"})
    assert r.status_code == 200, r.text
    final = r.json()["final"]
    keys = [ln["key"] for ln in final if ln["kind"] == "diagnosis"]
    poa = {k: "Y" for k in keys}
    poa[keys[-1]] = "1"
    seq = [keys[-1], *keys[:-1]]  # the added code becomes principal
    r = client.patch(f"/v1/encounters/{eid}/worksheet", json={"sequence": seq, "poa": poa})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_sequence_poa_complete_and_exports(client: Any, admin_key: str) -> None:
    enc = _create(
        client,
        documents=[{"text": DOC_1}, {"text": DOC_2, "note_type": "operative_note"}],
    )
    eid = enc["encounter_id"]
    # not every code is decided: refused, saying what is left
    r = client.post(f"/v1/encounters/{eid}/complete")
    assert r.status_code == 422 and "has no decision" in r.json()["detail"]
    enc = _code_fully(client, enc)
    dx = [ln for ln in enc["final"] if ln["kind"] == "diagnosis"]
    assert dx[0]["code"] == "E78.5" and dx[0]["principal"] and dx[0]["sequence"] == 1
    assert [ln["sequence"] for ln in dx] == list(range(1, len(dx) + 1))
    assert {ln["code"] for ln in dx} == {"E78.5", "E11.9", "I11.9"}
    assert enc["problems"] == []
    r = client.post(f"/v1/encounters/{eid}/complete", json={"version": enc["version"]})
    assert r.status_code == 200 and r.json()["status"] == "coded"
    # coded: changes are refused until reopened
    r = client.patch(f"/v1/encounters/{eid}/worksheet", json={"sequence": []})
    assert r.status_code == 409

    data = client.get(f"/v1/encounters/{eid}/export").json()
    assert [c["code"] for c in data["codes"]][:1] == ["E78.5"]
    assert data["rejected"] == [
        {
            "system": "ICD-10-CM",
            "code": "R50.9",
            "title": "Fever, unspecified",
            "reason": "integral_symptom",
            "reason_label": "Integral symptom",
            "reason_text": None,
        }
    ]
    rows = list(
        csv.DictReader(io.StringIO(client.get(f"/v1/encounters/{eid}/export?format=csv").text))
    )
    assert rows[0]["code"] == "E78.5" and rows[0]["principal"] == "True"
    assert any(r["decision"] == "rejected" and r["reason"] == "integral_symptom" for r in rows)

    r = client.get(f"/v1/encounters/{eid}/export?format=fhir")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    claim = r.json()
    from fhir.resources.R4B.claim import Claim

    Claim.model_validate(claim)  # round-trips through the FHIR structure
    assert claim["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0]["code"] == "E78.5"
    assert claim["diagnosis"][0]["type"][0]["coding"][0]["code"] == "principal"
    assert claim["diagnosis"][0]["onAdmission"]["coding"][0]["code"] == "1"
    assert claim["procedure"][0]["procedureCodeableConcept"]["coding"][0]["code"] == "0DTJ4ZZ"

    # admin export for a date range
    r = client.get("/v1/admin/encounters/export", params={"from": "2020-01-01", "to": "2099-01-01"})
    assert r.status_code == 403
    hdr = {"X-API-Key": admin_key}
    r = client.get(
        "/v1/admin/encounters/export",
        params={"from": "2020-01-01", "to": "2099-01-01", "format": "training"},
        headers=hdr,
    )
    recs = [json.loads(x) for x in r.text.splitlines()]
    assert [x["id"] for x in recs] == [eid]
    assert recs[0]["rejected"] == [
        {"system": "ICD-10-CM", "code": "R50.9", "reason": "integral_symptom"}
    ]
    r = client.get(
        "/v1/admin/encounters/export",
        params={"from": "2020-01-01", "to": "2020-01-02"},
        headers=hdr,
    )
    assert r.text == ""
    r = client.get(
        "/v1/admin/encounters/export",
        params={"from": "2020-01-02", "to": "2020-01-01"},
        headers=hdr,
    )
    assert r.status_code == 422

    r = client.post(f"/v1/encounters/{eid}/reopen")
    assert r.status_code == 200 and r.json()["status"] == "in_progress"


def test_queries_set_the_status_and_must_be_answered(client: Any, engine: Any) -> None:
    from clinicode.schema import Query

    orig = engine.suggest

    def with_query(*a: Any, **kw: Any) -> Any:
        res = orig(*a, **kw)
        res.codes[0].status = "needs_query"
        res.codes[0].query = Query(axis="type", question="Type 1 or type 2?")
        return res

    engine.suggest = with_query
    enc = _create(client, setting="outpatient")
    sid = enc["result"]["codes"][0]["suggestion_id"]
    assert enc["worksheet"]["queries"][sid]["text"] == "Type 1 or type 2?"
    url = f"/v1/encounters/{enc['encounter_id']}/queries/{sid}"
    r = client.put(url, json={"text": "Dr. Lee: type 1 or type 2 diabetes?", "status": "sent"})
    assert r.status_code == 200 and r.json()["status"] == "queried"
    assert any("not answered" in p for p in r.json()["problems"])
    assert client.put(url, json={"text": "x", "status": "answered"}).status_code == 422
    r = client.put(url, json={"text": "x", "status": "answered", "answer": "Type 2."})
    assert r.status_code == 200 and r.json()["status"] == "in_progress"


def test_version_conflict_is_409(client: Any) -> None:
    enc = _create(client)
    url = f"/v1/encounters/{enc['encounter_id']}/worksheet"
    assert client.patch(url, json={"cursor": 2, "version": 1}).status_code == 200
    r = client.patch(url, json={"cursor": 3, "version": 1})
    assert r.status_code == 409 and "reload" in r.json()["detail"]


def test_unknown_encounter_and_bad_bodies(client: Any) -> None:
    assert client.get("/v1/encounters/nope").status_code == 404
    r = client.post(
        "/v1/encounters",
        json={"setting": "inpatient", "encounter_date": "2026-13-01", "documents": [{"text": "x"}]},
    )
    assert r.status_code == 422 and "encounter_date" in r.text
    r = client.post(
        "/v1/encounters",
        json={"setting": "inpatient", "encounter_date": "2026-01-01", "documents": []},
    )
    assert r.status_code == 422
    _create(client, encounter_id="dup-1")
    r = client.post(
        "/v1/encounters",
        json={
            "encounter_id": "dup-1",
            "setting": "inpatient",
            "encounter_date": "2026-01-01",
            "documents": [{"text": "fever"}],
        },
    )
    assert r.status_code == 409


@pytest.mark.parametrize("code", ["E11%", "E_1"])
def test_code_filter_escapes_wildcards(tmp_path: Any, code: str) -> None:
    from clinicode.serve.workqueue import QueueFilter

    wq = WorkQueueStore(f"sqlite:///{tmp_path / 'wq.sqlite'}")
    assert wq.queue(QueueFilter(code=code)) == []


def test_poa_defaults_from_the_note_where_documented(client: Any) -> None:
    note = (
        "HPI: Admitted with community-acquired pneumonia and type 2 diabetes mellitus.\n"
        "No abdominal pain.\n\n"
        "HOSPITAL COURSE: Chest pain developed on hospital day 3, not present on admission.\n"
        "Hypertension, stable.\n"
    )
    enc = _create(client, setting="inpatient", documents=[{"text": note}])
    eid = enc["encounter_id"]
    for s in enc["result"]["codes"]:
        client.post(
            f"/v1/encounters/{eid}/decisions",
            json={"action": "accept", "suggestion_id": s["suggestion_id"]},
        )
    final = {ln["code"]: ln for ln in client.get(f"/v1/encounters/{eid}").json()["final"]}
    assert (final["J18.9"]["poa"], final["J18.9"]["poa_source"]) == ("Y", "note")
    assert (final["E11.9"]["poa"], final["E11.9"]["poa_source"]) == ("Y", "note")
    assert (final["R07.9"]["poa"], final["R07.9"]["poa_source"]) == ("N", "note")
    assert final["I10"]["poa"] is None  # not documented: left to the coder
    r = client.patch(f"/v1/encounters/{eid}/worksheet", json={"poa": {"ICD-10-CM|R07.9": "U"}})
    ln = next(x for x in r.json()["final"] if x["code"] == "R07.9")
    assert (ln["poa"], ln["poa_source"]) == ("U", "coder")
    assert r.json()["problems"] == ["I10 needs a POA indicator"]
    # outpatient diagnoses get no POA
    out = _create(client, setting="outpatient", documents=[{"text": note}])
    client.post(
        f"/v1/encounters/{out['encounter_id']}/decisions",
        json={"action": "accept", "suggestion_id": _sid(out, "J18.9")},
    )
    line = client.get(f"/v1/encounters/{out['encounter_id']}").json()["final"][0]
    assert line["poa"] is None
