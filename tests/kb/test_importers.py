"""Importers of the official code-set files, on the real files in ../shared/data (skipped where
absent) and on small damaged files written here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from clinicode.kb import KnowledgeBase, build_icd10cm, open_kb
from clinicode.kb.importers import IMPORTERS, ImportFileError, run_import
from clinicode.kb.importers.cpt import STARTER_VERSION
from tests.conftest import SHARED_DATA, shared_path

INDEX_CSV = ("icd10cm-index-2025", "ICD10CM_2025_Index.csv")
FY2017_ZIP = ("icd10cm-index-fy2017-xml", "ICD10CM_FY2017_Full_XML.zip")
TABLES = "icd10cm-tables-2025"
PCS_2026 = ("pcs", "icd10pcs_order_2026.txt")
HCPCS_CSV = ("hcpcs-2025", "HCPC2025_OCT_ANWEB.csv")
HCPCS_XLSX = ("hcpcs-2025", "HCPC2025_OCT_ANWEB.xlsx")

# Official counts: CMS FY2026 ICD-10-PCS order file; CMS HCPCS October 2025 ANWEB file.
PCS_FY2026_VALID = 79_115
HCPCS_2025_OCT_CODES = 8_463
HCPCS_2025_OCT_MODIFIERS = 383


def _copy_kb(src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / "kb.sqlite"
    shutil.copyfile(src, dst)
    return dst


@pytest.fixture(scope="module")
def full(kb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """ICD-10-CM + CPT starter, then the 2025 index CSV, the 2025 tables, PCS and HCPCS."""
    if not SHARED_DATA.exists():
        pytest.skip(f"needs {SHARED_DATA}")
    path = _copy_kb(kb_path, tmp_path_factory.mktemp("full"))
    reports = {
        "index": run_import("index", shared_path(*INDEX_CSV), path),
        "neoplasm": run_import(
            "neoplasm", shared_path(TABLES, "icd-10-cm-neoplasm-2025.xml"), path
        ),
        "drug": run_import("drug", shared_path(TABLES, "icd-10-cm-drug-2025.xml"), path),
        "eindex": run_import("eindex", shared_path(TABLES, "icd-10-cm-eindex-2025.xml"), path),
        "pcs": run_import("pcs", shared_path(*PCS_2026), path),
        "hcpcs": run_import("hcpcs", shared_path(*HCPCS_CSV), path),
    }
    return {"path": path, "kb": KnowledgeBase(path), "reports": reports}


@pytest.fixture()
def scratch(kb_path: Path, tmp_path: Path) -> Path:
    """A writable copy of the session KB (ICD-10-CM + CPT starter) for one test."""
    return _copy_kb(kb_path, tmp_path)


# -- the real files ----------------------------------------------------------------------------
def test_importer_kinds() -> None:
    assert set(IMPORTERS) == {
        "index",
        "neoplasm",
        "drug",
        "eindex",
        "pcs",
        "pcs-tables",
        "hcpcs",
        "cpt",
    }


def test_index_csv_report_and_version(full: dict[str, Any]) -> None:
    rep = full["reports"]["index"]
    assert rep["system"] == "ICD-10-CM" and rep["kind"] == "index"
    assert rep["version"] == "2025 (CSV, lossy)"
    counts = rep["counts"]
    assert counts["entries"] == 81_024  # one per CSV row
    assert counts["coded"] > 60_000 and counts["terms"] > 60_000
    assert json.loads(json.dumps(rep)) == rep  # JSON-able
    kb = full["kb"]
    assert kb.system_info("ICD-10-CM").extra["index"] == "2025 (CSV, lossy)"
    assert kb.index_count("index") == 81_024


def test_e11_22_reachable_from_index_path(full: dict[str, Any]) -> None:
    kb = full["kb"]
    entry = kb.index_lookup(["Diabetes", "type 2", "with", "chronic kidney disease"])
    assert entry is not None and entry.resolved == "E11.22" and entry.code == "E11.22"
    texts = {(t.text, t.source) for t in kb.terms_for("E11.22", "ICD-10-CM")}
    assert ("Diabetes, type 2, with, chronic kidney disease", "index") in texts
    # the "with" subterms the ranking model can walk
    with_entry = kb.index_lookup(["Diabetes", "type 2", "with"])
    subs = {e.term: e.resolved for e in kb.index_children(with_entry.id)}
    assert subs["chronic kidney disease"] == "E11.22"
    assert len(subs) > 20
    path = [e.term for e in kb.index_path(entry.id)]
    assert path == ["Diabetes, diabetic", "type 2", "with", "chronic kidney disease"]
    assert any(e.id == entry.id for e in kb.index_entries_for_code("E11.22"))


def test_nonessential_modifiers_kept(full: dict[str, Any]) -> None:
    kb = full["kb"]
    main = kb.index_lookup(["Hypertension"])
    assert main is not None and main.resolved == "I10" and "(essential)" in main.nonessential
    assert any(
        t.source == "index" and t.text.startswith("Hypertension (accelerated)")
        for t in kb.terms_for("I10", "ICD-10-CM")
    )


def test_neoplasm_table(full: dict[str, Any]) -> None:
    kb = full["kb"]
    rep = full["reports"]["neoplasm"]
    assert rep["version"] == "FY2025 (XML)" and rep["counts"]["terms"] > 5_000
    lung = kb.index_lookup(["Neoplasm", "lung"], source="neoplasm")
    assert lung.cells["malignant primary"] == "C34.9-"
    # an incomplete code (C34.9-) maps to its subcategory record, whose children are billable
    terms = {t.text for t in kb.terms_for("C34.9", "ICD-10-CM") if t.source == "neoplasm"}
    assert "Neoplasm, lung, malignant primary" in terms
    assert "C34.90" in [c.code for c in kb.children("C34.9", "ICD-10-CM")]
    assert "Neoplasm, lung, malignant secondary" in {
        t.text for t in kb.terms_for("C78.0", "ICD-10-CM")
    }


def test_drug_table(full: dict[str, Any]) -> None:
    kb = full["kb"]
    terms = {(t.text, t.source) for t in kb.terms_for("T39.011", "ICD-10-CM")}
    assert ("Aspirin, poisoning, accidental (unintentional)", "drug") in terms
    assert ("Aspirin, adverse effect", "drug") in {
        (t.text, t.source) for t in kb.terms_for("T39.015", "ICD-10-CM")
    }
    assert full["reports"]["drug"]["counts"]["terms"] > 30_000


def test_external_cause_index(full: dict[str, Any]) -> None:
    kb = full["kb"]
    e = kb.index_lookup(["Accident", "bare foot water skiier"], source="eindex")
    assert e is not None and e.resolved == "V94.4"
    assert kb.system_info("ICD-10-CM").extra["eindex"] == "FY2025 (XML)"


def test_pcs_fy2026(full: dict[str, Any]) -> None:
    kb = full["kb"]
    rep = full["reports"]["pcs"]
    assert rep["counts"]["valid_codes"] == PCS_FY2026_VALID
    assert kb.count("ICD-10-PCS", billable_only=True) == PCS_FY2026_VALID
    info = kb.system_info("ICD-10-PCS")
    assert info.version == "FY2026" and info.n_billable == PCS_FY2026_VALID
    rec = kb.get("0DTJ4ZZ", "ICD-10-PCS")
    assert rec.billable and rec.title == "Resection of Appendix, Percutaneous Endoscopic Approach"
    assert rec.parent == "0DT" and not kb.get("0DT", "ICD-10-PCS").billable


def test_hcpcs_2025_oct(full: dict[str, Any]) -> None:
    kb = full["kb"]
    rep = full["reports"]["hcpcs"]
    assert rep["version"] == "2025-10"
    assert rep["counts"]["codes"] == HCPCS_2025_OCT_CODES
    assert rep["counts"]["modifiers"] == HCPCS_2025_OCT_MODIFIERS
    assert kb.count("HCPCS", kind="code") == HCPCS_2025_OCT_CODES
    assert kb.system_info("HCPCS").n_codes == HCPCS_2025_OCT_CODES
    mod = kb.get("LT", "HCPCS")
    assert mod is not None and mod.kind == "modifier" and not mod.billable
    rec = kb.get("J1100", "HCPCS")
    assert rec.billable and "dexamethasone" in rec.title.lower()


@pytest.mark.parametrize(
    ("query", "system", "code"),
    [
        ("hypertension", "ICD-10-CM", "I10"),
        ("essential hypertension", "ICD-10-CM", "I10"),
        ("type 2 diabetes with chronic kidney disease", "ICD-10-CM", "E11.22"),
        ("Diabetes, type 2, with, chronic kidney disease", "ICD-10-CM", "E11.22"),
        ("heart failure", "ICD-10-CM", "I50.9"),
        ("atrial fibrillation", "ICD-10-CM", "I48.91"),
        ("urinary tract infection", "ICD-10-CM", "N39.0"),
        ("aspirin poisoning accidental", "ICD-10-CM", "T39.011"),
        ("E11.22", "ICD-10-CM", "E11.22"),
        ("e1122", "ICD-10-CM", "E11.22"),
        ("0DTJ4ZZ", "ICD-10-PCS", "0DTJ4ZZ"),
        ("99213", "CPT", "99213"),
        ("colonoscopy with biopsy", "CPT", "45380"),
        ("wheelchair", "HCPCS", "K0001"),
    ],
)
def test_search_ranks_with_index(full: dict[str, Any], query: str, system: str, code: str) -> None:
    hits = full["kb"].search(query, limit=10)
    assert (hits[0].system, hits[0].code) == (system, code), [(h.code, h.matched) for h in hits]


def test_search_restricted_and_billable(full: dict[str, Any]) -> None:
    kb = full["kb"]
    hits = kb.search("appendix resection", systems=["ICD-10-PCS"], limit=10)
    assert hits and all(h.system == "ICD-10-PCS" for h in hits)
    hits = kb.search("lung cancer", billable_only=True, limit=10)
    assert hits and all(h.billable for h in hits)


def test_cli_systems_and_lookup_show_versions(full: dict[str, Any]) -> None:
    cmd = [sys.executable, "-m", "clinicode.cli", "codes", "systems", "--json"]
    out = subprocess.run([*cmd, "--kb", str(full["path"])], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    versions = {r["system"]: r["version"] for r in json.loads(out.stdout)}
    assert versions == {
        "CPT": STARTER_VERSION,
        "HCPCS": "2025-10",
        "ICD-10-CM": "FY2026",
        "ICD-10-PCS": "FY2026",
    }
    cmd = [sys.executable, "-m", "clinicode.cli", "codes", "lookup", "0DTJ4ZZ", "--json"]
    out = subprocess.run([*cmd, "--kb", str(full["path"])], capture_output=True, text=True)
    assert json.loads(out.stdout)["version"] == "FY2026"


@pytest.mark.slow
def test_hcpcs_xlsx_matches_csv(full: dict[str, Any], scratch: Path) -> None:
    rep = run_import("hcpcs", shared_path(*HCPCS_XLSX), scratch)
    assert rep["counts"] == full["reports"]["hcpcs"]["counts"]
    a, b = KnowledgeBase(scratch), full["kb"]
    assert a.get("J1100", "HCPCS").title == b.get("J1100", "HCPCS").title


@pytest.mark.slow
def test_fy2017_release_zip(scratch: Path) -> None:
    z = shared_path(*FY2017_ZIP)
    rep = run_import("index", z, scratch)
    assert rep["version"] == "FY2017 (XML)"
    assert rep["source"].endswith("!icd10cm_index_2017.xml")
    # some FY2017 codes were deleted since: dropped from the terms, counted in the report
    assert 0 < rep["counts"]["unknown_codes"] < 100
    assert rep["counts"]["terms"] > 60_000
    for kind in ("neoplasm", "drug", "eindex"):
        r = run_import(kind, z, scratch)
        assert r["version"] == "FY2017 (XML)" and r["counts"]["terms"] > 5_000, r
    kb = KnowledgeBase(scratch)
    e = kb.index_lookup(["Diabetes", "type 2", "with", "chronic kidney disease"])
    assert e is not None and e.resolved == "E11.22"
    # the XML keeps manifestation codes (the CSV conversion drops them)
    amyloid = kb.index_lookup(["Amyloidosis", "heart"])
    assert amyloid.code == "E85.4" and amyloid.manif == "I43"
    assert kb.system_info("ICD-10-CM").extra["drug"] == "FY2017 (XML)"


@pytest.mark.slow
def test_fy2017_extracted_xml(scratch: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(shared_path(*FY2017_ZIP)) as zf:
        xml = tmp_path / "icd10cm_neoplasm_2017.xml"
        xml.write_bytes(zf.read("icd10cm_neoplasm_2017.xml"))
    rep = run_import("neoplasm", xml, scratch)
    assert rep["counts"]["terms"] > 5_000


# -- CPT ---------------------------------------------------------------------------------------
def test_cpt_starter_loaded_by_build(kb: KnowledgeBase) -> None:
    info = kb.system_info("CPT")
    assert info is not None and info.version == STARTER_VERSION
    em = [f"{c}" for c in [*range(99202, 99206), *range(99211, 99216)]]
    em += ["99221", "99222", "99223", "99231", "99232", "99233", "99238", "99239"]
    em += [str(c) for c in range(99281, 99286)]
    for code in em:
        rec = kb.get(code, "CPT")
        assert rec is not None, code
        assert rec.description_source == "clinicode-own-words" and rec.billable
    assert info.n_codes >= 130
    assert kb.count("CPT") == info.n_codes


def test_licensed_cpt_replaces_starter(scratch: Path, tmp_path: Path) -> None:
    f = tmp_path / "cpt_2026.csv"
    f.write_text(
        "CPT Code,Long Descriptor\n"
        "99213,licensed test descriptor A\n"
        "45380,licensed test descriptor B\n"
        "0001F,licensed test descriptor C\n"
    )
    rep = run_import("cpt", f, scratch)
    assert rep["system"] == "CPT" and rep["counts"]["codes"] == 3
    assert rep["version"] == "CPT 2026 (licensed)"
    kb = KnowledgeBase(scratch)
    assert kb.count("CPT") == 3 and kb.get("99202", "CPT") is None
    rec = kb.get("99213", "CPT")
    assert rec.title == "licensed test descriptor A" and rec.description_source == "licensed"
    kb.close()
    build_icd10cm(scratch)  # `clinicode setup` again: the licensed file stays
    kb = KnowledgeBase(scratch)
    assert kb.system_info("CPT").version == "CPT 2026 (licensed)" and kb.count("CPT") == 3


def test_cpt_header_spellings(scratch: Path, tmp_path: Path) -> None:
    f = tmp_path / "codes.txt"
    f.write_text("code\tdescription\n99214\tsome text\n")
    rep = run_import("cpt", f, scratch, version="2026 AMA")
    assert rep["version"] == "2026 AMA" and rep["counts"]["codes"] == 1


# -- damaged, empty and wrong-kind files -------------------------------------------------------
def _write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data)
    return p


INDEX_CSV_HEAD = "RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n"


@pytest.mark.parametrize(
    ("kind", "name", "data", "message"),
    [
        ("index", "empty.csv", "", "empty"),
        ("index", "i.csv", "a,b,c\n1,2,3\n", "missing column"),
        ("index", "i.csv", INDEX_CSV_HEAD, "no index rows"),
        (
            "index",
            "i.csv",
            INDEX_CSV_HEAD + "1,A,0,Aarskog's syndrome,,,,Q87.19\n2,A,0,Aba",
            "truncated",
        ),
        ("index", "i.csv", INDEX_CSV_HEAD + "1,A,0,Abasia,,,,F44.4\n2,A,2,x,,,,F44.4\n", "level 2"),
        (
            "index",
            "i.xml",
            "<ICD10CM.index><letter><title>A</title><mainTerm><title>Ab",
            "well-formed",
        ),
        ("index", "i.xml", "<ICD10CM.tabular><version>2026</version></ICD10CM.tabular>", "tabular"),
        ("index", "i.xml", "<foo/>", "not an ICD-10-CM index"),
        (
            "drug",
            "n.xml",
            '<ICD10CM.index><indexHeading><head col="1">Neoplasm</head></indexHeading>'
            "<letter><title>N</title></letter></ICD10CM.index>",
            "Neoplasm table",
        ),
        (
            "index",
            "e.xml",
            "<ICD10CM.index><title>ICD-10-CM EXTERNAL CAUSE of INJURIES INDEX</title>"
            "<letter><title>A</title><mainTerm><title>Fall</title><code>W19</code></mainTerm>"
            "</letter></ICD10CM.index>",
            "External Cause index",
        ),
        ("neoplasm", "n.csv", INDEX_CSV_HEAD, "not XML"),
        ("pcs", "p.txt", "hello world\n", "order-file layout"),
        (
            "pcs",
            "p.txt",
            "00001 001     0 Central Nervous System and Cranial Nerves, Bypass",
            "layout",
        ),
        ("hcpcs", "h.csv", "CODE,DESC\nA0425,Ground mileage\n", "missing column"),
        (
            "hcpcs",
            "HCPC2025_OCT_ANWEB.csv",
            "HCPC,SEQNUM,RECID,LONG DESCRIPTION\nA0425,0010,3",
            "truncated",
        ),
        (
            "hcpcs",
            "HCPC2025_OCT_ANWEB.csv",
            "HCPC,SEQNUM,RECID,LONG DESCRIPTION\n",
            "no HCPCS codes",
        ),
        ("cpt", "c.csv", "code,price\n99213,12\n", "descriptor"),
        ("cpt", "c.csv", "code,descriptor\nfoo,bar\n", "no CPT codes"),
    ],
)
def test_bad_files_rejected(
    scratch: Path, tmp_path: Path, kind: str, name: str, data: str, message: str
) -> None:
    before = KnowledgeBase(scratch).versions()
    with pytest.raises(ImportFileError, match=message):
        run_import(kind, _write(tmp_path, name, data), scratch)
    assert KnowledgeBase(scratch).versions() == before  # nothing half-imported


def test_truncated_real_table_rejected(scratch: Path, tmp_path: Path) -> None:
    data = shared_path(TABLES, "icd-10-cm-neoplasm-2025.xml").read_bytes()
    f = _write(tmp_path, "neoplasm.xml", data[: len(data) // 2])
    with pytest.raises(ImportFileError, match="complete"):
        run_import("neoplasm", f, scratch)


def test_truncated_pcs_file_rejected(scratch: Path, tmp_path: Path) -> None:
    lines = shared_path(*PCS_2026).read_text().splitlines()[:50]
    # the file ends in the middle of line 50's short title
    f = _write(tmp_path, "icd10pcs_order_2026.txt", "\n".join([*lines[:49], lines[49][:40]]))
    with pytest.raises(ImportFileError, match="line 50"):
        run_import("pcs", f, scratch)


def test_zip_without_the_member_rejected(scratch: Path, tmp_path: Path) -> None:
    z = tmp_path / "x.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    with pytest.raises(ImportFileError, match="holds no"):
        run_import("drug", z, scratch)


def test_pcs_version_needed_when_name_has_none(scratch: Path, tmp_path: Path) -> None:
    line = "00002 0016070 1 " + "Bypass short".ljust(60) + " Bypass long title"
    f = _write(tmp_path, "order.txt", line + "\n")
    with pytest.raises(ImportFileError, match="--version"):
        run_import("pcs", f, scratch)
    rep = run_import("pcs", f, scratch, version="FY2099")
    assert rep["version"] == "FY2099" and rep["counts"]["valid_codes"] == 1


def test_cli_import_bad_file_exits_2(scratch: Path, tmp_path: Path) -> None:
    f = _write(tmp_path, "bad.csv", "a,b\n1,2\n")
    cmd = [sys.executable, "-m", "clinicode.cli", "codes", "import", "index", str(f)]
    out = subprocess.run([*cmd, "--kb", str(scratch)], capture_output=True, text=True)
    assert out.returncode == 2 and "missing column" in out.stderr
    assert "Traceback" not in out.stderr


def test_open_kb_sees_imports(full: dict[str, Any]) -> None:
    kb = open_kb(full["path"])
    assert kb.index_count("drug") > 5_000
