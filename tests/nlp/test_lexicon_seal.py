"""Issue 13, failure 7: the cached mention lexicon is sealed (``clinicode.integrity``); an edited
copy (say, "pneumonia" pointed at a cholera code) is never loaded, and the cache rebuilds it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clinicode.errors import ClinicodeError
from clinicode.nlp import lexicon as lex

TERMS = [
    ("ICD-10-CM", "J18.9", "Pneumonia, unspecified organism", "title"),
    ("ICD-10-CM", "A00.9", "Cholera, unspecified", "title"),
]


def _tamper(path: Path) -> None:
    data = json.loads(path.read_text("utf-8"))
    cholera = next(v for v in data["entries"].values() if "A00.9" in v)
    for key, value in data["entries"].items():
        if "J18.9" in value:
            data["entries"][key] = cholera
    path.write_text(json.dumps(data), "utf-8")


def test_an_edited_lexicon_is_refused(tmp_path: Path) -> None:
    entries, max_words = lex.build_entries(TERMS, set())
    path = lex.write_lexicon(entries, max_words, tmp_path / "lexicon-x.json")
    assert lex.load_lexicon(str(path)).max_words == max_words
    lex.load_lexicon.cache_clear()
    _tamper(path)
    with pytest.raises(ClinicodeError, match="was modified after it was sealed"):
        lex.load_lexicon(str(path))
    lex.load_lexicon.cache_clear()
    path.with_name(path.name + ".seal").unlink()
    with pytest.raises(ClinicodeError, match="has no seal"):
        lex.load_lexicon(str(path))
    lex.load_lexicon.cache_clear()


def test_the_cache_rebuilds_an_edited_lexicon(
    tmp_path: Path, kb: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lex, "_iter_kb_terms", lambda _kb: (TERMS, set()))
    path = lex.ensure_lexicon(kb, tmp_path)
    good = path.read_bytes()
    _tamper(path)
    assert path.read_bytes() != good
    assert lex.ensure_lexicon(kb, tmp_path) == path
    assert path.read_bytes() == good  # rebuilt from the knowledge base
    assert "was modified after it was sealed; rebuilding it" in caplog.text
    lex.load_lexicon.cache_clear()
    assert lex.load_lexicon(str(path)) is not None
    lex.load_lexicon.cache_clear()
