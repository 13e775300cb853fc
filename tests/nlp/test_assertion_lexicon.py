"""Classes of the published NegEx / ConText lexicons, on sentences written as US physicians write.

Each group is a class of NegEx (Chapman et al.: pseudo-negation, termination, post-negation) or
ConText (historical, hypothetical, experiencer triggers and pseudo-triggers) that the rules of
``nlp/resources/context_rules.json`` lacked or handled differently. The sentences are ours, not
from negex-dev. False alarms (a present finding read as negated) come first: they cost most.
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
        # pseudo-negation: "no change" with or without qualifiers
        ("There has been no change in her chronic back pain.", "back pain"),
        ("No suspicious change in the known left breast calcifications.", "calcifications"),
        ("No significant interval change in the right hydronephrosis.", "hydronephrosis"),
        # pseudo-negation: "without difficulty", "without incident", "without further"
        ("Patient ambulates without difficulty despite knee osteoarthritis.", "osteoarthritis"),
        ("She swallows without difficulty; dysphagia is improving.", "dysphagia"),
        ("Procedure tolerated without incident; hemorrhoids banded.", "hemorrhoids"),
        ("Without further intervention the ulcer will progress.", "ulcer"),
        # pseudo-negation: an absent effect of treatment
        ("There was no response to antibiotics for the cellulitis.", "cellulitis"),
        ("No relief of the migraine with sumatriptan.", "migraine"),
        # pseudo-negation: "not" about behaviour, control or certainty, not about a finding
        (
            "She is not certain whether the chest pain started before or after the fall.",
            "chest pain",
        ),
        ("Patient is not compliant with his diabetes regimen.", "diabetes"),
        ("He is not taking his inhaler for asthma.", "asthma"),
        ("She is not tolerating oral intake due to nausea.", "nausea"),
        ("Not responding to treatment for her pneumonia.", "pneumonia"),
        ("The patient was not aware of her hypertension.", "hypertension"),
        ("He could not walk due to the hip fracture.", "hip fracture"),
        ("Biopsy was not done; the mass is suspicious.", "mass"),
        ("No one at home can help with his dementia.", "dementia"),
        # pseudo-negation: "free" in a name
        ("CT shows pneumoperitoneum with free air under the diaphragm.", "pneumoperitoneum"),
        ("Hypothyroidism, free T4 low.", "Hypothyroidism"),
        # termination: exception words
        ("No other complaints besides the sore throat.", "sore throat"),
        ("He denies any complaints other than knee pain.", "knee pain"),
        # termination: a stated cause
        ("Metformin was discontinued due to diarrhea.", "diarrhea"),
        # termination: a verb asserting a finding, "and" before a finite verb, a semicolon
        ("Denies chest pain, endorses palpitations.", "palpitations"),
        ("Denies fever, admits to night sweats.", "night sweats"),
        ("Denies dysuria, reports hematuria.", "hematuria"),
        ("She did not take her medications and has uncontrolled hypertension.", "hypertension"),
        ("No new symptoms; pneumonia improving on ceftriaxone.", "pneumonia"),
        # termination: a comma, then a graded finding or "there is"
        ("No pneumothorax, mild bibasilar atelectasis.", "atelectasis"),
        ("Lungs with no wheezes, scattered rhonchi bilaterally.", "rhonchi"),
        ("No effusion, there is a small pneumothorax.", "pneumothorax"),
        # "decline" as a noun is a finding, not a refusal
        ("Progressive cognitive decline with memory loss.", "memory loss"),
        ("Functional decline and recurrent falls at home.", "falls"),
        ("Decline in renal function with hyperkalemia.", "hyperkalemia"),
        # a cue after the finding reads a short window back (NegEx post-negation)
        (
            "Atrial fibrillation with rapid ventricular response, PE unlikely.",
            "Atrial fibrillation",
        ),
        ("Left calf swelling and erythema for a week, DVT has been ruled out.", "swelling"),
        # "cannot rule out" is uncertain, both ways (ConText)
        ("Cannot rule out an occult fracture.", "occult fracture"),
        ("Could not rule out MI.", "MI"),
        # a comma before a finite verb opens a new clause; "not afford" is no negation
        ("Never had surgery, has gallstones.", "gallstones"),
        ("Without insurance, she could not afford insulin for her diabetes.", "diabetes"),
        # "ruled out" read forward does not reach back to the presenting complaint
        ("Admitted with chest pain, ruled out MI.", "chest pain"),
    ],
)
def test_not_negated(sentence: str, concept: str) -> None:
    assert _one(sentence, concept).negation == "Affirmed"


@pytest.mark.parametrize(
    ("sentence", "concept"),
    [
        # a pseudo-cue may not take the target's own words (NegEx tags the target first)
        ("No changes in hearing, no tinnitus.", "changes in hearing"),
        # post-negation: more examination verbs
        ("Murmurs are not heard.", "Murmurs"),
        ("Liver edge not palpable.", "Liver edge"),
        # "ruled out" forward after a clause break or its subject
        ("Admitted with chest pain, ruled out MI.", "MI"),
        ("We ruled out pulmonary embolism with CTA.", "pulmonary embolism"),
        # the new classes leave real negations alone
        ("Procedure tolerated without complications.", "complications"),
        ("Denies chest pain but reports shortness of breath.", "chest pain"),
        ("No focal consolidation, pleural effusion, or pneumothorax.", "pneumothorax"),
        ("No pneumothorax, large effusion or focal consolidation.", "focal consolidation"),
        ("Patient declined colonoscopy.", "colonoscopy"),
        ("Atrial fibrillation with rapid ventricular response, PE unlikely.", "PE"),
        ("Left calf swelling and erythema for a week, DVT has been ruled out.", "DVT"),
    ],
)
def test_negated(sentence: str, concept: str) -> None:
    assert _one(sentence, concept).negation == "Negated"


@pytest.mark.parametrize(
    ("sentence", "concept", "temporality"),
    [
        # ConText pseudo-historical: the history as the account
        ("History was limited by dementia.", "dementia", "Recent"),
        ("History obtained from his daughter given his confusion.", "confusion", "Recent"),
        # a clause break ends negation only: history still reaches the list
        ("PMH: DM; HTN; CAD.", "CAD", "Historical"),
        # ConText hypothetical: "should" opening a condition, "PRN" before the symptom
        ("Should symptoms of stroke develop, call 911.", "stroke", "Not particular"),
        ("Tylenol PRN headache.", "headache", "Not particular"),
        # prevention and immunization name a disease the patient does not have
        ("Influenza vaccine given today.", "Influenza", "Not particular"),
        ("She was vaccinated against hepatitis B.", "hepatitis B", "Not particular"),
        ("Tdap booster for tetanus given.", "tetanus", "Not particular"),
        ("Apixaban for stroke prevention.", "stroke", "Not particular"),
        ("Fall prevention reviewed.", "Fall", "Not particular"),
        # ConText: more than two weeks before is historical; less is recent
        ("Pneumonia treated 6 weeks ago.", "Pneumonia", "Historical"),
        ("Gout flare several weeks ago.", "Gout flare", "Historical"),
        ("Seen 1 week ago for sinusitis.", "sinusitis", "Recent"),
    ],
)
def test_temporality(sentence: str, concept: str, temporality: str) -> None:
    assert _one(sentence, concept).temporality == temporality


@pytest.mark.parametrize(
    ("sentence", "concept", "experiencer"),
    [
        # the patient as a parent
        (
            "She is a mother of three with postpartum depression.",
            "postpartum depression",
            "Patient",
        ),
        # the relative as the informant of the history
        ("History obtained from his daughter given his confusion.", "confusion", "Patient"),
        # a stated cause or an asserting verb leaves the relative's scope open
        ("Her father died due to colon cancer.", "colon cancer", "Family member"),
        ("His roommate has influenza.", "influenza", "Other"),
        # "but" still ends every scope: the clause after it is the patient's
        ("Family history of colon cancer but has iron deficiency anemia.", "anemia", "Patient"),
        ("Her mother had breast cancer and has diabetes.", "diabetes", "Family member"),
    ],
)
def test_experiencer(sentence: str, concept: str, experiencer: str) -> None:
    assert _one(sentence, concept).experiencer == experiencer
