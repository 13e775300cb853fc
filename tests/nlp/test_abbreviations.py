from __future__ import annotations

import spacy

from clinicode.nlp.abbreviations import AbbreviationExpander, abbreviation_table
from clinicode.nlp.sentences import ClinicalSentencizer


def _abbrevs(text: str, use_scispacy: bool = True) -> dict[str, str]:
    nlp = spacy.blank("en")
    doc = ClinicalSentencizer()(nlp.make_doc(text))
    doc = AbbreviationExpander(nlp, use_scispacy=use_scispacy)(doc)
    return {s.text: s.label_ for s in doc.spans["abbreviations"]}


def test_curated_table_case_insensitive_and_multi_token_forms() -> None:
    got = _abbrevs("67 yo with h/o CHF, afib and DM2, s/p CABG w/ graft.", use_scispacy=False)
    assert got["CHF"] == "congestive heart failure"
    assert got["afib"] == "atrial fibrillation"
    assert got["DM2"] == "type 2 diabetes mellitus"
    assert got["s/p"] == "status post"
    assert got["h/o"] == "history of"
    assert got["w/"] == "with"


def test_exact_case_forms_do_not_match_ordinary_words() -> None:
    got = _abbrevs("He has a pad on his knee and ms is not an abbreviation here.", False)
    assert "pad" not in got and "ms" not in got


def test_ambiguous_forms_resolved_from_context() -> None:
    assert (
        _abbrevs("CT angiogram confirmed PE; started heparin.", False)["PE"] == "pulmonary embolism"
    )
    assert _abbrevs("PE tubes were placed in both ears.", False)["PE"] == "pressure equalization"
    assert (
        _abbrevs("RA on methotrexate with joint swelling.", False)["RA"] == "rheumatoid arthritis"
    )
    assert _abbrevs("Saturation 98% on RA.", False)["RA"] == "room air"
    assert (
        _abbrevs("MS with relapsing course, new lesion on MRI.", False)["MS"]
        == "multiple sclerosis"
    )
    assert (
        _abbrevs("Murmur consistent with MS of the mitral valve.", False)["MS"] == "mitral stenosis"
    )


def test_ambiguous_form_without_cues_is_left_alone() -> None:
    assert "PE" not in _abbrevs("PE today.", False)


def test_definition_in_text_wins_over_table() -> None:
    got = _abbrevs("He has chronic heart failure (CHF). The CHF is stable.")
    assert got["CHF"] == "chronic heart failure"


def test_table_entries_are_well_formed() -> None:
    table = abbreviation_table()
    assert {"CHF", "COPD", "afib", "HTN", "DM2", "CKD", "MI", "CAD", "GERD", "UTI", "s/p"} <= set(
        table
    )
    for entry in table.values():
        assert entry.senses and all(s.expansion for s in entry.senses)
