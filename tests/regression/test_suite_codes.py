"""Every expected code of both guideline suite files is a real, billable ICD-10-CM FY2026 code.

Checks the dev suite (``guideline_notes.yaml``) and the held-out suite
(``guideline_notes_heldout.yaml``) against the knowledge base without running the engine, so the
held-out notes are verified without anyone looking at what the engine makes of them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.regression.suite import Case, load_suite

HERE = Path(__file__).parent
MAIN = HERE / "guideline_notes.yaml"
HELDOUT = HERE / "guideline_notes_heldout.yaml"
# The main file's first notes predate the `specialty` field; every note after them has one.
FIRST_NOTES = 65

MAIN_CASES = load_suite(MAIN)
HELDOUT_CASES = load_suite(HELDOUT)
ALL_CASES = MAIN_CASES + HELDOUT_CASES
SYSTEM = "ICD-10-CM"


@pytest.fixture(scope="module")
def billable(kb: Any) -> list[str]:
    return sorted(code for code, ok in kb.billable_map(SYSTEM).items() if ok)


def code_problem(kb: Any, billable: list[str], code: str) -> str | None:
    """Why ``code`` cannot stand in a suite expectation, or None when it can.

    An exact code must be billable in the KB. ``X-`` (any code under X) must name a header (a
    category or subcategory, not billable itself) with at least one billable code under it.
    """
    if code.endswith("-"):
        stem = code[:-1]
        rec = kb.get(stem, SYSTEM)
        if rec is None:
            return f"{code}: {stem} is not an ICD-10-CM code"
        if rec.billable:
            return f"{code}: {stem} is a billable code, not a category or subcategory"
        key = rec.code.replace(".", "")
        if not any(c.replace(".", "").startswith(key) for c in billable):
            return f"{code}: no billable code under {stem}"
        return None
    rec = kb.get(code, SYSTEM)
    if rec is None or rec.code != code:
        return f"{code}: not an ICD-10-CM code"
    if not rec.billable:
        return f"{code}: not billable"
    return None


def case_codes(case: Case) -> list[str]:
    codes = [*case.must, *case.must_not, *case.query, *case.first_of]
    return codes + ([case.principal] if case.principal else [])


def case_problems(kb: Any, billable: list[str], case: Case) -> list[str]:
    out = [p for c in case_codes(case) if (p := code_problem(kb, billable, c))]
    if case.principal and (case.principal not in case.must or case.setting != "inpatient"):
        out.append(f"principal {case.principal} must be in `must` of an inpatient note")
    for code in case.must:
        hit = [p for p in case.must_not if p == code or (p.endswith("-") and _under(code, p))]
        if hit:
            out.append(f"{code} is both expected and forbidden ({', '.join(hit)})")
    for code in [*case.query, *case.first_of]:
        if code not in case.must:
            out.append(f"{code} (query/first_of) is not in `must`")
    return out


def _under(code: str, pattern: str) -> bool:
    return code.replace(".", "").startswith(pattern[:-1].replace(".", ""))


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=f"{'heldout' if c.heldout else 'main'}:{c.id}") for c in ALL_CASES]
)
def test_expected_codes_exist_and_are_billable(kb: Any, billable: list[str], case: Case) -> None:
    assert case_problems(kb, billable, case) == []


def test_planted_bad_codes_are_caught(kb: Any, billable: list[str]) -> None:
    """The check above can fail: a header, a made-up code, an empty pattern and a billable
    code used as a pattern are all reported."""
    bad = Case(
        id="bad",
        section="s",
        setting="outpatient",
        text="t",
        must=["E11", "E11.99", "I10-", "Q99.9-", "E11.9"],
        must_not=["E11-"],
        principal="E11.9",
    )
    problems = case_problems(kb, billable, bad)
    for expected in ("E11: not billable", "E11.99: not an ICD-10-CM code", "I10-: I10 is a"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert any(p.startswith("Q99.9-") for p in problems), problems
    assert any("both expected and forbidden" in p for p in problems), problems
    assert any("principal E11.9" in p for p in problems), problems
    good = Case(id="ok", section="s", setting="outpatient", text="t", must=["E11.9", "R05-"])
    assert case_problems(kb, billable, good) == []


def test_ids_unique_across_both_files() -> None:
    dupes = [i for i, n in Counter(c.id for c in ALL_CASES).items() if n > 1]
    assert dupes == []


def test_heldout_file_shape() -> None:
    assert len(HELDOUT_CASES) >= 50
    assert all(c.heldout for c in HELDOUT_CASES)
    assert not any(c.known_failure for c in HELDOUT_CASES), "held-out notes are never run in tests"
    assert not any(c.heldout for c in MAIN_CASES), "held-out notes belong in the held-out file"


def test_new_notes_have_a_specialty_and_note_length() -> None:
    new = MAIN_CASES[FIRST_NOTES:] + HELDOUT_CASES
    assert [c.id for c in new if not c.specialty] == []
    assert [c.id for c in new if not 3 <= len(c.text.strip().splitlines()) <= 15] == []


def test_union_size_and_specialties() -> None:
    assert len(ALL_CASES) >= 150
    assert len({c.specialty for c in ALL_CASES if c.specialty}) >= 25
    new = MAIN_CASES[FIRST_NOTES:] + HELDOUT_CASES
    assert sum(c.setting == "inpatient" for c in new) >= 20
    for c in ALL_CASES:
        assert c.setting in ("inpatient", "outpatient"), c.id
        assert c.must or c.must_not, c.id
