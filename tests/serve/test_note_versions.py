"""Issue 13, failure 4: a note's text never changes under its id. A second text under an id is
a new version, decisions stay with the text they were made on, notes and decisions belong to
the key's tenant, an older database is migrated without losing a row, and stored texts can be
purged past a retention period."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from clinicode.serve.auth import KeyRing, create_key
from clinicode.serve.store import FeedbackStore

from .conftest import ADMIN_KEY, USER_KEY

TEXT_A = "Assessment: type 2 diabetes mellitus. Hypertension."
TEXT_B = "Assessment: chest pain, resolved. Fever."


def _suggest(client: Any, note_id: str, text: str, key: str = USER_KEY) -> Any:
    return client.post(
        "/v1/suggest",
        json={"text": text, "setting": "outpatient", "note_id": note_id},
        headers={"X-API-Key": key},
    )


def _export(client: Any, key: str = ADMIN_KEY) -> list[dict[str, Any]]:
    r = client.get("/v1/feedback/export", headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]


def test_reusing_a_note_id_keeps_both_texts_and_pairs_decisions_with_theirs(
    client: Any, settings: Any
) -> None:
    assert _suggest(client, "fb-1", TEXT_A).status_code == 200
    r = client.post("/v1/feedback", json={"note_id": "fb-1", "code": "E11.9", "action": "accept"})
    assert r.status_code == 201
    assert _suggest(client, "fb-1", TEXT_B, key=ADMIN_KEY).status_code == 200  # another key
    r = client.post("/v1/feedback", json={"note_id": "fb-1", "code": "R50.9", "action": "accept"})
    assert r.status_code == 201
    rows = {row["id"]: row for row in _export(client)}
    assert rows["fb-1"]["text"] == TEXT_A and rows["fb-1"]["version"] == 1
    assert rows["fb-1"]["codes"] == [{"system": "ICD-10-CM", "code": "E11.9"}]
    assert rows["fb-1@v2"]["text"] == TEXT_B and rows["fb-1@v2"]["note_id"] == "fb-1"
    assert rows["fb-1@v2"]["codes"] == [{"system": "ICD-10-CM", "code": "R50.9"}]
    store = client.app.state.service.store
    assert store.get_note("default", "fb-1", 1).text == TEXT_A
    assert store.get_note("default", "fb-1").version == 2


def test_notes_and_decisions_are_scoped_to_the_keys_tenant(client: Any, settings: Any) -> None:
    key1, _ = create_key(settings, role="admin", tenant="clinic-one")
    key2, _ = create_key(settings, role="admin", tenant="clinic-two")
    client.app.state.service.keys = KeyRing.from_settings(settings, reload_s=0)
    assert _suggest(client, "n-7", TEXT_A, key=key1).status_code == 200
    # another tenant sees no such note, nor its suggestions
    r = client.post(
        "/v1/feedback",
        json={"note_id": "n-7", "code": "E11.9", "action": "accept"},
        headers={"X-API-Key": key2},
    )
    assert r.status_code == 404
    # its own note under the same id is its own version 1
    assert _suggest(client, "n-7", TEXT_B, key=key2).status_code == 200
    for key, code in ((key1, "E11.9"), (key2, "R50.9")):
        r = client.post(
            "/v1/feedback",
            json={"note_id": "n-7", "code": code, "action": "accept"},
            headers={"X-API-Key": key},
        )
        assert r.status_code == 201, r.text
    (one,) = _export(client, key1)
    (two,) = _export(client, key2)
    assert (one["id"], one["text"], one["codes"][0]["code"]) == ("n-7", TEXT_A, "E11.9")
    assert (two["id"], two["text"], two["codes"][0]["code"]) == ("n-7", TEXT_B, "R50.9")
    assert _export(client) == []  # the default tenant has none of them


def test_a_stored_text_cannot_be_changed_or_deleted(tmp_path: Path, engine: Any) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path / 'f.sqlite'}")
    store.put_note(note_id="x", text_=TEXT_A, setting="outpatient", key_id="k")
    with store.engine.connect() as conn:
        for stmt in (
            "UPDATE notes SET text = 'other'",
            "UPDATE notes SET note_id = 'y'",
            "UPDATE notes SET version = 5",
            "DELETE FROM notes",
        ):
            with pytest.raises(sqlalchemy.exc.DatabaseError, match=r"immutable|append-only"):
                with conn.begin():
                    conn.execute(sqlalchemy.text(stmt))
    assert store.get_note("default", "x").text == TEXT_A
    store.close()


def test_purge_blanks_old_texts_and_drops_them_from_the_export(tmp_path: Path, engine: Any) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path / 'f.sqlite'}")
    store.record_suggestions(
        note_id="old",
        text_=TEXT_A,
        setting="outpatient",
        note_type=None,
        key_id="k",
        result=engine.suggest(TEXT_A),
    )
    store.record_feedback(
        note_id="old",
        suggestion_id=None,
        system="ICD-10-CM",
        code="I10",
        action="accept",
        final_code=None,
        reason=None,
        key_id="k",
        model_name="m",
        model_version="v",
        code_set_version="FY2026",
    )
    assert len(list(store.export())) == 1
    assert store.purge_texts(datetime.now(UTC) - timedelta(days=1)) == 0  # not old enough
    assert store.purge_texts(datetime.now(UTC) + timedelta(seconds=1)) == 1
    note = store.get_note("default", "old")
    assert note is not None and note.text is None and note.purged_at is not None
    assert list(store.export()) == [] and store.count("feedback") == 1
    with store.engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT text FROM notes")).scalar() == ""
    # the same text again is a new version, with its text
    ref = store.put_note(note_id="old", text_=TEXT_A, setting="outpatient", key_id="k")
    assert ref.version == 2 and store.get_note("default", "old").text == TEXT_A
    store.close()


_V1_SCHEMA = """
CREATE TABLE notes (note_id VARCHAR(128) NOT NULL PRIMARY KEY, text TEXT NOT NULL,
    setting VARCHAR(16) NOT NULL, note_type VARCHAR(64), created_at DATETIME NOT NULL,
    key_id VARCHAR(32) NOT NULL);
