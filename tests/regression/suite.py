"""The guidelines regression suite: short notes with the codes that must / must not be coded.

Two suite files share this format: ``tests/regression/guideline_notes.yaml`` (the dev suite, run
end to end by the tests) and ``tests/regression/guideline_notes_heldout.yaml`` (held-out notes,
every one ``heldout: true``, written before the code they measure and read only by
``bench/bench_guidelines.py --heldout``). Each file is read by :func:`load_suite`;
:func:`check_case` compares one engine result with a case's expectations and returns the
failures as readable lines (empty when the case passes). Used by the end-to-end test and by
``bench/bench_guidelines.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clinicode.models.guidelines import code_matches


@dataclass
class Case:
    id: str
    section: str
    setting: str
    text: str
    must: list[str] = field(default_factory=list)
    must_not: list[str] = field(default_factory=list)
    query: list[str] = field(default_factory=list)
    principal: str | None = None
    first_of: list[str] = field(default_factory=list)
    known_failure: str | None = None
    specialty: str | None = None
    heldout: bool = False


def load_suite(path: Path | str) -> list[Case]:
    rows = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    cases = []
    for row in rows:
        heldout = row.get("heldout", False)
        if not isinstance(heldout, bool):
            raise ValueError(f"{row.get('id')}: heldout must be true or false, not {heldout!r}")
        cases.append(
            Case(
                id=str(row["id"]),
                section=str(row["section"]),
                setting=str(row.get("setting", "outpatient")),
                text=str(row["text"]),
                must=[str(c) for c in row.get("must", [])],
                must_not=[str(c) for c in row.get("must_not", [])],
                query=[str(c) for c in row.get("query", [])],
                principal=row.get("principal"),
                first_of=[str(c) for c in row.get("first_of", [])],
                known_failure=row.get("known_failure"),
                specialty=str(row["specialty"]) if row.get("specialty") else None,
                heldout=heldout,
            )
        )
    ids = [c.id for c in cases]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate case ids in the guidelines suite")
    return cases


def matches(expected: str, code: str) -> bool:
    """Whether a served ``code`` meets one expected entry (exact, or "X-": any code under X)."""
    if expected.endswith("-"):
        return code_matches(expected, code)
    return expected == code


def check_case(case: Case, result: Any) -> list[str]:
    """Failures of one case against a ``SuggestResult`` (or anything with ``.codes``)."""
    codes = [s for s in result.codes if s.system == "ICD-10-CM"]
    got = [s.code for s in codes]
    fails = []
    for exp in case.must:
        if not any(matches(exp, c) for c in got):
            fails.append(f"missing {exp}")
    for exp in case.must_not:
        bad = [c for c in got if matches(exp, c)]
        if bad:
            fails.append(f"unexpected {', '.join(bad)}")
    for exp in case.query:
        st = [s for s in codes if matches(exp, s.code)]
        if not st or st[0].status != "needs_query" or st[0].query is None:
            fails.append(f"no query on {exp}")
    if case.principal:
        pr = [s.code for s in codes if s.principal]
        if pr != [case.principal]:
            fails.append(f"principal {pr or 'none'} instead of {case.principal}")
    if case.first_of:
        pos = [next((i for i, c in enumerate(got) if matches(e, c)), None) for e in case.first_of]
        if None not in pos and pos != sorted(p for p in pos if p is not None):
            fails.append(f"order {got} does not follow {case.first_of}")
    return fails
