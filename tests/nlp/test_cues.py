"""nlp.cues: negation before a cue and sentence / clause bounds for the guidelines layer."""

from __future__ import annotations

from clinicode.nlp.cues import clause_bounds, negated_before, sentence_bounds
from clinicode.nlp.resources import load_resource


def _at(text: str, word: str) -> int:
    return text.index(word)


def test_negation_words_come_from_the_resource() -> None:
    words = load_resource("cues.json")["negation_before"]["words"]
    assert {"no", "denies", "without", "stopped"} <= set(words)
    for w in words:
        text = f"Patient {w} warfarin."
        assert negated_before(text, _at(text, "warfarin")), w


def test_negation_needs_a_whole_word_close_in_the_same_sentence() -> None:
    assert not negated_before("Known MRSA carrier.", 6)
    text = "Notable for MRSA."  # "Not" inside a word
    assert not negated_before(text, _at(text, "MRSA"))
    text = "No fever. MRSA in sputum."  # a period ends the negation's reach
    assert not negated_before(text, _at(text, "MRSA"))
    text = "No fever\nsputum MRSA."  # so does a line break
    assert not negated_before(text, _at(text, "MRSA"))
    text = "No history of any kind of recent MRSA."  # over 25 characters from "No" to the cue
    assert not negated_before(text, _at(text, "MRSA"))
    text = "No recent history of MRSA."
    assert negated_before(text, _at(text, "MRSA"))
    text = "DENIES insulin use."
    assert negated_before(text, _at(text, "insulin"))


def test_negation_looks_back_a_fixed_window() -> None:
    # the word must lie within the look-back window (40 characters) before the cue
    far = "stopped" + " " * 45 + "warfarin"
    assert not negated_before(far, _at(far, "warfarin"))
    assert not negated_before("warfarin", 0)


def test_sentence_bounds_stop_at_sentence_ends_semicolons_and_lines() -> None:
    text = "CKD stage 3. On metformin; lisinopril daily\nBMI 31."
    lo, hi = sentence_bounds(text, _at(text, "metformin"), _at(text, "metformin") + 9)
    assert text[lo:hi] == " On metformin"
    lo, hi = sentence_bounds(text, _at(text, "lisinopril"), _at(text, "lisinopril") + 10)
    assert text[lo:hi] == " lisinopril daily"
    lo, hi = sentence_bounds(text, 0, 3)
    assert text[lo:hi] == "CKD stage 3"
    lo, hi = sentence_bounds("no stop at all", 3, 7)
    assert (lo, hi) == (0, 14)


def test_clause_bounds_stop_at_commas_brackets_and_sentence_ends() -> None:
    text = "PMH: asthma (resolved), diabetes. Hypertension, improved"
    s = _at(text, "diabetes")
    lo, hi = clause_bounds(text, s, s + 8)
    assert text[lo:hi] == " diabetes"
    s = _at(text, "asthma")
    assert text[slice(*clause_bounds(text, s, s + 6))] == "PMH: asthma "
    s = _at(text, "Hypertension")
    assert text[slice(*clause_bounds(text, s, s + 12))] == "Hypertension"
    text = "History of gout. Hypertension resolved"
    s = _at(text, "Hypertension")
    assert text[slice(*clause_bounds(text, s, s + 12))] == "Hypertension resolved"
