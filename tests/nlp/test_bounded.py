"""Bounded work per note: hostile chunks, caps and their warnings, offsets kept."""

from __future__ import annotations

from typing import Any

import pytest
import spacy

from clinicode.nlp.tokenizer import BoundedTokenizer, drop_noop_space_rules, linear_tokens

NOTE = (
    "HPI: 67 yo male with HTN and DM2. He denies fever.\n"
    "ASSESSMENT: possible pneumonia. Fracture of the left femur, initial encounter.\n"
)


@pytest.fixture(scope="module")
def blank() -> Any:
    return spacy.blank("en")


def _bounded(nlp: Any, **kw: Any) -> BoundedTokenizer:
    return BoundedTokenizer(spacy.blank("en").tokenizer, nlp.vocab, **kw)


def test_ordinary_text_is_tokenized_exactly_as_spacy_does(blank: Any) -> None:
    tok = _bounded(blank)
    for text in (NOTE, "BP 120/80, HR 72. s/p CABG x3 (2019); pt's wife's", "a-b c--d e...f"):
        ours, theirs = tok(text), blank.tokenizer(text)
        assert [(t.text, t.whitespace_) for t in ours] == [(t.text, t.whitespace_) for t in theirs]


SPACED = (
    NOTE,
    "a\n\nb",
    "\n",
    "\t\t x",
    "x \n y \n",
    " \n",
    "foo\tbar\n\n\nbaz  qux\r\n",
    "(\n)",
    "a.\nb",
    "\xa0BP\xa0120/80",
    "PLAN:\n1. ASA 81 mg\n\t2. f/u 2 wks\n",
)


def test_dropping_the_noop_space_rules_changes_no_token(blank: Any) -> None:
    tok = spacy.blank("en").tokenizer
    dropped = drop_noop_space_rules(tok)
    assert sorted(dropped) == ["\t", "\n", " "]
    assert "\xa0" in tok.rules  # it sets a norm: kept
    assert not any(k.isspace() and k != "\xa0" for k in tok.rules)
    attrs = ("text", "idx", "whitespace_", "norm_", "lower_", "is_space", "shape_", "is_punct")
    for text in SPACED:
        ours, theirs = tok(text), blank.tokenizer(text)
        assert [[getattr(t, a) for a in attrs] for t in ours] == [
            [getattr(t, a) for a in attrs] for t in theirs
        ]


def test_the_pipeline_tokenizer_has_no_noop_space_rules(pipe: Any) -> None:
    assert isinstance(pipe.nlp.tokenizer, BoundedTokenizer)
    assert "\n" not in pipe.nlp.tokenizer.inner.rules
    assert "\xa0" in pipe.nlp.tokenizer.inner.rules


@pytest.mark.parametrize(
    "chunk",
    [")" * 5000, "😀" * 3000, "'s" * 2000, ").;" * 1000, "diabetes," * 500, "_" * 900],
)
def test_hostile_chunk_keeps_every_character_and_offset(blank: Any, chunk: str) -> None:
    text = f"HTN and {chunk} pneumonia\n{chunk}"
    doc = _bounded(blank)(text)
    assert doc.text == text
    for t in doc:
        assert text[t.idx : t.idx + len(t.text)] == t.text
    assert doc._.limits and "tokenized coarsely" in doc._.limits[0]
    assert [t.text for t in doc][:2] == ["HTN", "and"]


def test_runs_of_one_symbol_become_one_token() -> None:
    assert linear_tokens(")" * 1000) == [")" * 1000]
    assert linear_tokens("ab))))cd,,e") == ["ab", "))))", "cd", ",,", "e"]
    assert "".join(linear_tokens("😀x😀😀")) == "😀x😀😀"


def test_pipeline_offsets_unchanged_around_hostile_runs(pipe: Any) -> None:
    text = "HTN " + ")" * 3000 + " possible pneumonia " + "😀" * 2000 + "\nHe denies fever."
    mentions, warnings = pipe.extract_checked([text])[0]
    assert {m.text for m in mentions} >= {"HTN", "pneumonia", "fever"}
    for m in mentions:
        assert text[m.start : m.end] == m.text
    assert any("tokenized coarsely" in w for w in warnings)


def test_ordinary_note_has_no_warnings(pipe: Any) -> None:
    mentions, warnings = pipe.extract_checked([NOTE])[0]
    assert warnings == []
    assert [m.model_dump() for m in mentions] == [m.model_dump() for m in pipe.extract(NOTE)]


def _capped(pipe: Any, kb: Any, **caps: Any) -> Any:
    from clinicode.nlp import NlpConfig, load_pipeline

    return load_pipeline(kb, NlpConfig(**caps), cache=pipe.lexicon_path.parent)


def test_mentions_per_note_cap_keeps_the_first_and_warns(pipe: Any, kb: Any) -> None:
    capped = _capped(pipe, kb, max_mentions=3)
    text = "Hypertension.\n" * 10
    mentions, warnings = capped.extract_checked([text])[0]
    assert len(pipe.extract(text)) == 10
    assert [m.start for m in mentions] == [0, 14, 28]
    assert any("only the first 3 were kept" in w for w in warnings)


def test_tokens_per_mention_cap_warns(pipe: Any, kb: Any) -> None:
    capped = _capped(pipe, kb, max_mention_tokens=3)
    text = "fracture of the left femur"
    assert any(m.text == text for m in pipe.extract(text))
    mentions, warnings = capped.extract_checked([text])[0]
    assert all(len(m.text.split()) <= 3 for m in mentions)
    assert any("longer than 3 tokens" in w for w in warnings)


def test_long_sentence_assertion_window_warns_and_stays_local(pipe: Any) -> None:
    text = "no pneumonia. " * 200  # one sentence of 600 tokens
    mentions, warnings = pipe.extract_checked([text])[0]
    assert len(mentions) == 200
    # a cue and its mention split by a window edge (at most one per edge) lose their link
    assert sum(m.assertion == "negated" for m in mentions) >= 200 - 600 // 256
    assert any("assertion cues were read within windows" in w for w in warnings)
    for m in mentions:
        assert text[m.start : m.end] == m.text


def test_repeated_mentions_all_found_with_exact_offsets(pipe: Any) -> None:
    text = "pneumonia, " * 400
    mentions = pipe.extract(text)
    assert len(mentions) == 400
    assert all(text[m.start : m.end] == "pneumonia" for m in mentions)


def test_doc_text_is_the_note_kept_by_the_tokenizer(blank: Any) -> None:
    from spacy.tokens import Doc

    from clinicode.nlp.tokenizer import doc_text

    tok = _bounded(blank)
    for text in (NOTE, f"HTN {')' * 3000} pneumonia", ""):
        doc = tok(text)
        assert doc_text(doc) == doc.text == text
    other = Doc(blank.vocab, words=["no", "fever"])  # not from the tokenizer: joined as spaCy does
    assert doc_text(other) == "no fever "


def test_a_run_of_one_repeated_word_gives_the_mentions_of_the_word(pipe: Any) -> None:
    text = "Assessment: " + "pneumonia " * 300
    mentions, _ = pipe.extract_checked([text])[0]
    assert mentions and all(m.normalized and "pneumonia" in m.text.lower() for m in mentions)
    assert all(text[m.start : m.end] == m.text for m in mentions)
