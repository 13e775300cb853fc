"""The patient's sex, age, newborn and pregnancy status as notes state them."""

from __future__ import annotations

import pytest

from clinicode.nlp.demographics import patient_demographics


@pytest.mark.parametrize(
    ("text", "sex", "age"),
    [
        ("58M with HTN, DM2.", "male", 58),
        ("34yo F c/o productive cough x4 days.", "female", 34),
        ("Mr. Smith is a 70 year old man. He denies CP.", "male", 70),
        ("HPI: 45 y/o female with LLQ pain.", "female", 45),
        ("She reports dysuria. Her UA is pending.", "female", None),
        ("6 mo old boy with otitis media.", "male", 0.5),
        ("Age: 67. Pt presents for f/u.", None, 67),
        ("Pt with COPD, stable.", None, None),
        # both sexes stated (his wife, she): left to the coder, not guessed
        ("He came with his wife; she says he fell.", None, None),
    ],
)
def test_sex_and_age(text: str, sex: str | None, age: float | None) -> None:
    who = patient_demographics(text)
    assert who.sex == sex
    assert who.age_years == pytest.approx(age) if age is not None else who.age_years is None


def test_weeks_of_gestation_are_no_age_and_say_pregnant() -> None:
    who = patient_demographics("G2P1 at 28 weeks, intrauterine pregnancy, routine prenatal visit.")
    assert who.age_years is None
    assert who.pregnant is True
    assert who.sex == "female"


def test_pregnancy_denied_and_undocumented() -> None:
    assert patient_demographics("45 y/o F, urine hCG negative.").pregnant is False
    assert patient_demographics("45 y/o F with migraine.").pregnant is None


def test_newborn() -> None:
    assert patient_demographics("3 day old newborn with jaundice.").newborn is True
    assert patient_demographics("58M with jaundice.").newborn is False


def test_patterns_are_written_for_the_lower_cased_note() -> None:
    """The note is lower-cased once and the patterns run without re.I: a capital letter in
    one (escapes aside) could never match."""
    import json
    import re
    from pathlib import Path

    import clinicode.nlp.resources as res

    cfg = json.loads((Path(res.__file__).parent / "demographics.json").read_text(encoding="utf-8"))
    for key, value in cfg.items():
        if key.startswith("_") or not isinstance(value, str | list):
            continue
        for pattern in [value] if isinstance(value, str) else value:
            letters = re.sub(r"\\.", "", pattern)
            assert letters == letters.lower(), (key, pattern)
    assert patient_demographics("G2P1 at 28 WEEKS GESTATION. 31 YO F.").pregnant is True
    assert patient_demographics("NEWBORN MALE, 2 DAYS OLD").newborn is True
