"""Suggest helpers (``serve/services/suggest.py``) without HTTP: limits, batch note ids, and
one engine call per distinct set of options with results back in input order."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from clinicode.serve.schemas import SuggestRequest
from clinicode.serve.services import Refused, TooLarge
from clinicode.serve.services.suggest import batch_note_ids, check_note, suggest_many
from clinicode.settings import Settings


@contextlib.contextmanager
def _slot() -> Iterator[None]:
    yield


def _note(text: str, **kw: Any) -> SuggestRequest:
    return SuggestRequest.model_validate({"text": text, "setting": "outpatient", **kw})


def test_check_note_limits(tmp_path: Any) -> None:
    s = Settings(data_dir=tmp_path, max_text_chars=10, max_top_k=3)
    check_note(_note("0123456789", top_k=3), s)
    with pytest.raises(TooLarge, match="11 characters; the limit is 10") as big:
        check_note(_note("0123456789x"), s)
    assert big.value.status == 413
    with pytest.raises(Refused, match="top_k is 4; the most allowed is 3") as k:
        check_note(_note("x", top_k=4), s)
    assert k.value.status == 422


def test_batch_note_ids(tmp_path: Any) -> None:
    s = Settings(data_dir=tmp_path, max_batch=3)
    ids = batch_note_ids([_note("a", note_id="a1"), _note("b")], s)
    assert ids[0] == "a1" and ids[1].startswith("n-") and len(ids[1]) == 22
    with pytest.raises(TooLarge, match="4 notes; the most per batch is 3"):
        batch_note_ids([_note("a")] * 4, s)
    with pytest.raises(Refused, match="unique"):
        batch_note_ids([_note("a", note_id="d"), _note("b", note_id="d")], s)


def test_suggest_many_groups_by_options_and_keeps_order(engine: Any) -> None:
    calls: list[tuple[int, str, Any]] = []
    real = engine.suggest_many

    def spy(texts: list[str], setting: str = "outpatient", **kw: Any) -> Any:
        calls.append((len(texts), setting, kw["top_k"]))
        return real(texts, setting, **kw)

    engine.suggest_many = spy
    notes = [
        _note("fever"),
        _note("hypertension", setting="inpatient"),
        _note("chest pain"),
        _note("type 2 diabetes and fever", top_k=1),
    ]
    results = suggest_many(engine, _slot, notes)
    assert [[c.code for c in r.codes] for r in results] == [
        ["R50.9"],
        ["I10"],
        ["R07.9"],
        ["E11.9"],
    ]
    assert [r.setting for r in results] == ["outpatient", "inpatient", "outpatient", "outpatient"]
    assert sorted(calls) == [(1, "inpatient", None), (1, "outpatient", 1), (2, "outpatient", None)]
