"""The Index-to-Tabular encoder: word keys, the Index walk, the tabular descent and the paths."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from clinicode.kb import KnowledgeBase
from clinicode.kb.importers import run_import
from clinicode.models.encoder.generator import EncoderGenerator
from clinicode.models.encoder.tabular import TabularTree
from clinicode.models.encoder.words import (
    Context,
    absent_keys,
    keys,
    keys_without_durations,
    load_encoder_data,
    mention_context,
    note_sides,
)
from clinicode.schema import Attribute, Mention

# A slice of the Alphabetic Index in the official CSV layout, as printed.
INDEX = (
    "RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n"
    '1,D,0,"Diabetes, diabetic",,,(mellitus) (sugar),E11.9\n'
    "2,D,1,type 2,,,,E11.9\n"
    "3,D,2,with,,,,\n"
    "4,D,3,chronic kidney disease,,,,E11.22\n"
    "5,D,3,ketoacidosis,,,,E11.10\n"
    "6,D,3,without coma,,,,E11.10\n"
    "7,D,1,gestational,,,,O24.419\n"
    "8,D,2,diet controlled,,,,O24.410\n"
    '9,D,0,"Disease, diseased",,,,\n'
    "10,D,1,kidney,,,,N28.9\n"
    "11,D,2,chronic,,,,N18.9\n"
    "12,D,3,stage 2,,,,N18.2\n"
    "13,D,3,stage 3b,,,,N18.32\n"
    "14,O,0,Otitis,,,,H66.9-\n"
    "15,O,1,media,,,,H66.9-\n"
    '16,O,2,"acute, subacute",,,,H66.90\n'
    '17,F,0,"Fracture, traumatic",,,,T14.8\n'
    "18,F,1,radius,,,,S52.9-\n"
    '19,F,2,distal end(s),"Fracture, radius, lower end",,,\n'
    "20,F,2,lower end,,,,S52.50-\n"
    '21,F,0,"Fracture, pathological",,,,M84.40\n'
    "22,F,1,radius,,,,M84.43-\n"
    "23,S,0,Sepsis,,,(generalized),A41.9\n"
    "24,S,1,Escherichia coli,,,(E. coli),A41.51\n"
    "25,S,0,Sequelae,,,(of),\n"
    "26,S,1,stroke NOS,,,,I69.30\n"
    "27,S,2,dysphagia,,,,I69.391\n"
    "28,D,0,Dysphagia,,,,R13.10\n"
    "29,C,0,Colitis,,,(acute) (catarrhal),K52.9\n"
    "30,C,1,Clostridium difficile,,,,\n"
    "31,C,2,not specified as recurrent,,,,A04.72\n"
    "32,C,2,recurrent,,,,A04.71\n"
    "33,C,0,Carcinoma,,,(malignant),\n"
    "34,C,1,unspecified site,,,,C80.1\n"
    "35,P,0,Positive,,,,\n"
    '36,P,1,"test, human immunodeficiency virus",,,(HIV),R75\n'
    "37,P,0,Pseudomonas,,,,\n"
    '38,P,1,"aeruginosa, as cause of disease classified elsewhere",,,,B96.5\n'
    "39,F,0,Fever,,,,R50.9\n"
    "40,F,1,O'nyong-nyong,,,(viral),A92.1\n"
    "110,F,1,five day,,,,A79.0\n"
    "111,F,1,intermittent,,Malaria,(bilious),\n"
    "112,F,2,pernicious,,,,B54\n"
    '41,U,0,"Ulcer, ulcerated, ulcerating",,,,L98.499\n'
    '42,U,1,heel,"Ulcer, lower limb",,,\n'
    '100,U,1,leg,"Ulcer, lower limb",,,\n'
    "43,U,1,lower limb,,,,L97.909\n"
    "44,U,2,heel,,,,L97.409\n"
    "101,U,2,calf,,,,L97.209\n"
    "102,U,3,with,,,,\n"
    "103,U,4,exposed fat layer,,,,L97.202\n"
    "104,U,3,right,,,,L97.219\n"
    "105,U,4,with,,,,\n"
    "106,U,5,exposed fat layer,,,,L97.212\n"
    "107,U,2,right,,,,L97.919\n"
    "108,U,3,with,,,,\n"
    "109,U,4,exposed fat layer,,,,L97.912\n"
    "45,A,0,AIDS,,,,B20\n"
    "46,C,0,Cellulitis,,,,L03.90\n"
    '47,C,1,ankle,"Cellulitis, lower limb",,,\n'
    "48,C,1,lower limb,,,,L03.11-\n"
    "49,H,0,Headache,,,,R51.9\n"
    '50,H,1,"pre-menstrual, menstrual",,,,G43.829\n'
    '51,P,0,"Poison ivy, oak, sumac or other plant dermatitis",,,,L23.7\n'
    '52,I,0,"Intubation, difficult or failed",,,,T88.4\n'
    "53,A,0,Appendicitis,,,,K37\n"
    "54,A,1,acute,,,,K35.80\n"
    "55,A,2,with,,,,\n"
    "56,A,3,generalized peritonitis,,,,K35.2\n"
    "57,S,0,Status,,,(post),\n"
    "58,S,1,mastectomy,,,(unilateral) (bilateral),Z90.1-\n"
    '59,T,0,Tumor,,"Neoplasm, unspecified behavior, by site",,\n'
    "60,T,1,carcinoid,,,,\n"
    "61,T,2,benign,,,,D3A.00\n"
    "62,T,2,malignant,,,,C7A.00\n"
    '63,F,0,"Failure, failed",,,,\n'
    '64,F,1,"respiration, respiratory",,,,J96.90\n'
    "113,M,0,Malaria,,,,B54\n"
    '114,I,0,"Infection, infected",,,,B99.9\n'
    "115,I,1,sinus,,Sinusitis,(accessory) (nasal),\n"
    '116,I,2,"infected, skin NEC",,,,L08.89\n'
    "117,S,0,Sinusitis,,,,J32.9\n"
    "118,P,0,Palsy,,,,G83.9\n"
    '119,P,1,seventh nerve,,"Palsy, facial",,\n'
    "120,P,1,facial,,,,G51.0\n"
    "121,H,0,Hemorrhage,,,,R58\n"
    "122,H,1,brain stem,,,,I61.3\n"
    "123,H,0,Hallux,,,,\n"
    "124,H,1,deformity NEC,,,,M20.5X\n"
    "125,H,1,valgus,,,(acquired),M20.1\n"
    "126,B,0,Bite(s),,,(animal) (human),\n"
    "127,B,1,forearm,,,,S51.85\n"
    "128,B,2,superficial NEC,,,,S50.87\n"
    "129,B,3,insect,,,,S50.86\n"
    "130,I,0,Insect,,,,\n"
    '131,I,1,bite,"Bite(s), by site, superficial, insect",,,\n'
    '132,S,0,Smoker,"Dependence, drug, nicotine",,,\n'
    "133,D,0,Dependence,,,(on) (syndrome),F19.20\n"
    "134,D,1,drug,,,,F19.20\n"
    "135,D,2,nicotine,,,,F17.200\n"
    "136,D,3,cigarettes,,,,F17.210\n"
    "137,V,0,Vein,,,,\n"
    '138,V,1,stasis,"Hypertension, venous (chronic)",,,\n'
    '139,H,0,"Hypertension, hypertensive",,,(accelerated) (benign),I10\n'
    "140,H,1,venous,,,(chronic),I87.309\n"
    "141,T,0,Tremor(s),,,,R25.1\n"
    "142,T,1,essential,,,(benign),G25.0\n"
    "143,T,1,specified type NEC,,,,G25.2\n"
)


# A slice of the Table of Neoplasms in the official XML layout.
NEOPLASM = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index><version>2030</version>
<indexHeading><head col="1">Neoplasm</head><head col="2">Malignant Primary</head>
<head col="3">Malignant Secondary</head><head col="4">Ca in situ</head><head col="5">Benign</head>
<head col="6">Uncertain Behavior</head><head col="7">Unspecified Behavior</head></indexHeading>
<letter><title>N</title><mainTerm><title>Neoplasm, neoplastic</title>
<cell col="2">C80.1</cell><cell col="3">C79.9</cell><cell col="4">D09.9</cell>
<cell col="5">D36.9</cell><cell col="6">D48.9</cell><cell col="7">D49.9</cell>
<term level="1"><title>breast</title><cell col="2">C50.9-</cell><cell col="3">C79.81</cell>
<cell col="4">D05.-</cell><cell col="5">D24.-</cell><cell col="6">D48.6-</cell><cell col="7">D49.3</cell>
<term level="2"><title>central portion</title><cell col="2">C50.1-</cell><cell col="3">C79.81</cell>
<cell col="4">D05.-</cell><cell col="5">D24.-</cell><cell col="6">D48.6-</cell><cell col="7">D49.3</cell></term>
</term>
<term level="1"><title>liver</title><cell col="2">C22.9</cell><cell col="3">C78.7</cell>
<cell col="4">D01.5</cell><cell col="5">D13.4</cell><cell col="6">D37.6</cell><cell col="7">D49.0</cell></term>
<term level="1"><title>lung</title><cell col="2">C34.9-</cell><cell col="3">C78.0-</cell>
<cell col="4">D02.2-</cell><cell col="5">D14.3-</cell><cell col="6">D38.1</cell><cell col="7">D49.1</cell>
<term level="2"><title>upper lobe</title><cell col="2">C34.1-</cell><cell col="3">C78.0-</cell>
<cell col="4">D02.2-</cell><cell col="5">D14.3-</cell><cell col="6">D38.1</cell><cell col="7">D49.1</cell></term>
</term>
<term level="1"><title>sigmoid</title><cell col="2">C18.7</cell><cell col="3">C78.5</cell>
<cell col="4">D01.0</cell><cell col="5">D12.5</cell><cell col="6">D37.4</cell><cell col="7">D49.0</cell></term>
</mainTerm></letter></ICD10CM.index>
"""


