"""``finditer_near`` gives exactly ``finditer``'s matches wherever it answers."""

from __future__ import annotations

import random
import re

import pytest

from clinicode.models.procedure_text import NoteText, rx, triggers
from clinicode.models.rule_cpt import load_rules
from clinicode.models.text_scan import bounded_width, finditer_near

WORDS = (
    "lap chole cholecystectomy laparoscopic colonoscopy with cold snare polypectomy biopsy "
    "of the left knee injection into right shoulder repair 2.5 cm laceration EGD ak AK-"
    "destruction cryotherapy 3 lesions debridement toe nails I&D abscess the and, no. \n"
).split(" ")


def rule_patterns() -> list[str]:
    rules = load_rules()["procedures"]
    return [p for r in rules if not r.get("vaccine") for p in r["find"]]


def random_text(seed: int, n: int) -> str:
    rng = random.Random(seed)
    return " ".join(
        rng.choice(WORDS) + rng.choice(["", "", ".", ",", "\n", "  "]) for _ in range(n)
    )


def spans(it: object) -> list[tuple[int, int]]:
    return [m.span() for m in it]  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(6))
def test_same_matches_as_finditer_on_every_rule_pattern(seed: int) -> None:
    text = random_text(seed, 3000)
    low = text.lower()
    answered = 0
    for p in rule_patterns():
        width, parts = bounded_width(p), triggers(p)
        if width is None or not parts:
            continue
        near = finditer_near(rx(p), text, low, parts, width)
        if near is None:
            continue
        answered += 1
        assert spans(near) == spans(rx(p).finditer(text)), p
    assert answered > 300  # most rule patterns are bounded and searched near their parts


def test_overlapping_candidates_keep_finditer_order() -> None:
    text = ("filler " * 80 + "ab abab aabab ") * 20
    p = r"ab(?:ab)?"
    near = finditer_near(re.compile(p, re.I), text, text.lower(), ("ab",), bounded_width(p) or 0)
    assert near is not None
    assert spans(near) == spans(re.finditer(p, text, re.I))


def test_unbounded_empty_or_lookaround_patterns_are_not_windowed() -> None:
    assert bounded_width(r"lap\s*chole") is None  # \s* unbounded
    assert bounded_width(r"a?") is None  # may match empty
    assert bounded_width(r"foo(?=bar)") is None
    assert bounded_width(r"\bcold snare\b") == len("cold snare")


def test_frequent_part_falls_back_to_whole_scan() -> None:
    text = "ak " * 1000
    assert finditer_near(re.compile("ak", re.I), text, text, ("ak",), 2) is None


def test_note_finditer_long_note_same_as_short_path() -> None:
    text = random_text(11, 4000)
    assert len(text) >= 10_000
    note = NoteText(text)
    for p in rule_patterns()[:120]:
        assert spans(note.finditer(p)) == spans(rx(p).finditer(text)), p
