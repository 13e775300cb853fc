from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from spacy.language import Language

from clinicode.nlp.abbreviations import AbbreviationExpander
from clinicode.nlp.lexicon import build_entries, signed_words, term_phrases, write_lexicon
from clinicode.nlp.mentions import MentionMatcher
from clinicode.nlp.sentences import ClinicalSentencizer

TERMS = [
    ("ICD-10-CM", "E11", "Type 2 diabetes mellitus", "title"),
    ("ICD-10-CM", "E11.21", "Type 2 diabetes mellitus with diabetic nephropathy", "title"),
    ("ICD-10-CM", "E10.21", "Type 1 diabetes mellitus with diabetic nephropathy", "title"),
    ("ICD-10-CM", "N18.30", "Chronic kidney disease, stage 3 unspecified", "title"),
    ("ICD-10-CM", "N18.9", "Chronic kidney disease, unspecified", "title"),
    ("ICD-10-CM", "S72.90", "Unspecified fracture of unspecified femur", "title"),
    ("ICD-10-CM", "I50.9", "Heart failure, unspecified", "title"),
    ("ICD-10-CM", "R07.9", "Chest pain, unspecified", "title"),
    ("ICD-10-CM", "Z99.9", "Other specified status", "title"),
    ("ICD-10-CM", "L57.0", "Actinic keratosis", "title"),
    ("ICD-10-CM", "N20.0", "Calculus of kidney", "title"),
    ("ICD-10-CM", "M25.672", "Stiffness of left ankle, not elsewhere classified", "title"),
    ("ICD-10-CM", "A04.71", "Colitis, Clostridium difficile, recurrent", "index"),
    ("ICD-10-CM", "D72.0", "May (-Hegglin)", "index"),
    ("ICD-10-CM", "B20", "AIDS", "index"),
    ("ICD-10-CM", "N42.31", "PIN", "index"),
    ("ICD-10-CM", "R14.3", "Gas", "index"),
    ("ICD-10-CM", "R29.2", "Reflex", "index"),
    ("ICD-10-CM", "R20.0", "Anesthesia", "index"),
    ("ICD-10-CM", "K00.7", "Teething", "index"),
    ("ICD-10-CM", "F43.9", "Stress", "index"),
    ("ICD-10-CM", "Z17.21", "PR+", "inclusion"),
    ("ICD-10-CM", "Z17.22", "PR-", "inclusion"),
    ("ICD-10-CM", "Z17.41", "HR+", "inclusion"),
]


@pytest.fixture(scope="module")
def nlp(tmp_path_factory: pytest.TempPathFactory) -> Language:
    entries, max_words = build_entries(TERMS, set())
    path: Path = write_lexicon(entries, max_words, tmp_path_factory.mktemp("lex") / "lex.json")
    nlp = spacy.blank("en")
    sent = ClinicalSentencizer()
    abbr = AbbreviationExpander(nlp, use_scispacy=False)
    matcher = MentionMatcher(lexicon_path=str(path))

    def run(text: str) -> spacy.tokens.Doc:
        return matcher(abbr(sent(nlp.make_doc(text))))

    nlp.run = run  # type: ignore[attr-defined]
    return nlp


