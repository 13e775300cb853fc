"""Checking and recording feedback (``serve/services/feedback.py``), without HTTP: which targets
and typed codes are refused, how codes are normalised, which versions a row is stamped with,
and that the code sets are opened only when needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clinicode.kb import KnowledgeBase
from clinicode.serve.schemas import FeedbackRequest
from clinicode.serve.services import NotFound, Refused
from clinicode.serve.services.feedback import check_typed_code, record_feedback, resolve_target
from clinicode.serve.store import FeedbackStore

NOTE = "Assessment: type 2 diabetes mellitus and hypertension. No pneumonia."


@pytest.fixture
def store(tmp_path: Path, engine: Any) -> Iterator[FeedbackStore]:
    s = FeedbackStore(f"sqlite:///{tmp_path / 'feedback.sqlite'}")
    s.init()
    s.record_suggestions(
        note_id="n1",
        text_=NOTE,
        setting="outpatient",
        note_type=None,
        key_id="k1",
        result=engine.suggest(NOTE),
    )
    yield s
    s.close()


class KBCalls:
    """A code-set source that counts how often it is opened."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.calls = 0

    def __call__(self) -> KnowledgeBase:
        self.calls += 1
        return self.kb


def _req(**kw: Any) -> FeedbackRequest:
    return FeedbackRequest.model_validate(kw)


def _record(store: FeedbackStore, kb: Any, engine: Any = None, **kw: Any) -> Any:
    return record_feedback(_req(**kw), store=store, key_id="k2", engine=engine, kb=kb)


def test_accept_by_suggestion_id_is_stamped_with_the_suggestions_versions(
    store: FeedbackStore, kb: KnowledgeBase, engine: Any
) -> None:
    sid = next(s.suggestion_id for s in engine.suggest(NOTE).codes if s.code == "E11.9")
    source = KBCalls(kb)
    row = _record(store, source, suggestion_id=sid, action="accept")
    assert (row.note_id, row.suggestion_id, row.system, row.code) == (
        "n1",
        sid,
        "ICD-10-CM",
        "E11.9",
    )
    assert row.model_version == "0.0.1-test" and row.code_set_version == "FY2026"
    assert row.final_code is None
    assert source.calls == 1  # the kept code is checked; versions from the suggestion


def test_note_and_code_are_normalised_before_the_lookup(
    store: FeedbackStore, kb: KnowledgeBase
) -> None:
    row = _record(store, KBCalls(kb), note_id="n1", code="i10", action="reject", reason="r")
    assert row.code == "I10" and row.action == "reject" and row.reason == "r"
    assert row.suggestion_id is not None


def test_modify_normalises_and_checks_the_final_code(
    store: FeedbackStore, kb: KnowledgeBase
) -> None:
    source = KBCalls(kb)
    row = _record(store, source, note_id="n1", code="I10", action="modify", final_code="i110")
    assert row.code == "I10" and row.final_code == "I11.0" and source.calls == 1
    with pytest.raises(Refused, match=r"X00\.000 is not a code of ICD-10-CM FY2026") as exc:
        _record(store, source, note_id="n1", code="I10", action="modify", final_code="X00.000")
    assert exc.value.status == 422


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"suggestion_id": "nope", "action": "accept"}, "no suggestion 'nope'"),
        ({"note_id": "n1", "code": "J45.909", "action": "reject"}, "J45.909 for note 'n1'"),
        ({"note_id": "n2", "code": "I10", "action": "accept"}, "I10 for note 'n2'"),
        ({"note_id": "n9", "code": "R50.9", "action": "add"}, "unknown note 'n9'"),
    ],
)
def test_an_unknown_target_is_not_found(
    store: FeedbackStore, payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(NotFound, match=message) as exc:
        resolve_target(_req(**payload), store)
    assert exc.value.status == 404


def test_a_system_mismatch_is_not_the_suggestion(store: FeedbackStore) -> None:
    with pytest.raises(NotFound):
        resolve_target(_req(note_id="n1", code="I10", system="CPT", action="accept"), store)


def test_add_checks_the_code_and_takes_the_loaded_versions(
    store: FeedbackStore, kb: KnowledgeBase, engine: Any
) -> None:
    with pytest.raises(Refused, match=r"Q99\.999 is not a code"):
        _record(store, KBCalls(kb), engine, note_id="n1", code="Q99.999", action="add")
    row = _record(store, KBCalls(kb), engine, note_id="n1", code="r509", action="add")
    assert (row.suggestion_id, row.code, row.action) == (None, "R50.9", "add")
    assert row.model_version == "0.0.1-test" and row.code_set_version == "FY2026"


def test_add_without_an_engine_takes_the_kb_versions(
    store: FeedbackStore, kb: KnowledgeBase
) -> None:
    source = KBCalls(kb)
    row = _record(store, source, note_id="n1", code="I10", action="add")
    assert row.model_version == "none" and row.code_set_version == "FY2026"
    assert source.calls == 1  # opened once, for the check and the versions


def test_a_code_of_a_system_that_is_not_loaded_is_refused(kb: KnowledgeBase) -> None:
    assert "HCPCS" not in kb.versions()
    with pytest.raises(Refused, match="HCPCS is not loaded"):
        check_typed_code("Z9999", "HCPCS", kb)  # nothing to check against: refused
    check_typed_code("E11.9", "ICD-10-CM", kb)
    with pytest.raises(Refused):
        check_typed_code("E11.99999", "ICD-10-CM", kb)


@pytest.fixture
def pcs_kb(tmp_path: Path) -> KnowledgeBase:
    """A KB holding a small ICD-10-PCS order file (0DTJ..., 0FT4..., 0DBJ0ZZ)."""
    from clinicode.kb.importers import run_import
    from tests.kb.test_pcs_tables import write_order_file

    path = tmp_path / "pcs.sqlite"
    run_import("pcs", write_order_file(tmp_path), path, force=True)
    return KnowledgeBase(path)


def test_a_partial_pcs_code_may_be_confirmed_but_never_reported(
    store: FeedbackStore, pcs_kb: KnowledgeBase
) -> None:
    """``accept``/``add`` of the first four characters of a PCS code the KB holds is recorded
    (a label, as the engine lists such candidates for the coder to complete); a partial code
    the KB's codes do not begin with or one of another length is refused with the reason, and
    outside ``accept``/``add`` (a ``modify``'s final code, ``partial_ok`` False) a partial code
    is no code."""
    kb = KBCalls(pcs_kb)
    row = _record(store, kb, note_id="n1", code="0dtj", system="ICD-10-PCS", action="add")
    assert (row.system, row.code, row.action) == ("ICD-10-PCS", "0DTJ", "add")
    with pytest.raises(Refused, match="0DTK begins no code of ICD-10-PCS"):
        _record(store, kb, note_id="n1", code="0DTK", system="ICD-10-PCS", action="add")
    with pytest.raises(Refused, match="first 4 characters"):
        _record(store, kb, note_id="n1", code="0DTJ4", system="ICD-10-PCS", action="add")
    with pytest.raises(Refused, match="0DTJ is not a code of ICD-10-PCS"):
        check_typed_code("0DTJ", "ICD-10-PCS", pcs_kb)  # reported codes stay billable only
    check_typed_code("0DTJ4ZZ", "ICD-10-PCS", pcs_kb, partial_ok=True)  # full codes as before
