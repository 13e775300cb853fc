"""The ICD-10-PCS tables XML importer (``clinicode codes import pcs-tables``), on a hand-made
excerpt in the CMS layout (tests/kb/fixtures) and a small order file written here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clinicode.kb import KnowledgeBase
from clinicode.kb.importers import ImportFileError, run_import
from clinicode.kb.importers.pcs_tables import META_KEY

FIXTURE = Path(__file__).parent / "fixtures" / "icd10pcs_tables_2026.xml"

# (code, header flag, long title) as in the CMS order file; 0DBJ0ZZ is in the order file but
# not in the fixture's tables.
ORDER = [
    ("0DB", "0", "Gastrointestinal System, Excision"),
    ("0DBJ0ZZ", "1", "Excision of Appendix, Open Approach"),
    ("0DT", "0", "Gastrointestinal System, Resection"),
    ("0DTJ0ZZ", "1", "Resection of Appendix, Open Approach"),
    ("0DTJ4ZG", "1", "Resection of Appendix, Percutaneous Endoscopic Approach, Hand-Assisted"),
    ("0DTJ4ZZ", "1", "Resection of Appendix, Percutaneous Endoscopic Approach"),
    ("0DTJ7ZZ", "1", "Resection of Appendix, Via Natural or Artificial Opening"),
    ("0DTJ8ZZ", "1", "Resection of Appendix, Via Natural or Artificial Opening Endoscopic"),
    ("0FT", "0", "Hepatobiliary System and Pancreas, Resection"),
    ("0FT40ZZ", "1", "Resection of Gallbladder, Open Approach"),
    ("0FT44ZG", "1", "Resection of Gallbladder, Percutaneous Endoscopic Approach, Hand-Assisted"),
    ("0FT44ZZ", "1", "Resection of Gallbladder, Percutaneous Endoscopic Approach"),
]


def write_order_file(folder: Path, name: str = "icd10pcs_order_2026.txt") -> Path:
    """A small order file in the CMS fixed-width layout."""
    lines = [
        f"{i:05d} {code:<7} {flag} {title[:60]:<60} {title}"
        for i, (code, flag, title) in enumerate(ORDER, start=1)
    ]
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def pcs_path(tmp_path: Path) -> Path:
    kb = tmp_path / "kb.sqlite"
    run_import("pcs", write_order_file(tmp_path), kb)
    return kb


_QUALIFIER_AXIS = """      <axis pos="7" values="1">
        <title>Qualifier</title>
        <label code="Z">No Qualifier</label>
      </axis>
    </pcsRow>"""


def _bad(tmp_path: Path, old: str, new: str, name: str = "icd10pcs_tables_2026.xml") -> Path:
    text = FIXTURE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_import_stores_the_tables_and_reports_counts(pcs_path: Path) -> None:
    rep = run_import("pcs-tables", FIXTURE, pcs_path)
    assert rep["system"] == "ICD-10-PCS" and rep["kind"] == "pcs-tables"
    assert rep["version"] == "FY2026"
    assert rep["counts"] == {"tables": 2, "rows": 4, "codes": 8, "not_in_order_file": 0}
    kb = KnowledgeBase(pcs_path)
    payload = json.loads(kb.get_meta(META_KEY) or "{}")
    assert payload["version"] == "FY2026" and len(payload["tables"]) == 2
    assert payload["tables"][0]["definition"].startswith("Cutting out or off")
    assert kb.system_info("ICD-10-PCS").extra["tables_xml"] == FIXTURE.name


def test_the_builder_validates_against_imported_tables(pcs_path: Path) -> None:
    from clinicode.models.pcs.tables import PcsTables

    before = PcsTables.from_kb(KnowledgeBase(pcs_path))
    assert before.valid("0DBJ0ZZ") and "order file" in before.source
    run_import("pcs-tables", FIXTURE, pcs_path)
    tables = PcsTables.from_kb(KnowledgeBase(pcs_path))
    assert "tables XML" in tables.source
    assert tables.valid("0DTJ4ZG") and tables.valid("0FT40ZZ")
    assert not tables.valid("0DBJ0ZZ")  # in the order file, not in these tables
    assert not tables.valid("0FT47ZZ")  # a value no row of 0FT combines
    assert tables.label("0FT44ZZ", 5) == "Percutaneous Endoscopic"
    assert tables.label("0FT44ZG", 7) == "Hand-Assisted"
    assert sorted(c[4] for c in tables.completions({1: "0", 2: "D", 3: "T", 4: "J"})) == [
        "0",
        "4",
        "4",
        "7",
        "8",
    ]


def test_the_builder_uses_the_labels_of_the_tables(pcs_path: Path) -> None:
    from clinicode.models.pcs.coder import PcsCoder

    run_import("pcs-tables", FIXTURE, pcs_path)
    coder = PcsCoder(KnowledgeBase(pcs_path))
    [s] = coder.code("PROCEDURE: Laparoscopic cholecystectomy.", [], setting="inpatient")
    assert s.code == "0FT44ZZ" and s.status == "suggested"
    assert s.explanation[2].startswith("body system F: Hepatobiliary System and Pancreas")
    assert any("tables XML" in line for line in s.explanation)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("</ICD10PCS.tabular>", "", "not well-formed"),
        ('<label code="J">Appendix</label>', '<label code="I">Appendix</label>', "not a PCS"),
        ('<axis pos="3" values="1">', '<axis pos="9" values="1">', "position 1-7"),
        (_QUALIFIER_AXIS, "    </pcsRow>", "needs axes 4, 5, 6 and 7"),
        ("ICD10PCS.tabular", "ICD10CM.tabular", "not the ICD-10-PCS tables"),
    ],
)
def test_damaged_tables_are_rejected_and_nothing_changes(
    pcs_path: Path, tmp_path: Path, old: str, new: str, message: str
) -> None:
    run_import("pcs-tables", FIXTURE, pcs_path)
    before = KnowledgeBase(pcs_path).get_meta(META_KEY)
    bad = _bad(tmp_path, old, new)
    with pytest.raises(ImportFileError, match=message):
        run_import("pcs-tables", bad, pcs_path)
    kb = KnowledgeBase(pcs_path)
    assert kb.get_meta(META_KEY) == before


def test_tables_need_the_order_file_of_the_same_year(pcs_path: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    KnowledgeBase(empty, readonly=False).close()
    with pytest.raises(ImportFileError, match="order file first"):
        run_import("pcs-tables", FIXTURE, empty)
    older = _bad(tmp_path, "<version>2026</version>", "<version>2025</version>")
    with pytest.raises(ImportFileError, match="same fiscal year"):
        run_import("pcs-tables", older, pcs_path)
    assert KnowledgeBase(pcs_path).get_meta(META_KEY) is None


def test_cli_imports_tables_and_exits_2_on_a_bad_file(kb_path: Path, tmp_path: Path) -> None:
    kb = tmp_path / "kb.sqlite"
    shutil.copyfile(kb_path, kb)
    order = write_order_file(tmp_path)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "clinicode.cli", "codes", "import", *args, "--kb", str(kb)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    assert cli("pcs", str(order), "--json").returncode == 0
    out = cli("pcs-tables", str(FIXTURE), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"]["codes"] == 8
    bad = _bad(tmp_path, "</ICD10PCS.tabular>", "")
    out = cli("pcs-tables", str(bad))
    assert out.returncode == 2 and "not well-formed" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
