"""The MTSamples hand-coded reference set: 40 real transcriptions with the codes a coder reports.

``tests/regression/mtsamples_coded.yaml`` holds, per coded row, the row index in
``mtsamples.csv``, the setting, the csv's specialty, the ``must`` / ``must_not`` codes with a
short rationale, and whether the row is held out; it holds no note text. :func:`load_reference`
reads it, :func:`load_cases` joins the transcriptions from the csv at run time,
:func:`check_case` compares one engine result with a row's expectations and returns the failures
as readable lines (empty when the row passes), and :func:`score_case` counts the figures
``bench/bench_mtsamples.py`` prints. A ``must`` item ``"A|B"`` passes when either code is in the
result; a code ending in ``-`` stands for any code under it (as in the guidelines suite).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clinicode.models.guidelines import code_matches

REFERENCE = Path(__file__).with_name("mtsamples_coded.yaml")
SEED = 2027
N_ROWS = 5111
SAMPLE_SIZE = 400
SETTINGS = ("inpatient", "outpatient")


def sample_order() -> list[int]:
    """The row positions in the order they were read: ``random.Random(2027).sample(...)``."""
    return random.Random(SEED).sample(range(N_ROWS), SAMPLE_SIZE)


@dataclass(frozen=True)
class CodedRow:
    index: int
    pos: int
    specialty: str
    setting: str
    heldout: bool
    must: list[str] = field(default_factory=list)
    must_not: list[str] = field(default_factory=list)
    why: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedRow:
    index: int
    pos: int
    reason: str


@dataclass(frozen=True)
class MTCase:
    row: CodedRow
    text: str


def _items(entries: Sequence[Any], index: int, side: str) -> tuple[list[str], dict[str, str]]:
    codes: list[str] = []
    why: dict[str, str] = {}
    for e in entries:
        if not isinstance(e, dict) or "code" not in e or "why" not in e:
            raise ValueError(f"row {index}: each {side} entry needs `code` and `why`")
        code = str(e["code"]).strip()
        codes.append(code)
        why[code] = str(e["why"])
    return codes, why


def load_reference(path: Path | str = REFERENCE) -> tuple[list[CodedRow], list[SkippedRow]]:
    """The coded rows (in file order) and the skipped rows of the reference file."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    coded: list[CodedRow] = []
    for r in data["coded"]:
        index = int(r["index"])
        must, why = _items(r.get("must") or [], index, "must")
        must_not, why_not = _items(r.get("must_not") or [], index, "must_not")
        coded.append(
            CodedRow(
                index=index,
                pos=int(r["pos"]),
                specialty=str(r["specialty"]),
                setting=str(r["setting"]),
                heldout=bool(r["heldout"]),
                must=must,
                must_not=must_not,
                why={**why, **why_not},
            )
        )
    skipped = [
        SkippedRow(index=int(s["index"]), pos=int(s["pos"]), reason=str(s["reason"]))
        for s in data.get("skipped") or []
    ]
    indices = [c.index for c in coded] + [s.index for s in skipped]
    if len(indices) != len(set(indices)):
        raise ValueError("a row index appears twice in the MTSamples reference")
    return coded, skipped


def load_cases(
    csv_path: Path | str, path: Path | str = REFERENCE, *, heldout: bool | None = None
) -> list[MTCase]:
    """The coded rows joined with their transcriptions from ``mtsamples.csv``.

    ``heldout`` picks one half (``True`` held out, ``False`` dev); ``None`` keeps both.
    Raises ``ValueError`` when a row is missing, its ``id`` is not its position, or its
    transcription is empty."""
    coded, _ = load_reference(path)
    wanted = {c.index for c in coded if heldout is None or c.heldout == heldout}
    texts: dict[int, str] = {}
    with Path(csv_path).open(encoding="utf-8", newline="") as fh:
        for pos, rec in enumerate(csv.DictReader(fh)):
            if pos in wanted:
                if str(rec.get("id", "")).strip() != str(pos):
                    raise ValueError(f"mtsamples row {pos}: id {rec.get('id')!r} is not {pos}")
                texts[pos] = rec.get("transcription") or ""
    cases = []
    for c in coded:
        if c.index not in wanted:
            continue
        text = texts.get(c.index)
        if text is None:
            raise ValueError(f"mtsamples row {c.index} is not in {csv_path}")
        if not text.strip():
            raise ValueError(f"mtsamples row {c.index} has an empty transcription")
        cases.append(MTCase(row=c, text=text))
    return cases


def alternatives(item: str) -> list[str]:
    """The codes of one expectation: ``"A|B"`` -> ``["A", "B"]``."""
    return [a.strip() for a in item.split("|") if a.strip()]


def hit(expected: str, code: str) -> bool:
    """Whether ``code`` satisfies one alternative (exact code, or ``X-`` prefix)."""
    if expected.endswith("-"):
        return code_matches(expected, code)
    return expected == code


def item_hit(item: str, codes: Sequence[str]) -> bool:
    return any(hit(a, c) for a in alternatives(item) for c in codes)


def result_codes(result: Any) -> list[str]:
    """The ICD-10-CM codes of a ``SuggestResult`` (or anything with ``.codes``), in order."""
    return [s.code for s in result.codes if s.system == "ICD-10-CM"]


def check_case(row: CodedRow | MTCase, result: Any) -> list[str]:
    """Failures of one row against an engine result: missing must items, must_not codes given."""
    r = row.row if isinstance(row, MTCase) else row
    got = result_codes(result)
    fails = [f"missing {item}" for item in r.must if not item_hit(item, got)]
    for item in r.must_not:
        bad = [c for c in got if any(hit(a, c) for a in alternatives(item))]
        if bad:
            fails.append(f"unexpected {', '.join(bad)} (must_not {item})")
    return fails


@dataclass(frozen=True)
class CaseScore:
    must_hit: int
    must_total: int
    codes_matching: int
    codes_total: int
    passed: bool


def score_case(row: CodedRow | MTCase, result: Any) -> CaseScore:
    """Counts for one row: must items found, and result codes that match some must item (a
    code matching none counts as a false positive)."""
    r = row.row if isinstance(row, MTCase) else row
    got = list(dict.fromkeys(result_codes(result)))
    matching = sum(1 for c in got if any(item_hit(item, [c]) for item in r.must))
    return CaseScore(
        must_hit=sum(1 for item in r.must if item_hit(item, got)),
        must_total=len(r.must),
        codes_matching=matching,
        codes_total=len(got),
        passed=not check_case(r, result),
    )
