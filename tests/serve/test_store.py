"""The feedback store on SQLite (always) and PostgreSQL (when CLINICODE_TEST_DATABASE_URL is set,
e.g. postgresql+psycopg://user:pw@127.0.0.1/clinicode_test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from clinicode.serve.store import FeedbackStore

PG_URL = os.environ.get("CLINICODE_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeedbackStore]:
    if request.param == "sqlite":
        s = FeedbackStore(f"sqlite:///{tmp_path / 'sub' / 'feedback.sqlite'}")
    else:
        if not PG_URL:
            pytest.skip("set CLINICODE_TEST_DATABASE_URL to a PostgreSQL URL to test it")
        pytest.importorskip("psycopg", reason="needs psycopg for PostgreSQL")
        s = FeedbackStore(PG_URL)
        with s.engine.begin() as conn:  # a clean schema for this test
            conn.execute(sqlalchemy.text("DROP TABLE IF EXISTS audit, notes, store_meta CASCADE"))
    s.init()
    yield s
    s.close()


def _seed(store: FeedbackStore, engine: Any, note_id: str, text: str) -> Any:
    result = engine.suggest(text)
    return store.record_suggestions(
        note_id=note_id,
        text_=text,
        setting="outpatient",
        note_type=None,
        key_id="k1",
        result=result,
    )
    return result


def _fb(
    store: FeedbackStore,
    note_id: str,
    code: str,
    action: str,
    final: str | None = None,
    system: str = "ICD-10-CM",
) -> Any:
    return store.record_feedback(
        note_id=note_id,
        suggestion_id=None,
        system=system,
        code=code,
        action=action,
        final_code=final,
        reason=None,
        key_id="k2",
        model_name="fake-engine",
        model_version="0.0.1-test",
        code_set_version="FY2026",
    )


def test_suggestions_feedback_and_export(store: FeedbackStore, engine: Any) -> None:
    ref = _seed(store, engine, "a", "Type 2 diabetes. Hypertension. No fever.")
    assert (ref.version, ref.created) == (1, True)
    assert store.note_exists("a") and not store.note_exists("b")
    assert store.count("suggestion") == 3
    sid = engine.suggest("Type 2 diabetes. Hypertension. No fever.").codes[0].suggestion_id
    row = store.find_suggestion(suggestion_id=sid)
    assert row is not None and (row.note_id, row.code) == ("a", "E11.9")
    assert row.model_version == "0.0.1-test" and row.code_set_version == "FY2026"
    by_code = store.find_suggestion(note_id="a", code="I10", system="ICD-10-CM")
    assert by_code is not None and by_code.code == "I10" and by_code.note_version == 1
    assert store.find_suggestion(note_id="a", code="J45.909") is None

    first = _fb(store, "a", "E11.9", "accept")
    _fb(store, "a", "I10", "modify", "I11.9")
    _fb(store, "a", "E11.9", "reject")
    _fb(store, "a", "E11.9", "accept")
    _fb(store, "a", "R50.9", "add")
    assert first.id > 0 and store.count("feedback") == 5
    assert [f.action for f in store.feedback_rows()] == [
        "accept",
        "modify",
        "reject",
        "accept",
        "add",
    ]
    # Re-coding the same note id with another text is a new version: the decisions stay with
    # the text they were made on.
    ref = _seed(store, engine, "a", "Type 2 diabetes. Hypertension. No fever. Seen again.")
    assert list(store.export()) == [
        {
            "id": "a",
            "note_id": "a",
            "version": 1,
            "text": "Type 2 diabetes. Hypertension. No fever.",
            "codes": [
                {"system": "ICD-10-CM", "code": "E11.9"},
                {"system": "ICD-10-CM", "code": "I11.9"},
                {"system": "ICD-10-CM", "code": "R50.9"},
            ],
            "partial_codes": [],
            # the modified code is turned down; every proposed code got a decision
            "rejected": [{"system": "ICD-10-CM", "code": "I10"}],
            "unreviewed": [],
            "code_sets": {"ICD-10-CM": "FY2026", "ICD-10-PCS": "FY2026"},
            "model_versions": ["0.0.1-test"],
        }
    ]
    assert (ref.version, ref.created) == (2, True)
    first_text = store.get_note("default", "a", 1)
    assert first_text is not None and first_text.text == "Type 2 diabetes. Hypertension. No fever."
    again = _seed(store, engine, "a", "Type 2 diabetes. Hypertension. No fever. Seen again.")
    assert (again.version, again.created) == (2, False)  # the same text is the same version


def test_audit_rows_cannot_change(store: FeedbackStore, engine: Any) -> None:
    _seed(store, engine, "x", "Hypertension.")
    with store.engine.connect() as conn:
        for stmt in ("UPDATE audit SET code = 'Z00.00'", "DELETE FROM audit"):
            with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"):
                with conn.begin():
                    conn.execute(sqlalchemy.text(stmt))
    assert store.count("suggestion") == 1


def test_init_is_idempotent_and_sqlite_uses_wal(store: FeedbackStore) -> None:
    again = FeedbackStore(store.url)
    again.init()
    again.init()
    if again.is_sqlite:
        with again.engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(sqlalchemy.text("PRAGMA synchronous")).scalar() == 2  # FULL
    again.close()


def test_export_separates_rejected_from_unreviewed(store: FeedbackStore, engine: Any) -> None:
    """A rejected code is an explicit negative; a proposed code nobody decided on is neither
    kept nor rejected; codes the engine only listed as suppressed are not "unreviewed"."""
    _seed(store, engine, "b", "Type 2 diabetes. Hypertension. Pneumonia. No fever.")
    _fb(store, "b", "E11.9", "accept")
    _fb(store, "b", "I10", "reject")
    _fb(store, "b", "K35.80", "add")
    (rec,) = list(store.export())
    assert rec["codes"] == [
        {"system": "ICD-10-CM", "code": "E11.9"},
        {"system": "ICD-10-CM", "code": "K35.80"},
    ]
    assert rec["rejected"] == [{"system": "ICD-10-CM", "code": "I10"}]
    assert rec["unreviewed"] == [{"system": "ICD-10-CM", "code": "J18.9"}]
    # a rejection taken back by a later accept is no negative any more
    _fb(store, "b", "I10", "accept")
    (rec,) = list(store.export())
    assert rec["rejected"] == [] and {"system": "ICD-10-CM", "code": "I10"} in rec["codes"]


def test_export_keeps_partial_pcs_codes_apart_and_a_completion_is_no_rejection(
    store: FeedbackStore, engine: Any
) -> None:
    """A confirmed partial ICD-10-PCS code (``0DTJ``) is a training label in ``partial_codes``,
    never in the final ``codes``; a partial the coder completed (``modify`` to ``0DTJ4ZZ``) was
    right as far as it went: no rejection, and the completed code is final."""
    _seed(store, engine, "p", "Laparoscopic appendectomy. Chest X-ray. Hypertension.")
    _fb(store, "p", "I10", "accept")
    _fb(store, "p", "BW03", "add", system="ICD-10-PCS")
    _fb(store, "p", "0DTJ", "modify", final="0DTJ4ZZ", system="ICD-10-PCS")
    _fb(store, "p", "0DBJ", "modify", final="0DTJ0ZZ", system="ICD-10-PCS")  # another code
    (rec,) = list(store.export())
    pcs = "ICD-10-PCS"
    assert rec["codes"] == [
        {"system": "ICD-10-CM", "code": "I10"},
        {"system": pcs, "code": "0DTJ4ZZ"},
        {"system": pcs, "code": "0DTJ0ZZ"},
    ]
    assert rec["partial_codes"] == [{"system": pcs, "code": "BW03"}]
    assert rec["rejected"] == [{"system": pcs, "code": "0DBJ"}]
