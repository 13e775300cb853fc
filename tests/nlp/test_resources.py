from __future__ import annotations

from typing import Any

from clinicode.nlp.resources import load_resource, resources_hash

KINDS = {"condition", "finding", "procedure", "medication", "other"}


def test_synonym_concepts_exist_in_the_kb(kb: Any) -> None:
    missing = []
    for phrase in load_resource("synonyms.json")["phrases"]:
        assert phrase["kind"] in KINDS, phrase
        for concept in phrase["concepts"]:
            system, _, code = concept.partition(":")
            if kb.get(code, system) is None:
                missing.append(concept)
    assert missing == []


def test_section_categories_are_snake_case_and_unique_per_literal() -> None:
    seen: dict[str, str] = {}
    for category, literals in load_resource("sections.json")["sections"].items():
        assert category.replace("_", "").isalpha() and category.islower()
        for lit in literals:
            assert lit == lit.lower(), lit
            assert seen.setdefault(lit, category) == category, f"{lit!r} in two categories"
    assert {"hpi", "past_medical_history", "family_history", "assessment_plan", "diagnoses"} <= set(
        load_resource("sections.json")["sections"]
    )


def test_resources_hash_is_stable() -> None:
    assert resources_hash() == resources_hash()
    assert len(resources_hash()) == 16


def test_lemma_keeps_the_singular_words_of_the_data() -> None:
    from clinicode.nlp.text import lemma

    # words.json not_plural: a final s that is no plural
    assert [lemma(w) for w in ("diabetes", "Pelvis", "sepsis", "mellitus")] == [
        "diabetes",
        "pelvis",
        "sepsis",
        "mellitus",
    ]
    assert [lemma(w) for w in ("kidneys", "arteries", "abscesses", "ulcers")] == [
        "kidney",
        "artery",
        "abscess",
        "ulcer",
    ]
    assert lemma("rickets") == "rickets" and lemma("rackets") == "racket"


def test_greek_and_latin_plurals_stem_as_their_singular() -> None:
    from clinicode.nlp.text import lemma, light_stem

    # words.json irregular_plurals, then -oses -> -osis for words longer than six letters
    for plural, one in (
        ("keratoses", "keratosis"),
        ("stenoses", "stenosis"),
        ("calculi", "calculus"),
        ("emboli", "embolus"),
        ("varices", "varix"),
        ("metastases", "metastasis"),
    ):
        assert light_stem(plural) == light_stem(one), plural
        assert lemma(plural) == one
    # oses_plural_exceptions and short words keep the ordinary plural rule
    assert light_stem("overdoses") == light_stem("overdose")
    assert light_stem("purposes") == light_stem("purpose")
    assert lemma("noses") == "nose"


def test_species_names_are_no_plurals() -> None:
    from clinicode.nlp.text import lemma, light_stem

    # words.json latin_genitives: "Klebsiella pneumoniae" names no pneumonia
    assert light_stem("pneumoniae") != light_stem("pneumonia")
    assert light_stem("influenzae") != light_stem("influenza")
    assert lemma("pneumoniae") == "pneumoniae"
    assert light_stem("vertebrae") == light_stem("vertebra")  # an ordinary -ae plural
