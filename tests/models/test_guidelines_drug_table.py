"""The Table of Drugs rule (I.C.19.e.5): poisoning with its intent, adverse effect, underdosing,
the 7th character and the poisoning's place first, from hand-built ranker output."""

from __future__ import annotations

from clinicode.models.guidelines import Guidelines
from clinicode.schema import Mention
from tests.models.guidelines_helpers import build, codes_of


def _apply(
    g: Guidelines, text: str, spec: list[tuple[str, str, str, float]], drug: str
) -> list[str]:
    ranked, mentions = build(text, spec)
    for start in [i for i in range(len(text)) if text.startswith(drug, i)]:
        mentions.append(
            Mention(
                start=start,
                end=start + len(drug),
                text=drug,
                normalized=drug.lower(),
                kind="medication",
                assertion="present",
            )
        )
    mentions.sort(key=lambda m: m.start)
    res = g.apply(ranked, mentions, text=text, setting="outpatient", threshold=0.5)
    return codes_of(res)


def test_intentional_overdose_is_self_harm_poisoning_sequenced_first(drug_g: Guidelines) -> None:
    text = "Dx: intentional acetaminophen overdose (suicide attempt) with nausea."
    spec = [("R11.0", "nausea", "present", 0.9), ("T14.91XA", "suicide attempt", "present", 0.8)]
    codes = _apply(drug_g, text, spec, "acetaminophen")
    assert codes == ["T39.1X2A", "R11.0"]  # T14.91 is for an attempt with no documented injury


def test_overdose_without_intent_is_accidental(drug_g: Guidelines) -> None:
    codes = _apply(
        drug_g,
        "Overdose of oxycodone. Lethargy.",
        [("R53.83", "Lethargy", "present", 0.9)],
        "oxycodone",
    )
    assert codes[0] == "T40.2X1A" and "R53.83" in codes


def test_adverse_effect_follows_its_nature(drug_g: Guidelines) -> None:
    text = "A/P: hypokalemia, adverse effect of hydrochlorothiazide. Stop it."
    codes = _apply(drug_g, text, [("E87.6", "hypokalemia", "present", 0.9)], "hydrochlorothiazide")
    assert codes == ["E87.6", "T50.2X5A"]


def test_negated_cue_or_no_cue_adds_nothing(drug_g: Guidelines) -> None:
    for text in ("HTN on lisinopril, no side effects.", "HTN on lisinopril, well tolerated."):
        assert _apply(drug_g, text, [("I10", "HTN", "present", 0.9)], "lisinopril") == ["I10"]


def test_without_the_drug_table_the_rule_does_nothing(g: Guidelines) -> None:
    text = "Overdose of oxycodone. Lethargy."
    assert _apply(g, text, [("R53.83", "Lethargy", "present", 0.9)], "oxycodone") == ["R53.83"]
