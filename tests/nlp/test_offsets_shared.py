"""Every mention's text is the note's text at its offsets, over real notes (../shared/data)."""

from __future__ import annotations

import csv
from typing import Any

import pytest

from tests.conftest import shared_path

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def _check(pipe: Any, notes: list[str]) -> int:
    n = 0
    for note, mentions in zip(notes, pipe.extract_many(notes), strict=True):
        for m in mentions:
            assert note[m.start : m.end] == m.text
            assert m.sentence_start <= m.start < m.end <= m.sentence_end <= len(note)
            for a in m.attributes:
                assert note[a.start : a.end] == a.text
            n += 1
    return n


def test_offsets_codiesp_train(pipe: Any) -> None:
    folder = shared_path("codiesp", "train", "text_files_en")
    notes = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))]
    assert len(notes) == 500
    assert _check(pipe, notes) > 5 * len(notes)


def test_offsets_mtsamples_500(pipe: Any) -> None:
    path = shared_path("mtsamples", "mtsamples.csv")
    csv.field_size_limit(10_000_000)
    seen: dict[str, None] = {}
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = row.get("transcription") or ""
            if text.strip():
                seen.setdefault(text, None)
    notes = list(seen)[:500]
    assert len(notes) == 500
    assert _check(pipe, notes) > 5 * len(notes)
