"""Cue classes of ``nlp/resources/context_rules.json`` on sentences written as US physicians write.

Each case names the class it guards; the sentences are not from negex-dev. A case checks one
axis (negation, temporality or experiencer) of the target concept through
:func:`clinicode.nlp.assertion_eval.predict`, which runs the ``clinicode_assertion`` step.
"""

from __future__ import annotations

import pytest

from clinicode.nlp.assertion_eval import Prediction, predict


def _one(sentence: str, concept: str) -> Prediction:
    (pred,) = predict([(sentence, concept)])
    assert pred.concept_found
    return pred


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        # neither / nor
        ("Pt reports neither fever nor chills.", "fever"),
        ("Pt reports neither fever nor chills.", "chills"),
        # w/o as written in exam templates
        ("Abd soft, NT/ND, w/o rebound or guarding.", "guarding"),
        # a symptom that went away
        ("Her headache went away with Tylenol.", "headache"),
        ("The cellulitis has cleared up on Keflex.", "cellulitis"),
        # "was negative for": forward, not the backward "was negative"
        ("Rapid strep was negative for group A strep pharyngitis.", "pharyngitis"),
        ("LE duplex is negative for DVT bilaterally.", "DVT"),
        # a negated positive cue negates
        ("CT findings are not consistent with appendicitis.", "appendicitis"),
        ("The biopsy was not suggestive of malignancy.", "malignancy"),
        # failed to show
        ("CXR failed to demonstrate a pneumothorax.", "pneumothorax"),
        # a result stated after the test
        ("HIV 1/2 antibody nonreactive.", "HIV"),
        # a condition that has not come back
        ("Her melanoma has not recurred.", "melanoma"),
        # "no further episodes of" negates ("no further" alone is a pseudo-cue)
        ("Since admission she has had no further episodes of hematemesis.", "hematemesis"),
        # a templated answer after the item
        ("Chest pain: denies.", "Chest pain"),
        ("Illicit drug use: never.", "Illicit drug use"),
        # a finding stated before "no longer seen"
        ("The previously noted RUL nodule is no longer visualized.", "nodule"),
        # the answer must close the item: "ROS: denies nausea" still negates forward
        ("GI ROS: denies nausea or melena.", "melena"),
    ],
)
def test_negated(sentence: str, concept: str) -> None:
    assert _one(sentence, concept).negation == "Negated"


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        ("His cough has not cleared up despite azithromycin.", "cough"),
        ("She had bronchitis and went away on a cruise.", "bronchitis"),
        ("Chest pain is not relieved by rest and is associated with diaphoresis.", "diaphoresis"),
        ("He was negative for influenza but positive for RSV bronchiolitis.", "bronchiolitis"),
        ("The nodule is no longer growing but remains 8 mm.", "nodule"),
        # a tumour's receptor status is a result, not a denial
        ("IDC L breast, ER positive, PR positive, HER2 negative.", "HER2"),
        ("Triple negative breast cancer, on carboplatin.", "breast cancer"),
    ],
)
def test_not_negated(sentence: str, concept: str) -> None:
    assert _one(sentence, concept).negation == "Affirmed"


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        ("PMH: DM2, HTN, HLD, CKD 3.", "CKD"),
        ("PSH: lap chole, TAH/BSO.", "lap chole"),
        ("She was admitted for pneumonia last year.", "pneumonia"),
        ("He has had gout for many years.", "gout"),
        ("He has had hypertension for 15 years.", "hypertension"),
        ("Asthma since childhood, well controlled.", "Asthma"),
        ("EKG shows an old inferior infarct.", "infarct"),
    ],
)
def test_historical(sentence: str, concept: str) -> None:
    assert _one(sentence, concept).temporality == "Historical"


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        # a comparison with an earlier study dates the study, not the new finding
        ("Compared to the prior study, there is a new RLL infiltrate.", "infiltrate"),
        ("Since the previous exam, a small left pleural effusion has developed.", "effusion"),
        # the age is not an "old" cue
        ("A 72-year-old male with acute onset chest pain.", "chest pain"),
        ("3-week-old infant with fever.", "fever"),
        # a recent duration is not a history
        ("She has had a sore throat for 3 days.", "sore throat"),
    ],
)
def test_recent(sentence: str, concept: str) -> None:
    assert _one(sentence, concept).temporality == "Recent"


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        # instructions and teaching name what may happen
        ("Pt was instructed to go to the ED for any recurrent syncope.", "syncope"),
        ("Reviewed warning signs of preeclampsia with the patient.", "preeclampsia"),
        ("Return precautions for fever or worsening abdominal pain given.", "fever"),
    ],
)
def test_hypothetical(sentence: str, concept: str) -> None:
    assert _one(sentence, concept).temporality == "Not particular"


def test_decision_to_go_is_not_an_instruction() -> None:
    pred = _one("She decided to go to the ED for chest pain.", "chest pain")
    assert pred.temporality == "Recent"


@pytest.mark.parametrize(
    ("sentence", "concept", "experiencer"),
    [
        ("Her sister was diagnosed with ovarian cancer at 52.", "ovarian cancer", "Family member"),
        ("His father was treated for prostate cancer.", "prostate cancer", "Family member"),
        ("Mother was at bedside and states he had a seizure.", "seizure", "Patient"),
    ],
)
def test_experiencer(sentence: str, concept: str, experiencer: str) -> None:
    assert _one(sentence, concept).experiencer == experiencer


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        # a finding the examiner states normal is no abnormal finding
        ("Neuro: normal reflexes, strength 5/5.", "reflexes"),
        ("DTRs: reflexes were unremarkable bilaterally.", "reflexes"),
        ("Reflexes normal and symmetric.", "Reflexes"),
        ("Gait is intact.", "Gait"),
        ("Thyroid function within normal limits.", "Thyroid function"),
    ],
)
def test_normal_findings_are_negated(sentence: str, concept: str) -> None:
    assert _one(sentence, concept).negation == "Negated"


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        # diseases named with "normal", and a normal value beside an abnormal condition
        ("Normal pressure hydrocephalus, shunt functioning.", "hydrocephalus"),
        ("Hypertension, blood pressure now normal on lisinopril.", "Hypertension"),
        ("Type 2 diabetes, normal renal function.", "diabetes"),
    ],
)
def test_normal_beside_a_disease_does_not_negate_it(sentence: str, concept: str) -> None:
    assert _one(sentence, concept).negation == "Affirmed"
