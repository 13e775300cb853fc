"""The CPT rule coder: codes from procedure phrases with evidence, path and modifiers."""

from __future__ import annotations

import csv
import re
from importlib import resources
from typing import Any

import pytest

from clinicode.models import registry
from clinicode.models.procedure_text import flat, load_context
from clinicode.models.rule_cpt import CPTCoder, add_modifier_25, load_rules
from clinicode.models.types import RuleCoder
from clinicode.schema import CodeSuggestion


@pytest.fixture(scope="module")
def coder(kb: Any) -> CPTCoder:
    return CPTCoder(kb)


def _keys(out: list[CodeSuggestion]) -> set[str]:
    return {"-".join([s.code, *s.modifiers]) for s in out}


def test_registered_rule_coder(kb: Any) -> None:
    c = registry.get("rule_coder", "cpt")(kb)
    assert isinstance(c, RuleCoder) and c.systems == ("CPT",)


def test_every_rule_code_is_in_the_starter_set_and_every_pattern_compiles() -> None:
    text = resources.files("clinicode.kb.data").joinpath("cpt_starter.csv").read_text("utf-8")
    codes = {r["code"] for r in csv.DictReader(text.splitlines())}
    rules = load_rules()
    used: set[str] = set()
    for r in rules["procedures"]:
        assert r["find"] or r.get("vaccine"), r["id"]
        for p in flat(r.get("find", [])):
            re.compile(p, re.I)
        for key in ("code", "default", "base"):
            if key in r:
                used.add(str(r[key]))
        for v in r.get("variants", []) + r.get("components", []):
            used.add(str(v["code"]))
            for g in v.get("all", []):
                for p in flat(g):
                    re.compile(p, re.I)
        used.update(str(c) for c in (r.get("count_addon") or {}).values())
    used.update(str(v["code"]) for v in rules["vaccines"])
    for a in rules["vaccine_admin"].values():
        used.update(a.values())
    assert used - codes == set()
    assert len(used) >= 150


def test_laparoscopic_cholecystectomy_with_evidence_and_path(coder: CPTCoder) -> None:
    text = "Procedure: Laparoscopic cholecystectomy."
    [s] = coder.code(text, [], setting="outpatient")
    assert (s.system, s.code, s.status, s.modifiers) == ("CPT", "47562", "suggested", [])
    assert s.description_source == "clinicode-own-words" and s.title
    assert {e.text for e in s.evidence} == {"cholecystectomy", "Laparoscopic"}
    assert all(text[e.start : e.end] == e.text for e in s.evidence)
    assert s.explanation[0] == "rule cpt: cholecystectomy"


def test_approach_decides_and_missing_approach_is_a_query(coder: CPTCoder) -> None:
    lap_ioc = "PROCEDURE: Lap chole with intraoperative cholangiogram. Four trocars placed."
    assert _keys(coder.code(lap_ioc, [], setting="inpatient")) == {"47563"}
    opened = "Operation: Open cholecystectomy via right subcostal incision."
    assert _keys(coder.code(opened, [], setting="inpatient")) == {"47600"}
    [s] = coder.code("Operation: Cholecystectomy.", [], setting="inpatient")
    assert s.status == "needs_query" and s.query is not None and "approach" in s.query.question


def test_laterality_modifiers(coder: CPTCoder) -> None:
    def keys(t: str) -> set[str]:
        return _keys(coder.code(t, [], setting="outpatient"))

    assert keys("Procedure: R knee intra-articular injection, landmark guided.") == {"20610-RT"}
    assert keys("Procedure: Left total knee arthroplasty.") == {"27447-LT"}
    assert keys("Procedure: Laparoscopic bilateral inguinal hernia repair.") == {"49650-50"}
    [s] = coder.code("Procedure: Knee joint injection.", [], setting="outpatient")
    assert s.modifiers == [] and s.query is not None and s.query.axis == "laterality"


def test_not_done_here_gives_nothing(coder: CPTCoder) -> None:
    for text in (
        "PMH: HTN.\nPast surgical history: laparoscopic cholecystectomy 2015.",
        "HPI: 60M s/p appendectomy, here for BP.",
        "Plan: will schedule colonoscopy.",
        "Pt declined the knee injection today.",
        "A/P: OA R knee. Consider steroid injection next visit.",
    ):
        assert coder.code(text, [], setting="outpatient") == [], text


def test_components_and_distinct_site(coder: CPTCoder) -> None:
    text = (
        "Procedure: Colonoscopy.\nFindings: 8 mm polyp removed with cold snare. Separate site: "
        "rectal erythema biopsied with cold forceps."
    )
    assert _keys(coder.code(text, [], setting="outpatient")) == {"45385", "45380-XS"}
    plain = "Procedure: Colonoscopy to the cecum. Normal mucosa."
    assert _keys(coder.code(plain, [], setting="outpatient")) == {"45378"}


def test_coronary_vessel_modifier(coder: CPTCoder) -> None:
    text = "Procedures: Left heart cath with coronary angiography. PCI of the RCA with DES."
    assert _keys(coder.code(text, [], setting="inpatient")) == {"93458", "92928-RC"}


def test_size_picks_the_repair_code(coder: CPTCoder) -> None:
    face = "Lac repair: 3 cm laceration of the forehead, simple repair with 6-0 nylon."
    assert _keys(coder.code(face, [], setting="outpatient")) == {"12013"}
    arm = "Simple repair of 9 cm laceration R forearm."
    assert _keys(coder.code(arm, [], setting="outpatient")) == {"12004"}