def _mentions(nlp: Language, text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    doc = nlp.run(text)  # type: ignore[attr-defined]
    out = []
    for s in doc.spans["mentions"]:
        assert text[s.start_char : s.end_char] == s.text
        out.append((s.text, s.label_, tuple(s._.concepts)))
    return out


def test_term_phrases_split_titles_into_parts() -> None:
    phrases = dict(term_phrases("Type 2 diabetes mellitus with diabetic chronic kidney disease"))
    assert phrases["Type 2 diabetes mellitus"] == 2
    assert phrases["diabetic chronic kidney disease"] == 2
    assert (
        dict(term_phrases("Chronic kidney disease, stage 3 unspecified"))["Chronic kidney disease"]
        == 1
    )


def test_signed_acronyms_keep_their_sign() -> None:
    assert signed_words("PR+") == "PR positive"
    assert signed_words("HR- with HER2+") == "HR negative with HER2 positive"
    # the bare letters never name the code: "HR 88", "PR interval", "seen in the ER"
    assert dict(term_phrases("PR-")) == {"PR negative": 0}
    assert signed_words("Type 2 diabetes mellitus") == "Type 2 diabetes mellitus"


def test_receptor_status_is_read_with_its_sign(nlp: Language) -> None:
    got = _mentions(nlp, "ER positive, PR negative, HER2 negative. HR 88, PR interval 160 ms.")
    concepts = {text: c for text, _, c in got}
    assert concepts["ER positive"] == ("ICD-10-CM:Z17.0",)  # a curated synonym
    assert concepts["PR negative"] == ("ICD-10-CM:Z17.22",)  # the KB's "PR-"
    assert "HR" not in concepts and "PR" not in concepts


def test_word_order_inflection_and_function_words(nlp: Language) -> None:
    for text in ("Left femur fracture.", "Fracture of the left femur.", "Fractured femur."):
        got = _mentions(nlp, text)
        assert len(got) == 1, text
        assert got[0][2][0] == "ICD-10-CM:S72.90"
    assert _mentions(nlp, "Fracture of the left femur.")[0][0] == "Fracture of the left femur"


def test_greek_and_latin_plurals_match_singular_titles(nlp: Language) -> None:
    # words.json irregular_plurals and the -oses rule, on both sides of the match
    assert _mentions(nlp, "Actinic keratoses of the scalp.")[0][2][0] == "ICD-10-CM:L57.0"
    assert _mentions(nlp, "Calculi of the kidney.")[0][2][0] == "ICD-10-CM:N20.0"


def test_side_letters_and_organism_abbreviations_feed_matching(nlp: Language) -> None:
    assert _mentions(nlp, "Stiffness of L ankle.")[0][2][0] == "ICD-10-CM:M25.672"
    assert _mentions(nlp, "Recurrent C. diff colitis.")[0][2][0] == "ICD-10-CM:A04.71"
    assert _mentions(nlp, "Given 2 l NS.") == []  # lower-case l is no side


def test_abbreviations_feed_matching(nlp: Language) -> None:
    got = _mentions(nlp, "DM2 with CKD stage 3.")
    texts = [m[0] for m in got]
    assert texts == ["DM2", "CKD stage 3"]
    assert got[1][2][0] == "ICD-10-CM:N18.30"
    assert got[0][1] == "condition"


def test_nested_component_with_another_concept_is_kept(nlp: Language) -> None:
    got = _mentions(nlp, "Type 2 diabetes with diabetic nephropathy.")
    texts = [m[0] for m in got]
    assert texts[0] == "Type 2 diabetes with diabetic nephropathy"
    assert got[0][2][0] == "ICD-10-CM:E11.21"
    assert "diabetic nephropathy" in texts
    # "Type 2 diabetes" names the same category as the outer span: not repeated
    assert "Type 2 diabetes" not in texts


def test_head_inside_longer_span_is_not_repeated(nlp: Language) -> None:
    texts = [m[0] for m in _mentions(nlp, "Chronic kidney disease stage 3 today.")]
    assert texts == ["Chronic kidney disease stage 3"]


def test_findings_kind_and_generic_words_ignored(nlp: Language) -> None:
    got = _mentions(nlp, "Chest pain. Other status unspecified.")
    assert [(m[0], m[1]) for m in got] == [("Chest pain", "finding")]


def test_no_match_across_punctuation_or_sentences(nlp: Language) -> None:
    assert _mentions(nlp, "The femur. Fracture was ruled out.")[0][0] == "Fracture"


def test_synonyms_give_procedures_and_medications(nlp: Language) -> None:
    got = {m[0]: m[1] for m in _mentions(nlp, "Colonoscopy with biopsy, then metformin 500 mg.")}
    assert got == {"Colonoscopy with biopsy": "procedure", "metformin": "medication"}


def test_head_words_that_name_no_code_alone_are_conditions(nlp: Language) -> None:
    # no code title names a tumor without its behaviour ("Neoplasm of unspecified behavior
    # of bladder"), so "bladder tumors" named nothing
    got = [m for m in _mentions(nlp, "Recurrent bladder tumors. Brain tumor.") if m[1]]
    assert [(m[0], m[1]) for m in got] == [("tumors", "condition"), ("tumor", "condition")]
    # a head word whose Index subterms scatter over many categories is a mention of its own
    # for the encoder to walk by the stated site ("Stricture, esophagus" K22.2)
    got = _mentions(nlp, "Distal esophageal reflux-induced stricture. Gastric polyp, removed.")
    assert {"stricture", "polyp"} <= {m[0] for m in got}
    # an animal bite written as a verb is a condition ("Bite(s)")
    got = _mentions(nlp, "9 yo bitten on the L forearm by a dog.")
    assert any(m[0].startswith("bitten") for m in got)


def test_cause_after_due_to_is_not_a_component() -> None:
    phrases = dict(term_phrases("Allergic contact dermatitis due to cement"))
    assert "Allergic contact dermatitis" in phrases
    assert "cement" not in phrases


def test_index_paths_give_main_term_with_each_tail() -> None:
    phrases = dict(term_phrases("Diabetes, diabetic, with, nephropathy (mellitus)", "index"))
    assert phrases["Diabetes with nephropathy"] == 1
    assert "Diabetes" not in phrases  # the main term alone names only its own entry's code
    assert "nephropathy" not in phrases
    assert (
        dict(term_phrases("Hypertension, hypertensive", "index"))["Hypertension hypertensive"] == 0
    )


def test_an_acronym_spelled_like_a_word_is_named_only_in_capitals(nlp: Language) -> None:
    # "AIDS" and "PIN" are Index main terms; "hearing aids" and "a pin" are not
    assert _mentions(nlp, "She wears hearing aids. A pin was placed, then two pins.") == []
    got = _mentions(nlp, "Hx of AIDS. PIN on biopsy.")
    assert [(m[0], m[2]) for m in got if m[2]] == [
        ("AIDS", ("ICD-10-CM:B20",)),
        ("PIN", ("ICD-10-CM:N42.31",)),
    ]


def test_words_of_an_exam_test_or_technique_name_no_condition_alone(nlp: Language) -> None:
    # Index main terms Gas R14.3, Reflex R29.2, Anesthesia R20.0: alone in a note they name
    # what was examined, measured or given ("generic" and procedure phrases in synonyms.json)
    text = "Reflexes 2+. Arterial blood gas normal. Under anesthesia, gas in the colon."
    got = _mentions(nlp, text)
    assert [(m[0], m[1]) for m in got] == [("Arterial blood gas", "procedure")]
    got = _mentions(nlp, "Bloating and passing gas.")
    assert ("passing gas", "finding", ("ICD-10-CM:R14.3",)) in got
    # a body part, a strain: "Teeth in poor repair", "stress at work"; teething is a condition
    assert _mentions(nlp, "Teeth in poor repair. Stress at work.") == []
    assert _mentions(nlp, "Teething.") == [("Teething", "condition", ("ICD-10-CM:K00.7",))]


def test_modal_verbs_name_no_condition(nlp: Language) -> None:
    # "May (-Hegglin) anomaly" is an Index main term; "may" in a plan is a modal verb
    got = _mentions(nlp, "She may need a colonoscopy, could follow up.")
    assert [m[0] for m in got] == ["colonoscopy"]
