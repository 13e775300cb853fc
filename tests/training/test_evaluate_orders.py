"""``clinicode evaluate --order served`` scores exactly what ``clinicode suggest`` serves.

30 short notes (the tiny corpus and 18 more, several with negated or family-history mentions the
guidelines layer suppresses), a small pack with the lexical candidate generator (so codes carry
evidence and the layer changes the order), then: the served-order MAP that ``evaluate`` prints
must equal the MAP computed here, independently, from the JSON that ``suggest`` prints for each
note (``codes``, then ``candidates``, then ``suppressed``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.training.tiny_pack import tiny_notes

MORE = [
    ("HPI: 58M w/ HTN, here for f/u. Denies chest pain. BP 150/92. A/P: essential HTN.", ["I10"]),
    ("CC: cough x5d. CXR: RLL infiltrate. Dx: community acquired pneumonia. No sepsis.", ["J18.9"]),
    ("T2DM on metformin, A1c 8.2. No retinopathy. Plan: add glipizide.", ["E11.9"]),
    ("Fever 101.2 F, no source found. Family hx of diabetes mellitus in mother.", ["R50.9"]),
    ("Asthma, mild persistent, well controlled. No pneumonia. Refill albuterol.", ["J45.901"]),
    ("s/p lap appendectomy for acute appendicitis, POD#1, tolerating diet.", ["K35.80"]),
    (
        "Hx HTN, DM2. Today: BP controlled, sugars 120s. Continue lisinopril, metformin.",
        ["I10", "E11.9"],
    ),
    ("Pneumonia ruled out; viral URI suspected. Fever resolved.", ["R50.9"]),
    (
        "Assessment: 1. Essential hypertension 2. Type 2 diabetes mellitus w/o complications.",
        ["I10", "E11.9"],
    ),
    ("Pt with wheezing and SOB, asthma exacerbation, nebs given in clinic.", ["J45.901"]),
    ("RLQ pain, CT c/w acute appendicitis. Surgery consulted.", ["K35.80"]),
    ("No hypertension. No diabetes. Here for sports physical; febrile today 100.9.", ["R50.9"]),
    ("Pneumonia LLL on CXR, started ceftriaxone/azithro. HTN stable.", ["J18.9", "I10"]),
    ("DM type 2 uncontrolled, denies polyuria. Mother with asthma.", ["E11.9"]),
    ("Fever and chills x2d, UA neg, CXR neg for pneumonia.", ["R50.9"]),
    ("Asthma hx since childhood, currently on ICS, mild persistent.", ["J45.901"]),
    ("Essential HTN, on amlodipine 10 mg daily; no diabetes.", ["I10"]),
    ("Acute appendicitis w/o perforation; lap appy performed today.", ["K35.80"]),
]


def _average_precision(gold: set[str], ranked: list[str]) -> float:
    """AP written out again here, not imported from ``clinicode.training.metrics``."""
    hits, total = 0, 0.0
    for k, code in enumerate(ranked, start=1):
        if code in gold:
            hits += 1
            total += hits / k
    return total / len(gold)


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    from clinicode.cli import _register_plugins
    from clinicode.cli import app as root

    _register_plugins()
    return root


def _rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {"id": n.id, "text": n.text, "codes": [f"{s}:{c}" for s, c in n.codes]}
        for n in tiny_notes()
    ]
    rows += [
        {"id": f"m{i}", "text": text, "codes": [f"ICD-10-CM:{c}" for c in codes]}
        for i, (text, codes) in enumerate(MORE)
    ]
    return rows


def _invoke(runner: CliRunner, app: typer.Typer, args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.mark.slow
def test_served_order_map_equals_map_of_suggest_output(
    app: typer.Typer, tmp_path: Path, kb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLINICODE_DATA_DIR", str(kb_path.parent))
    from clinicode.settings import get_settings

    get_settings.cache_clear()
    rows = _rows()
    assert len(rows) == 30
    data = tmp_path / "notes.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    pack = tmp_path / "pack"
    runner = CliRunner()
    train = ["train", "--data", str(data), "--format", "jsonl", "--out", str(pack)]
    _invoke(runner, app, [*train, "--generators", "lexical", "--folds", "3", "--quiet"])
    ev = ["evaluate", "--data", str(data), "--format", "jsonl", "--task", "D"]
    out = json.loads(
        _invoke(runner, app, [*ev, "--model", str(pack), "--order", "served", "--quiet"])
    )
    assert out["order"] == "served"
    assert out["map"] == out["orders"]["served"]["map"]

    aps = []
    changed = 0
    for row in rows:
        note = tmp_path / f"{row['id']}.txt"
        note.write_text(str(row["text"]), encoding="utf-8")
        res = json.loads(_invoke(runner, app, ["suggest", str(note), "--model", str(pack)]))
        ranked: list[str] = []
        for group in ("codes", "candidates", "suppressed"):
            for s in res[group]:
                key = f"{s['system']}:{s['code']}"
                if s["system"] == "ICD-10-CM" and key not in ranked:
                    ranked.append(key)
        by_score = sorted(
            ranked,
            key=lambda k: (
                -next(
                    s["score"]
                    for g in ("codes", "candidates", "suppressed")
                    for s in res[g]
                    if f"{s['system']}:{s['code']}" == k
                )
            ),
        )
        changed += ranked != by_score
        gold = {c for c in row["codes"] if str(c).startswith("ICD-10-CM:")}  # type: ignore[attr-defined]
        aps.append(_average_precision(gold, ranked))
    assert abs(out["map"] - sum(aps) / len(aps)) <= 0.001
    # the layer really changed the order of some notes, so the two orders are distinct figures
    assert changed > 0
