"""ICD-10-PCS from the CMS order file (``icd10pcs_order_2026.txt``).

Fixed width (CMS layout): order number (5, zero-padded), code (7, left-justified), header flag
(1: ``1`` a valid code, ``0`` a table header that is not billable), short title (60), long title.
Headers (3-character tables such as ``0DT``) become non-billable ``table`` records; every
7-character code becomes a billable ``code`` record whose parent is its table.
"""

from __future__ import annotations

import re
from pathlib import Path

from clinicode.kb.importers.common import ImportFileError, ImportReport, read_source, year_in
from clinicode.kb.importers.completeness import check_counts, check_coverage, check_line_end
from clinicode.kb.records import CodeRecord, SystemInfo, Term
from clinicode.kb.store import KnowledgeBase

SYSTEM = "ICD-10-PCS"
_HEAD = re.compile(r"^\d{5} [0-9A-HJ-NP-Z]{3,7} *[01] \S")
_PCS_CODE = re.compile(r"^[0-9A-HJ-NP-Z]{7}$")


def import_pcs(
    path: Path,
    kb: KnowledgeBase,
    version: str | None,
    extra: dict[str, str] | None = None,
    *,
    force: bool = False,
) -> ImportReport:
    src = read_source(
        path,
        lambda n: "order" in n and n.endswith(".txt") and "addenda" not in n,
        "ICD-10-PCS order file (icd10pcs_order_YYYY.txt)",
    )
    text = src.text()
    records: list[CodeRecord] = []
    terms: list[Term] = []
    seen: set[str] = set()
    n_headers = n_valid = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if (
            _HEAD.match(line) is None
            or line[13] != " "
            or line[15] != " "
            or len(line) < 78
            or line[76] != " "
        ):
            raise ImportFileError(
                f"{src.name}: line {lineno} is not in the ICD-10-PCS order-file layout"
                " (order number, code, header flag, short title, long title); is this the"
                " order file and is it complete?"
            )
        code, flag = line[6:13].strip(), line[14]
        long = line[77:].strip() or line[16:76].strip()
        if code in seen:
            raise ImportFileError(f"{src.name}: line {lineno}: code {code} appears twice")
        seen.add(code)
        if flag == "1":
            if not _PCS_CODE.match(code):
                raise ImportFileError(
                    f"{src.name}: line {lineno}: {code!r} is flagged valid but is not a"
                    " 7-character ICD-10-PCS code"
                )
            n_valid += 1
            parent = code[:3] if code[:3] in seen else None
            rec = CodeRecord(SYSTEM, code, long, "code", True, parent, 1)
        else:
            n_headers += 1
            rec = CodeRecord(SYSTEM, code, long, "table", False, None, 0)
        rec.order = len(records) + 1
        records.append(rec)
        terms.append(Term(SYSTEM, code, long, "title"))
    if n_valid == 0:
        raise ImportFileError(f"{src.name} holds no valid ICD-10-PCS codes")
    fy = version or (f"FY{year_in(src.name)}" if year_in(src.name) else None)
    if fy is None:
        raise ImportFileError(
            f"cannot tell the ICD-10-PCS version from {src.name!r}; pass --version FY2026"
        )
    if not force:
        check_line_end(src)
        check_coverage(src, "pcs", "sections", {c[0] for c in seen}, "ICD-10-PCS section")
        counts = {"records": len(records), "valid_codes": n_valid}
        check_counts(src, "pcs", fy, counts)
    info = SystemInfo(
        system=SYSTEM,
        version=fy,
        source=src.name,
        source_hash=src.sha256,
        extra={"label": f"ICD-10-PCS {fy}", "tables": str(n_headers), **(extra or {})},
    )
    kb.replace_system(info, records, terms)
    return ImportReport(
        system=SYSTEM,
        kind="pcs",
        version=fy,
        source=str(path),
        counts={"valid_codes": n_valid, "headers": n_headers, "terms": len(terms)},
    )
