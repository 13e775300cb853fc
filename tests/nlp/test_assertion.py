"""The clinicode_assertion step on small hand-written sentences."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span

from clinicode.nlp import assertion as assertion_mod
from clinicode.nlp.assertion import (
    ASSERTIONS,
    CATEGORIES,
    CURRENT,
    derive_assertion,
    load_context_rules,
)


@pytest.fixture(scope="module")
def nlp() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clinicode_assertion")
    return nlp


def _doc(nlp: Language, text: str, targets: list[str], kind: str = "condition") -> Doc:
    """Run the pipeline with ``targets`` (first occurrences, any case) as the mentions."""
    doc = nlp.make_doc(text)
    doc = nlp.get_pipe("sentencizer")(doc)
    spans = []
    for target in targets:
        m = re.search(r"\b" + re.escape(target) + r"\b", text, flags=re.IGNORECASE)
        assert m, target
        i = m.start()
        span = doc.char_span(i, i + len(target), label=kind, alignment_mode="expand")
        assert span is not None
        spans.append(span)
    doc.spans["mentions"] = spans
    return nlp.get_pipe("clinicode_assertion")(doc)


@pytest.fixture(scope="module")
def check(nlp: Language) -> Callable[[str, str], Span]:
    def run(text: str, target: str) -> Span:
        doc = _doc(nlp, text, [target])
        return doc[:].doc.spans["mentions"][0]  # a Span keeps its doc alive

    return run


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        # present
        ("Patient has pneumonia.", "pneumonia", "present"),
        ("Chest x-ray shows a right lower lobe infiltrate.", "infiltrate", "present"),
        # negated
        ("Patient denies chest pain.", "chest pain", "negated"),
        ("No evidence of pneumonia.", "pneumonia", "negated"),
        ("Abdomen soft, without tenderness.", "tenderness", "negated"),
        ("Pulmonary embolism was ruled out.", "Pulmonary embolism", "negated"),
        ("Negative for malignancy.", "malignancy", "negated"),
        ("His nausea   has resolved.", "nausea", "negated"),
        ("Allergies: none.", "Allergies", "negated"),
        ("She is free of seizures.", "seizures", "negated"),
        # uncertain
        ("Possible pneumonia.", "pneumonia", "uncertain"),
        ("Rule out pulmonary embolism.", "pulmonary embolism", "uncertain"),
        ("Admitted to r/o MI.", "MI", "uncertain"),
        ("Suspected appendicitis.", "appendicitis", "uncertain"),
        ("Early pneumonia cannot be excluded.", "pneumonia", "uncertain"),
        ("CT is concerning for an abscess.", "abscess", "uncertain"),
        ("Doppler ordered to evaluate for DVT.", "DVT", "uncertain"),
        # historical
        ("History of myocardial infarction.", "myocardial infarction", "historical"),
        ("She is s/p appendectomy.", "appendectomy", "historical"),
        ("Status post CABG.", "CABG", "historical"),
        ("Prior stroke with no residual deficit.", "stroke", "historical"),
        ("He had pneumonia in the past.", "pneumonia", "historical"),
        ("Fractured wrist 10 years ago.", "Fractured wrist", "historical"),
        ("Partial hysterectomy in 2003 for menorrhagia.", "menorrhagia", "historical"),
        # family
        ("Mother had breast cancer.", "breast cancer", "family"),
        ("Family history of colon cancer.", "colon cancer", "family"),
        ("His father's diabetes was diagnosed at 40.", "diabetes", "family"),
        # hypothetical / conditional
        ("Return if chest pain recurs.", "chest pain", "hypothetical"),
        ("Call the clinic if fever develops.", "fever", "hypothetical"),
        ("Discussed the risk of bleeding.", "bleeding", "hypothetical"),
        ("Start DVT prophylaxis.", "DVT", "hypothetical"),
        ("In case of seizure, give lorazepam.", "seizure", "hypothetical"),
        ("This may result in weakness of all four extremities.", "weakness", "hypothetical"),
        ("Statins can cause elevated transaminases.", "elevated transaminases", "hypothetical"),
    ],
)
def test_assertion_classes(
    check: Callable[[str, str], Span], text: str, target: str, expected: str
) -> None:
    span = check(text, target)
    assert span._.assertion == expected
    if expected == "present":
        assert span._.assertion_cue is None
    else:
        assert span._.assertion_cue, "a non-present assertion names its cue"
        assert span._.assertion_cue in span.doc.text


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        # pseudo-triggers: look like a negation and negate nothing
        ("No increase in the pleural effusion.", "pleural effusion", "present"),
        ("Gram negative bacteremia.", "bacteremia", "present"),
        ("Not only hypertension, he also has gout.", "hypertension", "present"),
        ("The cysts have not changed in size.", "cysts", "present"),
        ("Nodule without change since prior study.", "Nodule", "present"),
        # a cue inside the mention is part of its name
        (
            "Type 2 diabetes mellitus without complications.",
            "Type 2 diabetes mellitus without complications",
            "present",
        ),
        # informants and companions are not the experiencer
        ("Brought in by his wife with chest pain.", "chest pain", "present"),
        ("Per her daughter, she has had confusion.", "confusion", "present"),
        # "clinical history" is a header, an n-day history is recent
        ("Clinical history: dizziness.", "dizziness", "present"),
        ("Presents with a three day history of cough.", "cough", "present"),
        # "risk factors" list present conditions
        ("Cardiac risk factors include hypertension.", "hypertension", "present"),
        # a new reported finding ends a negation; "prior to admission" is recent
        ("He denied trauma and reported bleeding with friction.", "bleeding", "present"),
        ("Two days prior to admission, flank pain began.", "flank pain", "present"),
        ("High resolution CT of the chest.", "CT", "present"),
        ("Follow-up CT showed resolution of the lymphadenopathy.", "lymphadenopathy", "negated"),
        ("He has not reported any headache.", "headache", "negated"),
        # follow-up visits and indications are not conditional or uncertain
        ("She will return to the cancer center on Monday.", "cancer", "present"),
        ("Colonoscopy performed for evaluation of anemia.", "anemia", "present"),
        ("Potential complications include bleeding.", "bleeding", "hypothetical"),
        # physician shorthand: a condition ruled out or excluded after it is named, "never"
        # right before it, and screening for it, are not the condition
        ("Troponins neg x3. Acute MI ruled out.", "Acute MI", "negated"),
        ("He was ruled out for MI.", "MI", "negated"),
        ("PE excluded by CTA.", "PE", "negated"),
        ("Social history: never smoker.", "smoker", "negated"),
        ("Low-dose CT for lung cancer screening.", "lung cancer", "hypothetical"),
        ("MI was ruled out, pneumonia is present.", "pneumonia", "present"),
    ],
)
def test_tricky_sentences(
    check: Callable[[str, str], Span], text: str, target: str, expected: str
) -> None:
    assert check(text, target)._.assertion == expected


def test_termination_and_sentence_scope(nlp: Language) -> None:
    doc = _doc(nlp, "No fever but has a cough. Rash present.", ["fever", "cough", "Rash"])
    fever, cough, rash = doc.spans["mentions"]
    assert fever._.assertion == "negated"
    assert cough._.assertion == "present"
    assert rash._.assertion == "present"  # a new sentence ends the scope


def test_cue_inside_a_mention_modifies_nothing(nlp: Language) -> None:
    text = "Type 2 diabetes mellitus without complications, hypertension."
    doc = _doc(nlp, text, ["Type 2 diabetes mellitus without complications", "hypertension"])
    assert [s._.assertion for s in doc.spans["mentions"]] == ["present", "present"]
    # without the long mention, "without" does reach the next one
    doc = _doc(nlp, text, ["complications", "hypertension"])
    assert [s._.assertion for s in doc.spans["mentions"]] == ["negated", "negated"]


def test_negated_list(nlp: Language) -> None:
    doc = _doc(nlp, "Denies fever, chills, or night sweats.", ["fever", "chills", "night sweats"])
    assert [s._.assertion for s in doc.spans["mentions"]] == ["negated"] * 3


def test_positive_finding_ends_negation(nlp: Language) -> None:
    doc = _doc(
        nlp,
        "MRI showed no biliary dilatation and positive for cholelithiasis.",
        ["biliary dilatation", "cholelithiasis"],
    )
    dil, stones = doc.spans["mentions"]
    assert dil._.negated and not stones._.negated


def test_axes_kept_apart(check: Callable[[str, str], Span]) -> None:
    span = check("No history of diabetes.", "diabetes")
    assert span._.negated is True
    assert span._.temporality == "Historical"
    assert span._.experiencer == "Patient"
    assert span._.assertion == "negated"  # negated outranks historical

    fam = check("No family history of cancer.", "cancer")
    assert fam._.negated is True and fam._.experiencer == "Family member"
    assert fam._.assertion == "family"

    hyp = check("Return if shortness of breath worsens.", "shortness of breath")
    assert hyp._.temporality == "Not particular" and hyp._.negated is False


def test_informant_is_not_experiencer(check: Callable[[str, str], Span]) -> None:
    assert check("Mom has not noticed any voice change.", "voice change")._.experiencer == "Patient"
    assert check("High school education.", "school")._.assertion == "present"


def test_other_experiencer(check: Callable[[str, str], Span]) -> None:
    span = check("His roommate has influenza.", "influenza")
    assert span._.experiencer == "Other"
    assert span._.assertion == "family"


def test_precedence() -> None:
    assert derive_assertion(True, True, "Historical", "Family member") == "family"
    assert derive_assertion(True, True, "Not particular", "Patient") == "hypothetical"
    assert derive_assertion(True, True, "Historical", "Patient") == "negated"
    assert derive_assertion(False, True, "Historical", "Patient") == "uncertain"
    assert derive_assertion(False, False, "Historical", "Patient") == "historical"
    assert derive_assertion(False, False, "Recent", "Patient") == "present"
    assert derive_assertion(False, False, "Recent", "Other") == "family"
    outcomes = {
        derive_assertion(n, u, t, e)
        for n in (True, False)
        for u in (True, False)
        for t in ("Recent", "Historical", "Not particular")
        for e in ("Patient", "Family member", "Other")
    }
    assert outcomes == set(ASSERTIONS)


def _sectioned(use_sections: bool) -> Language:
    from medspacy.section_detection import SectionRule

    nlp = spacy.blank("en")
    sectionizer: Any = nlp.add_pipe("medspacy_sectionizer", config={"rules": None})
    sectionizer.add(
        [
            SectionRule("Family History:", "family_history"),
            SectionRule("Past Surgical History:", "past_surgical_history"),
            SectionRule("Assessment:", "assessment"),
        ]
    )
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clinicode_assertion", config={"use_sections": use_sections})
    return nlp


def _sectioned_mentions(nlp: Language, text: str, words: list[str]) -> list[str]:
    doc = nlp.make_doc(text)
    for name, proc in nlp.pipeline:
        if name == "clinicode_assertion":
            spans = [
                doc.char_span(text.index(w), text.index(w) + len(w), label="condition")
                for w in words
            ]
            doc.spans["mentions"] = [sp for sp in spans if sp is not None]
        doc = proc(doc)
    return [s._.assertion for s in doc.spans["mentions"]]


SECTIONED = (
    "Family History: reviewed. Diabetes. No asthma.\n"
    "Past Surgical History: reviewed. Appendectomy.\n"
    "Assessment: reviewed. Pneumonia. History of gout."
)


def test_section_decides_open_axes() -> None:
    got = _sectioned_mentions(
        _sectioned(True), SECTIONED, ["Diabetes", "asthma", "Appendectomy", "Pneumonia", "gout"]
    )
    assert got == ["family", "family", "historical", "present", "historical"]


def test_what_the_patient_is_admitted_for_is_not_past_history_under_its_header() -> None:
    # the past-history section runs on where the note opens no new header
    text = (
        "Past Surgical History: Appendectomy. "
        "Admitted for elective right total knee arthroplasty for primary osteoarthritis."
    )
    got = _sectioned_mentions(_sectioned(True), text, ["Appendectomy", "osteoarthritis"])
    assert got == ["historical", "present"]


def test_sections_can_be_switched_off() -> None:
    got = _sectioned_mentions(
        _sectioned(False), SECTIONED, ["Diabetes", "asthma", "Appendectomy", "Pneumonia", "gout"]
    )
    assert got == ["present", "negated", "present", "present", "historical"]


def test_no_mentions_and_no_sentences(nlp: Language) -> None:
    doc = nlp("No fever.")  # no mention group: untouched
    assert "mentions" not in doc.spans
    bare = spacy.blank("en").make_doc("No fever.")
    bare.spans["mentions"] = [bare[1:2]]
    with pytest.raises(ValueError, match="sentence"):
        nlp.get_pipe("clinicode_assertion")(bare)


def test_rerun_is_stable(nlp: Language) -> None:
    doc = _doc(nlp, "Denies chest pain.", ["chest pain"])
    doc = nlp.get_pipe("clinicode_assertion")(doc)
    span = doc.spans["mentions"][0]
    assert span._.assertion == "negated"
    assert len(span._.modifiers) == 1


def test_baseline_rules_load_and_differ(nlp: Language) -> None:
    base = spacy.blank("en")
    base.add_pipe("sentencizer")
    base.add_pipe("clinicode_assertion", config={"rules": "medspacy_default"})
    text = "The cysts are unchanged, without change in size."
    ours_doc = _doc(nlp, text, ["size"])
    theirs_doc = _doc(base, text, ["size"])
    assert ours_doc.spans["mentions"][0]._.negated is False  # "without change" is a pseudo-cue
    assert theirs_doc.spans["mentions"][0]._.negated is True
    assert len(load_context_rules("medspacy_default")[0]) < len(load_context_rules()[0])


def test_rule_file_is_well_formed() -> None:
    rules, terminating = load_context_rules()
    known = {*CATEGORIES, "POSITIVE_EXISTENCE", CURRENT}
    assert {r.category for r in rules} <= known
    for targets in terminating.values():
        assert set(targets) <= known
    for r in rules:
        for also in (r.metadata or {}).get("also", ()):
            assert also in CATEGORIES


def test_custom_rule_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            {
                "context_rules": [
                    {"literal": "nope", "category": "NEGATED_EXISTENCE", "direction": "FORWARD"}
                ]
            }
        )
    )
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clinicode_assertion", config={"rules": str(path)})
    doc = _doc(nlp, "Nope fever. No cough.", ["fever", "cough"])
    fever, cough = doc.spans["mentions"]
    assert fever._.assertion == "negated" and fever._.assertion_cue == "Nope"
    assert cough._.assertion == "present"  # "no" is not in this rule set


def test_extensions_idempotent() -> None:
    assertion_mod.register_extensions()
    assertion_mod.register_extensions()
    for name in ("assertion", "assertion_cue", "negated", "temporality", "experiencer"):
        assert Span.has_extension(name)


def test_sentence_by_sentence_graph_equals_whole_doc_graph(nlp: Language) -> None:
    from medspacy.context.context_graph import ConTextGraph

    text = (
        "No fever, chills or rash but has cough. History of asthma and possible pneumonia. "
        "Mother had diabetes; denies   headache. Return if chest pain recurs, no nausea."
    )
    words = ["fever", "chills", "rash", "cough", "asthma", "pneumonia", "diabetes"]
    words += ["headache", "chest pain", "nausea"]
    doc = _doc(nlp, text, words)
    component: Any = nlp.get_pipe("clinicode_assertion")
    ours = {(t.start, t.end, m.modifier_span) for t in doc.spans["mentions"] for m in t._.modifiers}
    whole = ConTextGraph(prune_on_modifier_overlap=False)
    whole.targets = list(doc.spans["mentions"])
    whole.modifiers = component._modifiers(doc)
    whole.update_scopes()
    whole.apply_modifiers()
    expected = {(t.start, t.end, m.modifier_span) for t, m in whole.edges}
    assert ours == expected
    assert len(expected) >= len(words)  # every mention here has a cue
