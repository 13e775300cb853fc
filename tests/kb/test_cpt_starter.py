"""The CPT starter set: at least 600 codes in our own words, well formed, every family there."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from importlib import resources

from clinicode.kb import KnowledgeBase
from clinicode.kb.importers.cpt import OWN_WORDS, starter_records

FAMILIES = {  # E/M and procedure families a hospital or clinic reports every day
    "office visits": ["99202", "99205", "99211", "99215"],
    "hospital inpatient/observation": ["99221", "99223", "99231", "99233", "99238", "99239"],
    "emergency department": ["99281", "99285"],
    "consultations": ["99242", "99245", "99252", "99255"],
    "critical care": ["99291", "99292"],
    "preventive": ["99381", "99387", "99391", "99397"],
    "prolonged": ["99417", "99418"],
    "nursing facility": ["99304", "99310"],
    "home": ["99341", "99350"],
    "infusions and injections": ["96360", "96365", "96372", "96374", "96375", "96379"],
    "vaccine administration": ["90460", "90461", "90471", "90472", "90473", "90474"],
    "vaccine products": ["90686", "90715", "90677", "90750"],
    "endoscopy": ["43235", "43239", "45378", "45380", "45385"],
    "cardiology": ["93000", "93306", "93458", "92928"],
    "imaging": ["71046", "74177", "70450", "77067"],
    "labs": ["80053", "85025", "83036", "87880"],
    "pathology": ["88305"],
    "physical therapy": ["97110", "97161"],
}


def _rows() -> list[dict[str, str]]:
    data = resources.files("clinicode.kb.data").joinpath("cpt_starter.csv").read_text("utf-8")
    return list(csv.DictReader(io.StringIO(data)))


def test_at_least_600_distinct_well_formed_codes() -> None:
    rows = _rows()
    assert len(rows) >= 600
    dupes = [c for c, n in Counter(r["code"] for r in rows).items() if n > 1]
    assert dupes == []
    for r in rows:
        assert re.fullmatch(r"\d{5}", r["code"]), r
        assert r["group"].strip() and r["group"] == r["group"].strip(), r
        desc = r["description"]
        assert 8 <= len(desc) <= 140 and desc == " ".join(desc.split()), r
    descs = Counter(r["description"].lower() for r in rows)
    assert [d for d, n in descs.items() if n > 1] == []  # each code described for itself


def test_every_family_is_there_in_its_group() -> None:
    codes = {r["code"]: r["group"] for r in _rows()}
    for family, wanted in FAMILIES.items():
        missing = [c for c in wanted if c not in codes]
        assert not missing, f"{family}: {missing}"
    groups = Counter(codes.values())
    assert len(groups) >= 30 and all(n >= 1 for n in groups.values())


def test_loaded_as_own_words(kb: KnowledgeBase) -> None:
    records, _ = starter_records()
    assert kb.count("CPT") == len(records) >= 600
    for code in ("47562", "99417", "90471", "20610"):
        rec = kb.get(code, "CPT")
        assert rec is not None and rec.description_source == OWN_WORDS and rec.billable