@pytest.fixture(scope="module")
def index_kb(kb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    d = tmp_path_factory.mktemp("enc")
    path = d / "kb.sqlite"
    shutil.copyfile(kb_path, path)
    src = d / "ICD10CM_2030_Index.csv"
    src.write_text(INDEX)
    run_import("index", src, path, version="2030-04", force=True)  # a small excerpt
    neo = d / "icd10cm_neoplasm_2030.xml"
    neo.write_text(NEOPLASM)
    run_import("neoplasm", neo, path, version="2030-04", force=True)
    return KnowledgeBase(path)


def _mention(text: str, phrase: str, normalized: str | None = None, **kw: Any) -> Mention:
    start = text.index(phrase)
    ends = [i for i in (text.find(".", start),) if i >= 0]
    return Mention(
        start=start,
        end=start + len(phrase),
        text=phrase,
        normalized=normalized or phrase.lower(),
        kind="condition",
        sentence_start=0,
        sentence_end=(ends[0] + 1) if ends else len(text),
        **kw,
    )


def _codes(gen: EncoderGenerator, text: str, mentions: list[Mention]) -> dict[str, list[str]]:
    return {c.code: c.paths for c in gen.generate(text, mentions)}


def test_keys_let_inflections_meet() -> None:
    assert keys("diabetes") == keys("diabetic")
    assert keys("calculous") == keys("calculus")
    assert keys("hypertension") == keys("hypertensive")
    assert keys("kidney") == keys("kidneys")
    assert keys("hypertension") != keys("hypertrophy")
    assert keys("pneumonia") != keys("pneumonitis")
    assert keys("type II") == keys("type 2")
    assert keys("the left ear") == ["left", "ear"]


def test_an_organ_adjective_in_the_mentions_phrase_states_the_organ() -> None:
    weights = load_encoder_data()["weights"]
    text = "A 1.5-cm gastric polyp, removed."
    ctx = mention_context(text, _mention(text, "polyp"), [], {}, weights)
    assert ctx.local[keys("stomach")[0]] == weights["sentence"]  # Polyp, stomach K31.7
    # another mention's words are not the phrase's: COPD's "pulmonary" is no lung of the
    # pneumonia's (Pneumonia, with, lung abscess)
    text = "COPD with LLL pneumonia."
    copd = _mention(text, "COPD", "chronic obstructive pulmonary disease")
    pna = _mention(text, "pneumonia")
    assert keys("lung")[0] not in mention_context(text, pna, [copd], {}, weights).local
    assert keys("lung")[0] in mention_context(text, copd, [pna], {}, weights).local


def test_index_walk_follows_documented_subterms_and_with(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "DM2 and CKD stage 3b."
    dm = _mention(text, "DM2", "type 2 diabetes mellitus")
    ckd = _mention(text, "CKD stage 3b", "chronic kidney disease stage 3b")
    got = _codes(gen, text, [dm, ckd])
    # I.A.15: "with" links diabetes and CKD though the note states them apart
    assert got["E11.22"] == [
        "Index: Diabetes, diabetic, type 2, with, chronic kidney disease -> E11.22"
    ]
    assert got["N18.32"][0].startswith("Index: Disease, diseased, kidney, chronic, stage 3b")
    assert "N18.2" not in got  # the "2" of "type 2" is not a stage


def test_negated_linked_condition_and_without_subterms_are_not_taken(
    index_kb: KnowledgeBase,
) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Type 2 diabetes. No chronic kidney disease."
    dm = _mention(text, "Type 2 diabetes")
    ckd = _mention(text, "chronic kidney disease", assertion="negated")
    ckd = ckd.model_copy(update={"sentence_start": 17, "sentence_end": len(text)})
    got = _codes(gen, text, [dm, ckd])
    assert "E11.22" not in got and "E11.9" in got
    text = "Type 2 diabetes without coma."
    assert "E11.10" not in _codes(gen, text, [_mention(text, "Type 2 diabetes")])


def test_an_entry_without_a_code_takes_its_not_specified_subterm(
    index_kb: KnowledgeBase,
) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "C. difficile colitis, toxin positive."
    cdiff = _mention(text, "C. difficile colitis", "clostridium difficile colitis")
    got = _codes(gen, text, [cdiff])
    assert got["A04.72"] == [
        "Index: Colitis, Clostridium difficile, not specified as recurrent -> A04.72"
    ]
    assert "K52.9" not in got  # not the main term's default
    text = "Recurrent C. difficile colitis."
    again = _mention(
        text, "Recurrent C. difficile colitis", "recurrent clostridium difficile colitis"
    )
    assert "A04.71" in _codes(gen, text, [again])
    # "unspecified site" is no default: the site may be documented elsewhere (Neoplasm Table)
    text = "Bladder carcinoma."
    assert "C80.1" not in _codes(gen, text, [_mention(text, "Bladder carcinoma")])


def test_a_subterm_qualifier_of_several_words_must_be_stated(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    # "Positive, test, human immunodeficiency virus": an HIV test, not any positive test
    text = "Influenza A, rapid test positive."
    assert "R75" not in _codes(gen, text, [_mention(text, "rapid test positive")])
    text = "Human immunodeficiency virus test positive."
    hiv = _mention(text, "Human immunodeficiency virus test positive")
    assert _codes(gen, text, [hiv])["R75"] == [
        "Index: Positive, test, human immunodeficiency virus -> R75"
    ]
    # ... but an Index instruction is no qualifier the note states
    text = "Sputum grew Pseudomonas aeruginosa."
    assert "B96.5" in _codes(gen, text, [_mention(text, "Pseudomonas aeruginosa")])


def test_other_forms_of_a_main_term_and_a_see_reference_read_as_a_coder_does(
    index_kb: KnowledgeBase,
) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Ulcer of heel."  # "Ulcer, ulcerated": "ulcerated" is the same word, no qualifier
    got = _codes(gen, text, [_mention(text, "Ulcer of heel")])
    # "heel - see Ulcer, lower limb": heel is looked up again under lower limb
    # the reference's target is shown in brackets: the note need not state "lower limb"
    assert got["L97.409"][0].startswith("Index: Ulcer, ulcerated, ulcerating, heel, [lower limb]")
    assert "L97.909" not in got


def test_a_letter_states_no_part_of_a_subterm(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Subjective fevers, O: T 38.2."  # the "O:" of a SOAP note is no "O'nyong-nyong"
    got = _codes(gen, text, [_mention(text, "fevers")])
    assert "A92.1" not in got and "R50.9" in got


def test_encoder_word_lists_hold_words_only() -> None:
    from clinicode.models.encoder.words import load_encoder_data

    data = load_encoder_data()
    for name in ("stopwords", "suffixes", "weak_main_terms", "optional_subterm_parts"):
        # YAML reads a bare on/no/yes as a boolean: a stop word "on" was True
        assert all(isinstance(w, str) for w in data[name]), name
    assert "on" in data["stopwords"]


def test_tabular_descent_states_laterality_and_defaults(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Acute otitis media, left ear."
    om = _mention(text, "Acute otitis media", attributes=[])
    got = _codes(gen, text, [om])
    assert list(got) == ["H66.92"]
    assert got["H66.92"] == [
        "Index: Otitis, media, acute, subacute -> H66.90; Tabular: H66.90 -> H66.92 (states left, ear)"
    ]
    text = "Closed fracture of left distal radius."
    fx = _mention(text, "fracture of left distal radius")
    (code,) = _codes(gen, text, [fx])
    assert code == "S52.502A"  # see-reference followed; left; initial encounter by default
    text = "Sepsis due to E. coli."
    assert "A41.51" in _codes(gen, text, [_mention(text, "Sepsis due to E. coli")])


def test_a_residual_cue_leads_to_sequelae(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Dysphagia as a residual of a stroke in 2023."
    got = _codes(gen, text, [_mention(text, "Dysphagia")])
    assert got["I69.391"] == ["Index: Sequelae, stroke NOS, dysphagia -> I69.391"]
    assert "R13.10" in got
    text = "Dysphagia, no residual deficits from the stroke."
    assert "I69.391" not in _codes(gen, text, [_mention(text, "Dysphagia")])


def test_a_past_procedure_leads_to_its_status(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Breast cancer, s/p left mastectomy 3 months ago."
    mx = _mention(text, "mastectomy", assertion="historical")
    mx = mx.model_copy(update={"kind": "procedure"})
    got = _codes(gen, text, [mx])
    assert got == {
        "Z90.12": ["Index: Status, mastectomy -> Z90.1; Tabular: Z90.1 -> Z90.12 (states left)"]
    }
    text = "L mastectomy planned next month."  # no status without the procedure done
    planned = _mention(text, "mastectomy").model_copy(update={"kind": "procedure"})
    assert _codes(gen, text, [planned]) == {}
    # "Status" is no main term a mention starts from
    text = "Status unchanged."
    assert _codes(gen, text, [_mention(text, "Status")]) == {}


def test_a_neoplasm_is_coded_from_the_table_by_its_stated_site(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Squamous cell carcinoma of the left upper lobe of lung."
    got = _codes(gen, text, [_mention(text, "carcinoma of the left upper lobe of lung")])
    assert got["C34.12"] == [
        "Index: [Neoplasm, neoplastic], lung, upper lobe (see Neoplasm, by site, malignant "
        "primary) -> C34.1; Tabular: C34.1 -> C34.12 (states left)"
    ]
    # the metastasis's site is the one its own phrase names, not the primary's
    text = "Adenocarcinoma of the sigmoid colon with metastases to the liver."
    got = _codes(gen, text, [_mention(text, "metastases")])
    assert "C78.7" in got and "C78.5" not in got
    text = "Metastatic carcinoma to the liver."  # the behaviour written before the mention
    assert "C78.7" in _codes(gen, text, [_mention(text, "carcinoma to the liver")])
    # a wrapped line does not end the phrase; the side written as a letter and the patient's
    # sex ("66M") choose the Tabular children
    text = "66M, ductal carcinoma of the central portion of the\nL breast. On tamoxifen."
    got = _codes(gen, text, [_mention(text, "carcinoma")])
    assert got["C50.122"][0].endswith("C50.1 -> C50.12 (states mal) -> C50.122 (states left)")
    # a tumor the note says no more of is of unspecified behavior, its site written before it;
    # an Index subterm the note states ("Tumor, carcinoid") leaves the table's guess out
    text = "Recurrent liver tumors."
    got = _codes(gen, text, [_mention(text, "tumors")])
    assert got["D49.0"] == [
        "Index: [Neoplasm, neoplastic], liver (see Neoplasm, by site, unspecified behavior)"
        " -> D49.0"
    ]
    text = "Carcinoid tumor of the liver."
    assert "D49.0" not in _codes(gen, text, [_mention(text, "Carcinoid tumor")])
    text = "Carcinoma, site not yet known."  # no stated site, no walk of the table
    assert not any(
        c.startswith(("C22", "C34", "C78"))
        for c in _codes(gen, text, [_mention(text, "Carcinoma")])
    )


def test_tabular_tree_without_index(kb: KnowledgeBase) -> None:
    tab = TabularTree.of(kb)
    ctx = Context(local={k: 2.0 for k in keys("primary osteoarthritis right knee")})
    code, steps = tab.descend("M17", ctx)
    assert code == "M17.11"  # never M17.0 (bilateral) beside a stated "right"
    assert [s.code for s in steps] == ["M17.1", "M17.11"]
    code, steps = tab.descend("A41", Context(local={k: 2.0 for k in keys("sepsis")}))
    assert code == "A41.9" and steps[-1].why.startswith("the note does not say")
    # one word of a long title does not state it: "brain" is not "with death due to brain
    # injury prior to regaining consciousness" (S06.5X7)
    ctx = Context(local={k: 2.0 for k in keys("traumatic brain injury, subdural hematoma")})
    code, steps = tab.descend("S06.5X", ctx)
    assert code == "S06.5X9A" and steps[0].why.startswith("the note does not say")
    # "without foreign body of left forearm" says the foreign body is absent, not the forearm:
    # the 7th character is added for a note that names the site
    ctx = Context(local={k: 2.0 for k in keys("laceration of left forearm")})
    assert tab.descend("S51.812", ctx)[0] == "S51.812A"
    # the words the Index path was followed by do not move its unspecified code to a sibling:
    # "Varix, leg, right, with, ulcer" I83.019, not I83.018 "other part of lower leg" by "leg"
    ctx = Context(local={k: 2.0 for k in keys("varicose veins of the right leg with ulcer")})
    assert tab.descend("I83.019", ctx)[0] == "I83.018"
    settled = frozenset(keys("varix leg right ulcer"))
    assert tab.descend("I83.019", ctx, settled=settled)[0] == "I83.019"
    # the child "not specified as ..." is the default, as the Index's is (A04.7 is no code)
    ctx = Context(local={k: 2.0 for k in keys("C. difficile colitis")})
    assert tab.descend("A04.7", ctx)[0] == "A04.72"
    ctx = Context(local={k: 2.0 for k in keys("recurrent C. difficile colitis")})
    assert tab.descend("A04.7", ctx)[0] == "A04.71"


def test_one_reading_of_what_a_title_says_is_absent() -> None:
    from clinicode.models.guidelines.titles import title_absent

    title = "Laceration without foreign body of lip, initial encounter"
    assert absent_keys(title) == frozenset(keys("foreign body"))
    title = "Migraine without aura, not intractable, without status migrainosus"
    assert absent_keys(title) == frozenset(keys("aura intractable status migrainosus"))
    assert absent_keys("Concussion with loss of consciousness") == frozenset()
    # the guidelines read the same, less what the title also needs
    title = "Right tubal pregnancy without intrauterine pregnancy"
    assert absent_keys(title) == frozenset(keys("intrauterine pregnancy"))
    assert title_absent(title) == frozenset(keys("intrauterine"))


def test_generator_descends_seed_categories_without_index(kb: KnowledgeBase) -> None:
    from clinicode.models.types import Candidate

    gen = EncoderGenerator().fit(kb)
    text = "Primary OA right knee."
    m = _mention(
        text,
        "Primary OA right knee",
        "primary osteoarthritis right knee",
        attributes=[Attribute(name="laterality", value="right", start=11, end=16, text="right")],
    )
    seed = Candidate(system="ICD-10-CM", code="M17.9", mention_ids=[0])
    got = {c.code: c for c in gen.generate(text, [m], seeds=[seed])}
    assert got["M17.11"].features["enc_tabular"] == 1.0
    assert got["M17.11"].paths[0].startswith("Tabular: M17 Osteoarthritis of knee -> M17.1")
    # each mention of a seed is descended from: the second states what the first does not
    text = "C. difficile colitis, 3rd episode. Dx: recurrent C. diff colitis."
    first = _mention(text, "C. difficile colitis", "clostridium difficile colitis")
    second = _mention(text, "recurrent C. diff colitis", "recurrent clostridium difficile colitis")
    second.sentence_start, second.sentence_end = text.index("Dx"), len(text)
    seed = Candidate(system="ICD-10-CM", code="A04.7", mention_ids=[0, 1])
    got = {c.code: c for c in gen.generate(text, [first, second], seeds=[seed])}
    assert "A04.71" in got


def test_encoder_saves_its_settings_and_needs_a_kb(tmp_path: Path, kb: KnowledgeBase) -> None:
    from clinicode.models.candidates import CandidatesError

    gen = EncoderGenerator(max_seeds=7).fit(kb)
    gen.save(tmp_path)
    again = EncoderGenerator.load(tmp_path, kb=kb)
    assert again.max_seeds == 7
    with pytest.raises(CandidatesError, match="KB"):
        EncoderGenerator.load(tmp_path)


def test_a_subterm_is_not_stated_by_a_stem_cut_to_three_letters(index_kb: KnowledgeBase) -> None:
    # "presented" and "pre-menstrual" share the key "pre"
    assert keys("presented")[0] == keys("pre-menstrual")[0]
    gen = EncoderGenerator().fit(index_kb)
    text = "A 30-year-old woman presented with headache."
    got = _codes(gen, text, [_mention(text, "headache")])
    assert "R51.9" in got and "G43.829" not in got


def test_the_tabular_is_verified_for_the_index_entry_followed(index_kb: KnowledgeBase) -> None:
    # "Cellulitis, ankle - see Cellulitis, lower limb" L03.11-: "right" alone would also
    # fit L03.111 (right axilla); the path states the lower limb
    gen = EncoderGenerator().fit(index_kb)
    text = "Right ankle cellulitis, on Keflex."
    got = _codes(gen, text, [_mention(text, "Right ankle cellulitis")])
    assert "L03.115" in got and "L03.111" not in got
    assert any("lower limb" in p and "L03.115" in p for p in got["L03.115"])


def test_an_acronym_spelled_like_a_word_is_named_only_in_capitals(
    index_kb: KnowledgeBase,
) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "She wears bilateral hearing aids."
    assert "B20" not in _codes(gen, text, [_mention(text, "hearing aids")])
    text = "Hx of AIDS, on ART."
    assert "B20" in _codes(gen, text, [_mention(text, "AIDS")])


def test_words_cut_to_one_short_stem_do_not_name_a_main_term(index_kb: KnowledgeBase) -> None:
    from clinicode.models.encoder.words import spelled_alike

    # the suffix list cuts "canal", "canities" to one three-letter stem
    assert keys("canal") == keys("canities")
    assert not spelled_alike("canal", "canities") and not spelled_alike("care", "caries")
    assert spelled_alike("diabetic", "diabetes") and spelled_alike("ulcer", "ulcerated")
    gen = EncoderGenerator().fit(index_kb)
    text = "The canal was irrigated."
    assert not any(c.startswith("L67") for c in _codes(gen, text, [_mention(text, "canal")]))
    text = "Diabetic foot ulcer."
    assert _codes(gen, text, [_mention(text, "Diabetic foot ulcer")])


def test_the_walk_takes_the_path_that_states_most_of_the_note(index_kb: KnowledgeBase) -> None:
    # "right, with exposed fat layer" sits under lower limb and again under its calf: the
    # path through the calf states one word more
    gen = EncoderGenerator().fit(index_kb)
    text = "Ulcer of the leg at the posterior right calf, fat layer exposed."
    got = _codes(gen, text, [_mention(text, "Ulcer of the leg")])
    assert "L97.212" in got and "L97.912" not in got


def test_a_main_term_listing_alternatives_needs_one_of_them(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Poison ivy on both forearms."
    assert "L23.7" in _codes(gen, text, [_mention(text, "Poison ivy")])
    text = "Difficult intubation noted by anesthesia."
    assert "T88.4XXA" in _codes(gen, text, [_mention(text, "Difficult intubation")])
    text = "Intubation was uneventful."  # the one-word main term needs a listed qualifier
    assert not _codes(gen, text, [_mention(text, "Intubation")])


def test_another_form_of_a_subterms_word_states_it(index_kb: KnowledgeBase) -> None:
    # "respiration, respiratory": the keys of the two forms differ ("respir", "respirator")
    gen = EncoderGenerator().fit(index_kb)
    text = "He has respiratory failure."
    got = _codes(gen, text, [_mention(text, "respiratory failure")])
    assert got["J96.90"] == ["Index: Failure, failed, respiration, respiratory -> J96.90"]


def test_without_is_the_default_and_never_what_the_note_states(index_kb: KnowledgeBase) -> None:
    # K35.2: K35.20 "without abscess" / K35.21 "with abscess"; under K35.20 the note's
    # "perforated" chooses K35.201, silence the "unspecified as to perforation" K35.209
    gen = EncoderGenerator().fit(index_kb)
    text = "Perforated acute appendicitis with generalized peritonitis."
    got = _codes(gen, text, [_mention(text, "Perforated acute appendicitis")])
    assert "K35.201" in got and "K35.200" not in got and "K35.209" not in got
    text = "Acute appendicitis with generalized peritonitis."
    got = _codes(gen, text, [_mention(text, "Acute appendicitis")])
    assert "K35.209" in got and "K35.201" not in got


def test_durations_are_no_words_of_the_condition(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Fever for five days."  # how long it lasted, not "Fever, five day" (trench fever)
    got = _codes(gen, text, [_mention(text, "Fever for five days")])
    assert "A79.0" not in got and "R50.9" in got
    text = "Five day fever."
    assert "A79.0" in _codes(gen, text, [_mention(text, "Five day fever")])
    assert keys_without_durations("cough x 3 wks, fever 2 days ago") == ["cough", "fever"]
    assert keys_without_durations("IUP at 28 weeks") == keys("IUP at 28 weeks")


def test_a_see_also_is_followed_under_its_own_main_term_only(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Right seventh nerve palsy."  # "see also Palsy, facial": not Palsy's G83.9
    got = _codes(gen, text, [_mention(text, "seventh nerve palsy")])
    assert list(got) == ["G51.0"]
    assert got["G51.0"] == ["Index: Palsy, seventh nerve, [facial] (see Palsy, facial) -> G51.0"]
    text = "Intermittent fevers."  # "see also Malaria" names no malaria
    got = _codes(gen, text, [_mention(text, "Intermittent fevers")])
    assert "B54" not in got and "R50.9" in got


def test_a_subterm_part_marked_nec_and_the_second_word_of_two_must_be_stated(
    index_kb: KnowledgeBase,
) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Sinus infection."  # "infected, skin NEC" is a sinus of the skin
    assert "L08.89" not in _codes(gen, text, [_mention(text, "Sinus infection")])
    text = "Infected draining sinus of the skin."
    assert "L08.89" in _codes(gen, text, [_mention(text, "Infected draining sinus")])
    text = "Cerebral hemorrhage."  # "brain" (of "cerebral") states no "brain stem"
    got = _codes(gen, text, [_mention(text, "Cerebral hemorrhage")])
    assert "I61.3" not in got and "R58" in got
    text = "Brain stem hemorrhage."
    assert "I61.3" in _codes(gen, text, [_mention(text, "Brain stem hemorrhage")])
    text = "Closed fracture of left distal radius."  # "end" of "distal end(s)" need not be
    assert "S52.502A" in _codes(gen, text, [_mention(text, "fracture of left distal radius")])


def test_irregular_forms_and_nec_subterms_read_as_a_coder_does(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    assert keys("bitten") == keys("bite") and keys("abductovalgus") == keys("valgus")
    text = "9 yo bitten on the left forearm by a dog."  # "bitten": Bite(s)
    assert list(_codes(gen, text, [_mention(text, "bitten on the left forearm")])) == ["S51.852A"]
    # "deformity NEC" is for a deformity no other subterm names: "valgus" names it
    text = "Right hallux abductovalgus deformity."
    got = _codes(gen, text, [_mention(text, "Right hallux abductovalgus deformity")])
    assert list(got) == ["M20.11"]
    text = "Right hallux deformity."
    assert "M20.5X1" in _codes(gen, text, [_mention(text, "Right hallux deformity")])
    # "Insect, bite - see Bite(s), by site, superficial, insect": the site, then the rest
    text = "Insect bite on the left forearm."
    got = _codes(gen, text, [_mention(text, "Insect bite on the left forearm")])
    assert list(got) == ["S50.862A"]


def test_a_reference_is_followed_below_its_target_and_read_without_its_modifiers(
    index_kb: KnowledgeBase,
) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "He is a smoker, 2 packs of cigarettes a day."  # "Smoker - see Dependence, drug,
    got = _codes(gen, text, [_mention(text, "smoker")])  # nicotine": then its "cigarettes"
    assert list(got) == ["F17.210"]
    assert got["F17.210"] == [
        "Index: Smoker, nicotine, cigarettes (see Dependence, drug, nicotine) -> F17.210"
    ]
    text = "Social history: smoker."
    assert list(_codes(gen, text, [_mention(text, "smoker")])) == ["F17.200"]
    # "see Hypertension, venous (chronic)": the "(chronic)" is a nonessential modifier of
    # *Hypertension, venous*, not part of its name (was read as Hypertension, I10)
    text = "Vein stasis."
    got = _codes(gen, text, [_mention(text, "Vein stasis")])
    assert "I87.309" in got and "I10" not in got


def test_the_one_side_a_note_states_for_a_site_is_read_in_every_sentence_naming_it(
    index_kb: KnowledgeBase,
) -> None:
    text = "EXAM: MRI RIGHT ANKLE. Rt ankle pain. Right heart cath. L knee and R knee."
    assert note_sides(text) == {keys("ankle")[0]: "right"}  # the knee has both sides
    assert note_sides("Bilateral ankle edema, worse in the right ankle.") == {}
    gen = EncoderGenerator().fit(index_kb)
    text = "PROCEDURE: I&D, right ankle. FINDINGS: Cellulitis of the ankle."
    got = _codes(gen, text, [_mention(text, "Cellulitis of the ankle")])
    assert "L03.115" in got
    text = "FINDINGS: Cellulitis of the ankle. Old left ankle sprain; right ankle normal."
    got = _codes(gen, text, [_mention(text, "Cellulitis of the ankle")])
    assert "L03.115" not in got and "L03.116" not in got


def test_a_type_no_subterm_names_is_the_specified_nec_subterm(index_kb: KnowledgeBase) -> None:
    gen = EncoderGenerator().fit(index_kb)
    text = "Dystonic tremor, refractory to medical therapy."  # no "dystonic" subterm
    assert list(_codes(gen, text, [_mention(text, "Dystonic tremor")])) == ["G25.2"]
    text = "Essential tremor."
    assert list(_codes(gen, text, [_mention(text, "Essential tremor")])) == ["G25.0"]
    for text in ("Mild tremor.", "Tremor."):  # a severity is no type; nothing stated
        assert list(_codes(gen, text, [_mention(text, text[:-1])])) == ["R25.1"]
