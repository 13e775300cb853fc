"""The simulated coder of the feedback loop (``training.loop``): what it decides for each code."""

from __future__ import annotations

from typing import Any

from clinicode.training.data import LabeledNote
from clinicode.training.loop import ReviewStats, review_note


class _Resp:
    def __init__(self, status: int, body: Any = None) -> None:
        self.status_code = status
        self._body = body

    def json(self) -> Any:
        return self._body


class _Client:
    """Answers /v1/suggest with a fixed result and records every feedback body."""

    def __init__(self, result: dict[str, Any], refuse: set[str]) -> None:
        self.result = result
        self.refuse = refuse
        self.sent: list[dict[str, Any]] = []

    def get(self, url: str, **kw: Any) -> Any:
        raise AssertionError(url)

    def post(self, url: str, **kw: Any) -> Any:
        if url == "/v1/suggest":
            return _Resp(200, self.result)
        self.sent.append(kw["json"])
        code = kw["json"].get("code")
        if code in self.refuse:
            return _Resp(422, {"detail": f"{code} is not a code of ICD-10-CM FY2026"})
        return _Resp(201)


def _s(sid: str, code: str) -> dict[str, Any]:
    return {"suggestion_id": sid, "system": "ICD-10-CM", "code": code}


def test_the_coder_accepts_rejects_and_adds() -> None:
    result = {
        "model": {"version": "v1"},
        "codes": [_s("s1", "E11.9"), _s("s2", "I10")],
        "candidates": [_s("s3", "J18.9")],
        "suppressed": [_s("s4", "R50.9")],
    }
    note = LabeledNote(
        id="n1",
        text="t",
        codes=[
            ("ICD-10-CM", "E11.9"),
            ("ICD-10-CM", "J18.9"),
            ("ICD-10-CM", "K35.80"),
            ("ICD-10-PCS", "BW03"),
        ],
    )
    client = _Client(result, refuse={"K35.80"})
    stats = ReviewStats()
    review_note(client, note, key="k", stats=stats)
    assert client.sent == [
        {"suggestion_id": "s1", "action": "accept"},
        {"suggestion_id": "s2", "action": "reject"},
        {"suggestion_id": "s3", "action": "accept"},  # a right candidate is accepted
        {"note_id": "n1", "system": "ICD-10-CM", "code": "K35.80", "action": "add"},
        # a partial ICD-10-PCS code (CodiEsp's 4 characters) is added as it is
        {"note_id": "n1", "system": "ICD-10-PCS", "code": "BW03", "action": "add"},
    ]
    # the suppressed R50.9 is not gold and was never proposed: the coder leaves it alone
    assert stats.actions == {"accept": 2, "reject": 1, "add": 1} and stats.partial == 1
    assert stats.refused == {422: 1} and stats.notes == 1 and stats.model_versions == {"v1": 1}
    assert stats.refused_reasons == {"<code> is not a code of ICD-10-CM FY2026": 1}
