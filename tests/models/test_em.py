"""The E/M level calculator (models/em) on the dev visit notes, its pieces, and its place in
the scoring path. The held-out notes are never run here (only their expected codes checked)."""

from __future__ import annotations

from typing import Any

import pytest

from clinicode.models.em import EMCoder, decide
from clinicode.models.em.data import load_em_rules
from clinicode.models.types import RuleCoder
from clinicode.schema import Mention

from .em_suite import DEV, HELDOUT, family_of, load_notes, within_one

DEV_NOTES = load_notes(DEV)


def test_the_note_files_are_big_enough_and_marked() -> None:
    held = load_notes(HELDOUT)
    assert len(DEV_NOTES) + len(held) >= 60 and len(held) >= 20
    assert all(n.heldout for n in held) and not any(n.heldout for n in DEV_NOTES)
    assert not {n.id for n in held} & {n.id for n in DEV_NOTES}


@pytest.mark.parametrize("path", [DEV, HELDOUT], ids=["dev", "heldout"])
def test_every_expected_code_is_an_em_code_of_the_families(path: Any, kb: Any) -> None:
    primary = {"office_new", "office_established", "ed", "hospital_initial"}
    primary |= {"hospital_subsequent", "hospital_discharge"}
    for n in load_notes(path):
        assert n.setting in ("inpatient", "outpatient"), n.id
        if n.code is not None:
            fam = family_of(n.code)
            assert fam is not None and fam[0] in primary, (n.id, n.code)
            assert (fam[0].startswith("hospital")) == (n.setting == "inpatient"), n.id
            assert kb.get(n.code, "CPT") is not None, (n.id, n.code)  # in the starter set
        for c in n.addons:
            fam = family_of(c)
            assert fam is not None and fam[0] == "prolonged", (n.id, c)
        assert n.why.strip() and n.text.strip(), n.id


@pytest.mark.parametrize("note", DEV_NOTES, ids=[n.id for n in DEV_NOTES])
def test_dev_note_level(note: Any) -> None:
    level = decide(note.text, note.setting)
    got = level.code if level else None
    assert got == note.code, "\n".join(level.lines if level else ["not a visit"])
    if level is not None:
        addons = [level.addon[0]] if level.addon else []
        assert addons == note.addons
        assert sorted(q.axis for q in level.queries) == sorted(note.query)


def test_within_one_level_compares_inside_a_family() -> None:
    assert within_one("99213", "99214") and not within_one("99213", "99215")
    assert not within_one("99203", "99213")  # new vs established is a miss
    assert within_one(None, None) and not within_one(None, "99213")


OFFICE = """CC: f/u HTN and DM2
HPI: 64 yo M established patient. Checks BG at home. No hypoglycemia.
Meds: lisinopril 20 mg daily, metformin 1000 mg BID
Labs: A1c reviewed - 6.9%.
Assessment/Plan:
1. HTN - stable. Increase lisinopril to 40 mg daily.
2. DM2 - controlled, continue metformin. Order BMP.
"""


def test_the_explanation_shows_each_element_and_the_deciding_rule() -> None:
    level = decide(OFFICE, "outpatient")
    assert level is not None and level.code == "99214"
    mdm = next(x for x in level.lines if x.startswith("MDM:"))
    assert "problems moderate (2 x stable chronic illness: 'HTN', 'DM2')" in mdm
    assert "data limited" in mdm and "'A1c'" in mdm and "'BMP'" in mdm
    assert "risk moderate (prescription drug management: 'lisinopril'" in mdm
    assert mdm.endswith("-> moderate (two of three elements) -> 99214")
    assert level.lines[-1] == "decided by: MDM -> 99214"
    assert "not documented" in level.lines[2]  # no total time


def test_time_decides_when_higher_and_prolonged_service_follows() -> None:
    base = OFFICE.replace("established patient", "new patient")
    assert decide(base, "outpatient").code == "99204"  # type: ignore[union-attr]
    for minutes, code, addon in (
        (50, "99204", None),
        (62, "99205", None),
        (75, "99205", ("99417", 1)),
        (104, "99205", ("99417", 2)),
    ):
        lv = decide(base + f"Total time spent today: {minutes} minutes.\n", "outpatient")
        assert lv is not None and (lv.code, lv.addon) == (code, addon), minutes
    ed = "ED PROVIDER NOTE\n" + OFFICE + "Total time spent: 90 minutes.\n"
    lv = decide(ed, "outpatient")
    assert lv is not None and lv.code == "99284" and lv.addon is None  # ED: no time