CREATE TABLE audit (id INTEGER NOT NULL PRIMARY KEY, at DATETIME NOT NULL,
    kind VARCHAR(16) NOT NULL, key_id VARCHAR(32) NOT NULL, note_id VARCHAR(128) NOT NULL,
    suggestion_id VARCHAR(128), system VARCHAR(16) NOT NULL, code VARCHAR(32) NOT NULL,
    status VARCHAR(16), score FLOAT, rank INTEGER, action VARCHAR(16), final_code VARCHAR(32),
    reason TEXT, model_name VARCHAR(128) NOT NULL, model_version VARCHAR(64) NOT NULL,
    code_set_version VARCHAR(64) NOT NULL);
CREATE INDEX audit_suggestion ON audit (suggestion_id);
CREATE INDEX audit_note ON audit (note_id, kind);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
INSERT INTO notes VALUES ('legacy-1', 'Old note: hypertension.', 'outpatient', NULL,
    '2026-01-02 03:04:05.000000', 'k0');
INSERT INTO audit VALUES (1, '2026-01-02 03:04:05.000000', 'suggestion', 'k0', 'legacy-1',
    's-1', 'ICD-10-CM', 'I10', 'suggested', 0.9, 1, NULL, NULL, NULL, 'm', '1', 'FY2026');
INSERT INTO audit VALUES (2, '2026-01-02 03:05:00.000000', 'feedback', 'k1', 'legacy-1',
    's-1', 'ICD-10-CM', 'I10', NULL, NULL, NULL, 'accept', NULL, NULL, 'm', '1', 'FY2026');
"""


def test_a_version_1_database_is_migrated_without_losing_data(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(_V1_SCHEMA)
    store = FeedbackStore(f"sqlite:///{path}")
    store.init()
    note = store.get_note("default", "legacy-1")
    assert note is not None and (note.version, note.text) == (1, "Old note: hypertension.")
    assert note.code_sets == {"ICD-10-CM": "FY2026"}
    assert store.count("suggestion") == 1 and store.count("feedback") == 1
    sugg = store.find_suggestion(suggestion_id="s-1")
    assert sugg is not None and (sugg.tenant, sugg.note_version) == ("default", 1)
    assert list(store.export()) == [
        {
            "id": "legacy-1",
            "note_id": "legacy-1",
            "version": 1,
            "text": "Old note: hypertension.",
            "codes": [{"system": "ICD-10-CM", "code": "I10"}],
            "partial_codes": [],
            "rejected": [],
            "unreviewed": [],
            "code_sets": {"ICD-10-CM": "FY2026"},
            "model_versions": ["1"],
        }
    ]
    ref = store.put_note(note_id="legacy-1", text_="New text.", setting="outpatient", key_id="k")
    assert ref.version == 2
    store.close()
    again = FeedbackStore(f"sqlite:///{path}")  # a second start migrates nothing
    again.init()
    assert again.get_note("default", "legacy-1", 1).text == "Old note: hypertension."
    with again.engine.connect() as conn, pytest.raises(sqlalchemy.exc.DatabaseError):
        with conn.begin():
            conn.execute(sqlalchemy.text("DELETE FROM audit"))
    again.close()


def test_the_purge_command_uses_the_retention_setting(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLINICODE_DATA_DIR", str(tmp_path))
    store = FeedbackStore(f"sqlite:///{tmp_path / 'feedback.sqlite'}")
    store.put_note(note_id="p1", text_=TEXT_A, setting="outpatient", key_id="k")
    store.close()
    code, _, err = run_cli("feedback", "purge")
    assert code == 2 and "CLINICODE_NOTE_RETENTION_DAYS" in err
    monkeypatch.setenv("CLINICODE_NOTE_RETENTION_DAYS", "30")
    code, out, _ = run_cli("feedback", "purge")
    assert code == 0 and "purged the text of 0 note version(s) older than 30 day(s)" in out
    code, out, _ = run_cli("feedback", "purge", "--days", "0")
    assert code == 0 and "purged the text of 1 note version(s)" in out
    again = FeedbackStore(f"sqlite:///{tmp_path / 'feedback.sqlite'}")
    note = again.get_note("default", "p1")
    assert note is not None and note.text is None
    again.close()
