"""The HCPCS rule coder: drugs with billing units from the dose, supplies; every code checked
against the CMS HCPCS file."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

import pytest

from clinicode.models import registry
from clinicode.models.rule_hcpcs import HCPCSCoder, load_hcpcs_rules
from tests.conftest import shared_path


@dataclass
class _Rec:
    title: str
    billable: bool = True
    description_source: str = "official"


class _HcpcsKB:
    """Every code of hcpcs_rules.yaml, as if the HCPCS file were loaded."""

    def __init__(self, ended: tuple[str, ...] = ()) -> None:
        rules = load_hcpcs_rules()
        self.recs = {e["code"]: _Rec(e["check"]) for e in rules["drugs"] + rules["supplies"]}
        for code in ended:
            self.recs[code].billable = False

    def get(self, code: str, system: str) -> _Rec | None:
        return self.recs.get(code) if system == "HCPCS" else None


def _units(text: str, kb: Any = None) -> dict[str, int | None]:
    out = HCPCSCoder(kb or _HcpcsKB()).code(text, [], setting="outpatient")
    return {s.code: s.units for s in out}


def test_every_code_is_active_in_the_cms_file_with_its_amount_per_unit() -> None:
    path = shared_path("hcpcs-2025", "HCPC2025_OCT_ANWEB.csv")
    with path.open(encoding="latin-1", newline="") as f:
        rows = {r["HCPC"].strip(): r for r in csv.DictReader(f) if r["RECID"] == "3"}
    rules = load_hcpcs_rules()
    for e in rules["drugs"] + rules["supplies"]:
        row = rows.get(e["code"])
        assert row is not None, e["code"]
        assert not row["TERM DT"].strip(), f"{e['code']} ended {row['TERM DT']}"
        assert e["check"].lower() in row["LONG DESCRIPTION"].lower(), e["code"]
    for e in rules["drugs"]:  # the amount in one billing unit is the descriptor's
        if e["unit"] != "dose":
            amount = e.get("per_text", f"{e['per']:g} {e['unit']}").lower()
            assert amount in rows[e["code"]]["LONG DESCRIPTION"].lower().replace(",", ""), e


def test_registered_and_runs_only_with_hcpcs_loaded() -> None:
    assert registry.get("rule_coder", "hcpcs").systems == ("HCPCS",)


def test_units_from_the_documented_dose() -> None:
    assert _units("Injected 40 mg Kenalog into the R knee.") == {"J3301": 4}
    assert _units("Toradol 60 mg IM given.") == {"J1885": 4}
    assert _units("Rocephin 1 g IM administered.") == {"J0696": 4}
    assert _units("Vitamin B12 1000 mcg IM given.") == {"J3420": 1}
    assert _units("Ondansetron 4 mg IV push given.") == {"J2405": 4}
    assert _units("Dilaudid 0.5 mg IV given.") == {"J1171": 5}
    assert _units("Bicillin L-A 2.4 million units IM given.") == {"J0561": 24}
    assert _units("Albuterol 2.5 mg via nebulizer given x1.") == {"J7613": 3}


def test_no_dose_is_a_query_and_not_given_is_nothing() -> None:
    [s] = HCPCSCoder(_HcpcsKB()).code("Toradol IM given.", [], setting="outpatient")
    assert s.status == "needs_query" and s.units is None and s.query is not None
    assert _units("Meds: albuterol inhaler prn, ketorolac 10 mg PO.") == {}
    assert _units("Pt declined Toradol 60 mg IM.") == {}
    assert _units("Rx: prednisone 40 mg daily x5d.") == {}


def test_local_anesthetic_epinephrine_is_not_a_drug_code() -> None:
    assert _units("Local anesthesia with 1% lidocaine with epinephrine 5 mL injected.") == {}


def test_supplies_dispensed_one_boot() -> None:
    text = "Pt fitted with a pneumatic walking boot and given crutches."
    assert _units(text) == {"L4361": 1, "E0114": 1}


def test_ended_codes_and_inpatient_give_nothing() -> None:
    assert _units("Toradol 60 mg IM given.", _HcpcsKB(ended=("J1885",))) == {}
    out = HCPCSCoder(_HcpcsKB()).code("Toradol 60 mg IM given.", [], setting="inpatient")
    assert out == []


def test_evidence_and_path() -> None:
    text = "Depo-Provera 150 mg IM administered L deltoid."
    [s] = HCPCSCoder(_HcpcsKB()).code(text, [], setting="outpatient")
    assert (s.code, s.units, s.status) == ("J1050", 150, "suggested")
    assert s.evidence[0].text == "Depo-Provera" and text[s.evidence[0].start :].startswith("Depo")
    assert any("per 1 mg" in line for line in s.explanation)


@pytest.mark.parametrize("dose,units", [("80 mg", 80), ("40mg", 40)])
def test_methylprednisolone_acetate(dose: str, units: int) -> None:
    assert _units(f"R knee injected with {dose} Depo-Medrol.") == {"J1010": units}