def test_time_at_the_mdm_level_still_brings_the_prolonged_service() -> None:
    high = OFFICE + "3. Chest pain concerning for unstable angina. Sent to ED for admission.\n"
    lv = decide(high, "outpatient")
    assert lv is not None and (lv.code, lv.addon) == ("99215", None)
    lv = decide(high + "Total time: 45 minutes.\n", "outpatient")
    assert lv is not None and (lv.code, lv.addon) == ("99215", None)
    assert lv.lines[-1] == "decided by: MDM -> 99215 (time gives the same level)"
    lv = decide(high + "Total time: 60 minutes.\n", "outpatient")
    assert lv is not None and (lv.code, lv.addon) == ("99215", ("99417", 1))


def test_missing_documentation_becomes_a_query() -> None:
    lv = decide(OFFICE.replace(" established patient", ""), "outpatient")
    assert lv is not None and lv.code == "99214"
    assert [q.axis for q in lv.queries] == ["patient_status"]
    thin = "CC: cough\nHPI: dry cough x 1 wk, est pt.\nAssessment: acute bronchitis.\n"
    lv = decide(thin, "outpatient")
    assert lv is not None and [q.axis for q in lv.queries] == ["time"]
    assert "lacks data, risk" in lv.queries[0].question
    dc = "DISCHARGE SUMMARY\nHospital course: treated for CAP, improved.\n"
    lv = decide(dc, "inpatient")
    assert lv is not None and lv.code == "99238" and [q.axis for q in lv.queries] == ["time"]
    assert decide(dc + "Discharge time: 40 minutes.\n", "inpatient").code == "99239"  # type: ignore[union-attr]


def test_setting_chooses_the_family_and_non_visits_get_nothing() -> None:
    assert decide(OFFICE, "inpatient").code == "99232"  # type: ignore[union-attr]
    h_and_p = "ADMISSION H&P\n" + OFFICE
    assert decide(h_and_p, "inpatient").code == "99222"  # type: ignore[union-attr]
    op = "OPERATIVE REPORT\nProcedure: laparoscopic cholecystectomy.\nFindings: stones.\n"
    assert decide(op, "outpatient") is None and decide(op, "inpatient") is None
    case_report = "A 45-year-old man presented with chest pain and was admitted for PCI."
    assert decide(case_report, "outpatient") is None


def test_negated_conditions_do_not_count_as_problems() -> None:
    note = OFFICE.replace("2. DM2 - controlled", "2. No DM2 - controlled")
    lv = decide(note, "outpatient")
    assert lv is not None and "1 x stable chronic illness: 'HTN'" in lv.lines[1]
    start = OFFICE.index("DM2 - controlled")
    neg = Mention(start=start, end=start + 3, text="DM2", normalized="dm2", kind="condition")
    blocked = decide(OFFICE, "outpatient", [neg.model_copy(update={"assertion": "negated"})])
    assert blocked is not None and "1 x stable chronic illness: 'HTN'" in blocked.lines[1]


def test_coder_gives_suggestions_with_evidence_and_titles(kb: Any) -> None:
    coder = EMCoder(kb)
    assert isinstance(coder, RuleCoder) and coder.systems == ("CPT",)
    [s] = coder.code(OFFICE, [], setting="outpatient")
    assert (s.system, s.code, s.status, s.query) == ("CPT", "99214", "suggested", None)
    assert s.title and s.description_source == "clinicode-own-words"
    assert {e.text for e in s.evidence} >= {"HTN", "DM2", "lisinopril", "established patient"}
    assert all(OFFICE[e.start : e.end] == e.text for e in s.evidence)
    assert any(e.section == "assessment" for e in s.evidence)
    assert s.explanation[-1] == "decided by: MDM -> 99214"
    long = OFFICE + "Total time on the date of the encounter: 60 minutes.\n"
    main, add = coder.code(long, [], setting="outpatient")
    assert (main.code, add.code) == ("99215", "99417") and "units: 1" in add.explanation[-1]
    rec = kb.get("99417", "CPT")  # the KB's title when it has the code, else our own words
    assert add.title == (rec.title if rec else load_em_rules()["titles"]["99417"])
    [q] = coder.code(OFFICE.replace(" established patient", ""), [], setting="outpatient")
    assert q.status == "needs_query" and q.query is not None
    assert q.query.axis == "patient_status" and 0.0 <= q.score < s.score
