"""The notebooks' package functions: dataset tables (``training.explore``) and error analysis
(``training.errors``) on hand-made notes and runs."""

from __future__ import annotations

from clinicode.kb import KnowledgeBase
from clinicode.training import errors, explore
from clinicode.training.compare import PackRun
from clinicode.training.data import LabeledNote

NOTES = [
    LabeledNote("a", "x" * 10, [("ICD-10-CM", "E11.9"), ("ICD-10-CM", "I10")]),
    LabeledNote("b", "x" * 20, [("ICD-10-CM", "I10"), ("ICD-10-PCS", "0DTJ4ZZ")]),
    LabeledNote("c", "x" * 30, [("ICD-10-CM", "R51")]),  # a category, not billable in FY2026
    LabeledNote("d", "x" * 40, []),
]


def test_code_frequencies_and_summary(kb: KnowledgeBase) -> None:
    t = explore.code_frequencies(NOTES, "D", kb)
    assert [(r["code"], r["notes"]) for r in t] == [("I10", 2), ("E11.9", 1), ("R51", 1)]
    assert t[0]["share"] == 0.5 and t[0]["title"] == "Essential (primary) hypertension"
    assert "<table>" in t._repr_html_() and "I10" in t._repr_html_()
    s = explore.dataset_summary(NOTES, kb)
    assert s["notes"] == 4 and s["mean_note_chars"] == 25
    assert s["D"]["pairs"] == 4 and s["D"]["distinct_codes"] == 3 and s["D"]["codes_seen_once"] == 2
    assert s["D"]["pairs_not_in_code_set"] == 1  # R51
    assert s["P"]["pairs"] == 1 and s["P"]["pairs_checked_against_code_set"] == 0  # no PCS in KB
    chapters = {r["chapter"]: r["pairs"] for r in explore.chapter_frequencies(NOTES, kb, "D")}
    assert chapters["I00-I99 Diseases of the circulatory system"] == 2
    assert explore.codes_per_note(NOTES, "D") == [2, 1, 1, 0]


def test_sample_and_unseen_codes() -> None:
    s = explore.sample(NOTES, 2, seed=1)
    assert len(s) == 2 and s == explore.sample(NOTES, 2, seed=1)
    assert [n.id for n in s] == sorted(n.id for n in s)  # original order kept
    assert explore.sample(NOTES, 10) == NOTES
    u = explore.unseen_codes(NOTES[:1], NOTES[1:], "D")
    assert u == {"test_pairs": 2, "pairs_with_unseen_code": 1, "share_unseen": 0.5,
                 "distinct_unseen_codes": 1}  # fmt: skip


def _run() -> PackRun:
    scored = {
        "a": [("ICD-10-CM:E11.65", 0.9), ("ICD-10-CM:I10", 0.8), ("ICD-10-CM:E11.9", 0.3)],
        "b": [("ICD-10-CM:I10", 0.4)],
        "c": [],
    }
    chosen = {d: [c for c, s in p if s >= 0.5] for d, p in scored.items()}
    return PackRun("p", "p", 0.5, scored, chosen, {})


GOLD = {"a": ["ICD-10-CM:E11.9", "ICD-10-CM:I10"], "b": ["ICD-10-CM:I10"], "c": ["ICD-10-CM:R51"]}


def test_worst_codes_confusions_and_miss_reasons() -> None:
    run = _run()
    worst = errors.worst_codes(GOLD, run, n=10)
    assert [r["code"] for r in worst] == ["E11.65", "E11.9", "I10", "R51"]  # 1 error each: by name
    by = {r["code"]: r for r in worst}
    assert by["I10"]["tp"] == 1 and by["I10"]["fn"] == 1 and by["E11.65"]["fp"] == 1
    conf = errors.confusions(GOLD, run)
    assert list(conf) == [{"gold (missed)": "E11.9", "coded instead": "E11.65", "notes": 1}]
    why = errors.miss_reasons(GOLD, run)
    # missed: E11.9 in a (rank 3), I10 in b (rank 1), R51 in c (never a candidate)
    assert why["missed_pairs"] == 3 and why["never_a_candidate"] == 1
    assert why["candidate_below_threshold"] == 2 and why["median_rank_when_candidate"] == 2