def test_vaccines_with_administration_outpatient_only(coder: CPTCoder) -> None:
    text = "Given today: Shingrix 0.5 mL IM L deltoid. Tdap (Adacel) 0.5 mL IM R deltoid."
    out = coder.code(text, [], setting="outpatient")
    assert _keys(out) == {"90750", "90715", "90471", "90472"}
    assert next(s for s in out if s.code == "90472").units == 1
    assert coder.code(text, [], setting="inpatient") == []


def test_injection_administration_outpatient_only(coder: CPTCoder) -> None:
    text = "Ceftriaxone 500 mg IM given L gluteal."
    assert _keys(coder.code(text, [], setting="outpatient")) == {"96372"}
    assert coder.code(text, [], setting="inpatient") == []


def test_add_on_units_for_further_lesions(coder: CPTCoder) -> None:
    text = (
        "Procedure: Five actinic keratoses on the scalp treated with liquid nitrogen cryotherapy."
    )
    out = {s.code: s for s in coder.code(text, [], setting="outpatient")}
    assert set(out) == {"17000", "17003"} and out["17003"].units == 4


def test_modifier_25_on_em_with_a_procedure() -> None:
    def sug(code: str) -> CodeSuggestion:
        return CodeSuggestion(system="CPT", code=code, title="t", score=0.9)

    codes = add_modifier_25([sug("99213"), sug("20610"), sug("93000")])
    assert codes[0].modifiers == ["25"] and "20610" in codes[0].explanation[-1]
    assert codes[1].modifiers == [] and codes[2].modifiers == []
    only_ecg = add_modifier_25([sug("99214"), sug("93000")])
    assert only_ecg[0].modifiers == []
    assert "25" not in load_context()["distinct"]


def test_licensed_cpt_without_the_code_gives_nothing() -> None:
    class _NoCodes:
        def get(self, code: str, system: str) -> None:
            return None

    assert CPTCoder(_NoCodes()).code("Procedure: Vasectomy.", [], setting="outpatient") == []


def test_imaging_only_from_its_report_or_its_reader(coder: CPTCoder) -> None:
    report = "RADIOLOGY REPORT\nEXAM: Chest X-ray, PA and lateral.\nIMPRESSION: No acute process."
    assert _keys(coder.code(report, [], setting="outpatient")) == {"71046"}
    reviewed = (
        "PROGRESS NOTE\nS: cough improving.\nO: lungs clear.\nStudies: reviewed the chest X-ray, "
        "PA and lateral, from the ED: no infiltrate.\nA/P: bronchitis, supportive care."
    )
    assert coder.code(reviewed, [], setting="outpatient") == []
    read = "ED course: 12-lead EKG, my interpretation: sinus rhythm, no ST changes."
    assert _keys(coder.code(read, [], setting="outpatient")) == {"93010"}


def test_bundled_codes_are_dropped(coder: CPTCoder) -> None:
    text = "Procedures: Diagnostic laparoscopy; laparoscopic appendectomy."
    assert _keys(coder.code(text, [], setting="inpatient")) == {"44970"}


def test_phrase_index_asks_the_note_about_every_part_it_holds() -> None:
    """``PhraseIndex.candidates`` (parts looked up by their first 3 characters) gives exactly
    the phrases whose parts ``NoteText.has`` finds, over notes holding every part and none."""
    import random

    from clinicode.models.procedure_text import NoteText
    from clinicode.models.rule_cpt import PhraseIndex

    index = PhraseIndex(load_rules()["procedures"])
    parts = sorted(index.by_part)
    assert index.short and index.by_first  # both paths are exercised
    rng = random.Random(11)
    notes = ["", "no procedure today.", " ".join(parts), " ".join(p.upper() for p in parts)]
    notes += [" ".join(rng.sample(parts, 40)) + " ok" for _ in range(30)]
    notes += [" ".join(p[: len(p) // 2 + 1] for p in rng.sample(parts, 80)) for _ in range(10)]
    for text in notes:
        note = NoteText(text)
        want = set(index.always)
        for part, where in index.by_part.items():
            if note.has(part):
                want.update(where)
        assert index.candidates(note) == sorted(want)


def test_warm_up_compiles_what_coding_a_note_needs(coder: CPTCoder, g: Any) -> None:
    """After warm-up no note makes the coder or the guidelines layer compile a pattern: a
    server's first requests cost what later ones do."""
    from clinicode.models.guidelines.data import compile_cue
    from clinicode.models.procedure_text import rx

    rx.cache_clear()
    compile_cue.cache_clear()
    coder.warm_up()
    g.warm_up()
    before = rx.cache_info().misses, compile_cue.cache_info().misses
    notes = [
        "PROCEDURE: Laparoscopic cholecystectomy with intraoperative cholangiogram.",
        "Given ceftriaxone 1 g IM. Flu vaccine given today, L deltoid. UA dipstick done.",
        "S/p I&D of R thigh abscess at bedside. EKG 12-lead interpreted: NSR.",
    ]
    for text in notes:
        coder.code(text, [], setting="outpatient")
        g.apply([], [], text=text, setting="outpatient", threshold=0.5)
    assert rx.cache_info().misses == before[0]
    assert compile_cue.cache_info().misses == before[1]
