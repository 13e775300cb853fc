"""The MTSamples hand-coded reference set: its codes against ICD-10-CM FY2026, its shape and
sampling, the checker, and (where ../shared is present) the rows in ``mtsamples.csv``.

The end-to-end figures are a benchmark (``bench/bench_mtsamples.py``), not a test: the set
measures the engine and is never tuned on.
"""

from __future__ import annotations

from typing import Any

from clinicode.models.guidelines import code_matches
from tests.conftest import shared_path
from tests.regression.mtsamples import (
    SETTINGS,
    CodedRow,
    SkippedRow,
    alternatives,
    check_case,
    load_cases,
    load_reference,
    sample_order,
    score_case,
)

CODED, SKIPPED = load_reference()


def test_every_code_is_billable_fy2026(kb: Any) -> None:
    billable = [c for c, b in kb.billable_map("ICD-10-CM").items() if b]
    bad = []
    for row in CODED:
        for item in [*row.must, *row.must_not]:
            for code in alternatives(item):
                if code.endswith("-"):
                    if not any(code_matches(code, c) for c in billable):
                        bad.append(f"{row.index}: {code} matches no billable code")
                    continue
                rec = kb.get(code, "ICD-10-CM")
                if rec is None:
                    bad.append(f"{row.index}: {code} is not an ICD-10-CM FY2026 code")
                elif not rec.billable:
                    bad.append(f"{row.index}: {code} is not billable")
    assert bad == []


def test_reference_shape() -> None:
    assert len(CODED) == 40
    assert [r.heldout for r in CODED] == [False] * 20 + [True] * 20
    order = sample_order()
    rows: list[CodedRow | SkippedRow] = sorted([*CODED, *SKIPPED], key=lambda r: r.pos)
    # every row read down the sample list is recorded, coded or skipped, with no gap
    assert [r.pos for r in rows] == list(range(len(rows)))
    assert [r.index for r in rows] == order[: len(rows)]
    assert [r.pos for r in CODED] == sorted(r.pos for r in CODED), "coded rows not in order"
    indices = [r.index for r in rows]
    assert len(indices) == len(set(indices))
    for r in CODED:
        assert r.setting in SETTINGS, r.index
        assert r.specialty.strip(), r.index
        assert r.must, f"{r.index}: a coded row reports at least one diagnosis"
        must_codes = {a for item in r.must for a in alternatives(item)}
        not_codes = {a for item in r.must_not for a in alternatives(item)}
        assert not must_codes & not_codes, r.index
        for code, why in r.why.items():
            assert 0 < len(why.split()) <= 15, f"{r.index} {code}: rationale of 1-15 words"
    for s in SKIPPED:
        assert s.reason.strip(), s.index


def test_checker_reports_failures() -> None:
    from clinicode.schema import CodeSuggestion

    row = CodedRow(
        index=0,
        pos=0,
        specialty="s",
        setting="outpatient",
        heldout=False,
        must=["J96.0-", "J43.9|J44.1", "I10"],
        must_not=["J18.9", "S02-"],
    )

    class R:
        def __init__(self, codes: list[str]) -> None:
            self.codes = [
                CodeSuggestion(system="ICD-10-CM", code=c, title="", score=0.9) for c in codes
            ]

    assert check_case(row, R(["J96.01", "J44.1", "I10"])) == []
    fails = check_case(row, R(["J96.90", "J43.9", "J18.9", "S02.0XXA", "R05.9"]))
    assert fails == [
        "missing J96.0-",
        "missing I10",
        "unexpected J18.9 (must_not J18.9)",
        "unexpected S02.0XXA (must_not S02-)",
    ]
    s = score_case(row, R(["J96.90", "J43.9", "J18.9", "R05.9", "J43.9"]))
    assert (s.must_hit, s.must_total, s.codes_matching, s.codes_total, s.passed) == (
        1,
        3,
        1,
        4,
        False,
    )


def test_rows_exist_in_csv() -> None:
    csv_path = shared_path("mtsamples", "mtsamples.csv")
    cases = load_cases(csv_path)
    assert [c.row.index for c in cases] == [r.index for r in CODED]
    assert all(c.text.strip() for c in cases)
    norm = {c.row.index: " ".join(c.text.split()).lower() for c in cases}
    assert len(set(norm.values())) == len(norm), "a coded transcription is coded twice"
    assert len(load_cases(csv_path, heldout=True)) == 20
    assert len(load_cases(csv_path, heldout=False)) == 20
    # a row skipped as a duplicate repeats the text of an earlier coded row
    import csv

    with csv_path.open(encoding="utf-8", newline="") as fh:
        texts = [" ".join((r["transcription"] or "").split()).lower() for r in csv.DictReader(fh)]
    for s in SKIPPED:
        if s.reason.startswith("duplicate of index"):
            orig = int(s.reason.split()[3])
            assert texts[s.index] == norm[orig], s.index
