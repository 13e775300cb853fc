from __future__ import annotations

import pytest

from clinicode.kb.icd10cm import parse_tabular, with_seventh

# Official count of billable ICD-10-CM codes in the FY2026 release (CMS/NCHS code file).
FY2026_BILLABLE = 74_719


def test_billable_count_matches_official(kb) -> None:
    assert kb.count("ICD-10-CM", billable_only=True) == FY2026_BILLABLE
    assert kb.versions()["ICD-10-CM"] == "FY2026"


def test_structure_counts(kb) -> None:
    kinds = {}
    for rec in kb.iter_codes("ICD-10-CM"):
        kinds[rec.kind] = kinds.get(rec.kind, 0) + 1
    assert kinds["chapter"] == 22
    assert kinds["block"] > 280
    assert kinds["category"] > 1900


def test_use_additional_note_on_e11_22(kb) -> None:
    rec = kb.get("E11.22", "ICD-10-CM")
    assert rec is not None and rec.billable
    assert (
        "code to identify stage of chronic kidney disease (N18.1-N18.6)"
        in rec.notes["use_additional"]
    )


def test_i10_excludes(kb) -> None:
    rec = kb.get("I10", "ICD-10-CM")
    assert rec is not None and rec.billable and rec.kind == "category"
    assert any("O10-O11" in n for n in rec.notes["excludes1"])
    assert any("I60-I69" in n for n in rec.notes["excludes2"])
    assert (
        "hypertension (arterial) (benign) (essential) (malignant) (primary) (systemic)"
        in rec.notes["includes"]
    )


@pytest.mark.parametrize(
    ("code", "title_end"),
    [
        ("S72.302A", "initial encounter for closed fracture"),
        ("T07.XXXA", "initial encounter"),
        ("S06.0X0A", "initial encounter"),
        ("O36.5931", "fetus 1"),
    ],
)
def test_seventh_character_codes(kb, code: str, title_end: str) -> None:
    rec = kb.get(code, "ICD-10-CM")
    assert rec is not None, code
    assert rec.billable and rec.title.endswith(title_end)


def test_seventh_character_parent_not_billable(kb) -> None:
    rec = kb.get("S72.302", "ICD-10-CM")
    assert rec is not None and not rec.billable
    assert [c.code for c in kb.children("S72.302", "ICD-10-CM")][:3] == [
        "S72.302A",
        "S72.302B",
        "S72.302C",
    ]


def test_s06_death_codes_exclude_d_and_s(kb) -> None:
    assert kb.get("S06.327A", "ICD-10-CM") is not None
    assert kb.get("S06.327S", "ICD-10-CM") is None
    assert kb.get("S06.326S", "ICD-10-CM") is not None


def test_with_seventh_pads_placeholder() -> None:
    assert with_seventh("T81.4", "A") == "T81.4XXA"
    assert with_seventh("T07", "A") == "T07.XXXA"
    assert with_seventh("S72.302", "A") == "S72.302A"


def test_code_spellings_and_hierarchy(kb) -> None:
    assert kb.get("e1122").code == "E11.22"
    assert [a.code for a in kb.ancestors("E11.22", "ICD-10-CM")] == [
        "E11.2",
        "E11",
        "E08-E13",
        "E00-E89",
    ]
    assert not kb.get("E11", "ICD-10-CM").billable
    assert kb.get("B20", "ICD-10-CM").billable  # a category with no subdivisions


def test_malformed_tabular_rejected(tmp_path) -> None:
    from clinicode.kb.icd10cm import TabularError

    bad = tmp_path / "icd10c-tabular-April-1-2026.xml"
    bad.write_text("<ICD10CM.tabular><chapter><name>1</name>")
    with pytest.raises(TabularError):
        parse_tabular(bad)
    other = tmp_path / "x.xml"
    other.write_text("<foo/>")
    with pytest.raises(TabularError, match="not an ICD-10-CM tabular"):
        parse_tabular(other)
