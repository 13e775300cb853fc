"""HCPCS Level II from the CMS quarterly ANWEB file (csv or xlsx, e.g. ``HCPC2025_OCT_ANWEB``).

Columns used (CMS record layout): ``HCPC`` (5-character code, or a 2-character modifier padded
with spaces), ``RECID`` (3: procedure, 4: its continuation lines, 7: modifier, 8: its
continuation lines), ``LONG DESCRIPTION``, ``SHORT DESCRIPTION``, ``TERM DT``, ``ADD DT``.

Codes become system ``HCPCS`` (kind ``code``). A code whose termination date is before the
start of the file's quarter is kept but flagged not billable (a note says when it ended).
Modifiers are kept, flagged: kind ``modifier``, not billable, not counted in ``n_codes``.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from clinicode.kb.importers.common import ImportFileError, ImportReport, SourceFile, read_source
from clinicode.kb.importers.completeness import check_counts, check_coverage, check_line_end
from clinicode.kb.records import CodeRecord, SystemInfo, Term
from clinicode.kb.store import KnowledgeBase

SYSTEM = "HCPCS"
REQUIRED = ("HCPC", "RECID", "LONG DESCRIPTION")
_CODE = re.compile(r"^[A-Z][0-9]{4}$")
_MODIFIER = re.compile(r"^[A-Z0-9]{2}$")
_MONTHS = {
    m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)
}
_NAME_VERSION = re.compile(r"HCPC(?:S)?(\d{4})_?([A-Z]{3})", re.IGNORECASE)


def _rows_csv(src: SourceFile) -> list[list[str]]:
    try:
        return [row for row in csv.reader(io.StringIO(src.text(), newline="")) if row]
    except csv.Error as exc:
        raise ImportFileError(f"{src.name}: damaged CSV ({exc})") from exc


def _rows_xlsx(src: SourceFile) -> list[list[str]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(src.data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for damaged files
        raise ImportFileError(f"{src.name} is not a readable xlsx workbook: {exc}") from exc
    try:
        ws = wb.worksheets[0]
        return [
            ["" if v is None else str(v) for v in row]
            for row in ws.iter_rows(values_only=True)
            if row and any(v is not None for v in row)
        ]
    finally:
        wb.close()


def version_from_name(name: str) -> str | None:
    m = _NAME_VERSION.search(name)
    if m is None or m.group(2).upper() not in _MONTHS:
        return None
    return f"{m.group(1)}-{_MONTHS[m.group(2).upper()]:02d}"


def import_hcpcs(
    path: Path,
    kb: KnowledgeBase,
    version: str | None,
    extra: dict[str, str] | None = None,
    *,
    force: bool = False,
) -> ImportReport:
    src = read_source(
        path,
        lambda n: "anweb" in n and n.endswith((".csv", ".xlsx", ".txt")),
        "HCPCS ANWEB file (csv or xlsx)",
    )
    is_xlsx = src.data[:4] == b"PK\x03\x04"
    rows = _rows_xlsx(src) if is_xlsx else _rows_csv(src)
    if not rows:
        raise ImportFileError(f"{src.name} is empty")
    header = [h.strip().upper() for h in rows[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImportFileError(
            f"{src.name} is not a HCPCS ANWEB file: missing column(s) {', '.join(missing)}"
            f" (found {', '.join(header[:8])})"
        )
    col = {h: i for i, h in enumerate(header)}
    ver = version or version_from_name(src.name)
    if ver is None:
        raise ImportFileError(f"cannot tell the HCPCS version from {src.name!r}; pass --version")
    start = re.sub(r"\D", "", ver)[:6].ljust(6, "0") + "01"  # yyyymm01 of the quarter

    def cell(row: list[str], name: str) -> str:
        i = col.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    records: dict[str, CodeRecord] = {}
    n_codes = n_mods = n_terminated = 0
    last: CodeRecord | None = None
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) < len(header) and not (is_xlsx and len(row) > max(col.values())):
            raise ImportFileError(f"{src.name}: line {lineno} is incomplete (file truncated?)")
        code = cell(row, "HCPC").upper()
        recid = cell(row, "RECID")
        desc = " ".join(cell(row, "LONG DESCRIPTION").split())
        if recid in ("4", "8"):  # continuation of the previous description
            if last is not None and desc:
                last.title = f"{last.title} {desc}".strip()
            continue
        if recid == "3":
            if not _CODE.match(code):
                raise ImportFileError(f"{src.name}: line {lineno}: {code!r} is not a HCPCS code")
            term_dt = re.sub(r"\D", "", cell(row, "TERM DT"))
            ended = bool(term_dt) and term_dt < start
            notes = (
                {"notes": [f"Termination date {term_dt[:4]}-{term_dt[4:6]}-{term_dt[6:8]}"]}
                if (term_dt)
                else {}
            )
            rec = CodeRecord(
                SYSTEM,
                code,
                desc or cell(row, "SHORT DESCRIPTION"),
                "code",
                not ended,
                None,
                0,
                notes,
            )
            n_codes += 1
            n_terminated += int(ended)
        elif recid == "7":
            if not _MODIFIER.match(code):
                raise ImportFileError(f"{src.name}: line {lineno}: {code!r} is not a modifier")
            rec = CodeRecord(SYSTEM, code, desc, "modifier", False, None, 0)
            n_mods += 1
        else:
            raise ImportFileError(
                f"{src.name}: line {lineno}: unknown RECID {recid!r} (expected 3, 4, 7 or 8)"
            )
        if code in records:
            raise ImportFileError(f"{src.name}: line {lineno}: {code} appears twice")
        rec.order = len(records) + 1
        records[code] = rec
        last = rec
    if n_codes == 0:
        raise ImportFileError(f"{src.name} holds no HCPCS codes")
    if not force:
        if not is_xlsx:
            check_line_end(src)
        letters = {r.code[0] for r in records.values() if r.kind == "code"}
        check_coverage(src, "hcpcs", "first_letters", letters, "codes starting with")
        check_counts(src, "hcpcs", ver, {"codes": n_codes, "modifiers": n_mods})
    terms = [Term(SYSTEM, r.code, r.title, "title") for r in records.values()]
    info = SystemInfo(
        system=SYSTEM,
        version=ver,
        source=src.name,
        source_hash=src.sha256,
        extra={
            "label": f"HCPCS Level II {ver}",
            "modifiers": str(n_mods),
            "terminated": str(n_terminated),
            **(extra or {}),
        },
    )
    kb.replace_system(info, records.values(), terms)
    return ImportReport(
        system=SYSTEM,
        kind="hcpcs",
        version=ver,
        source=str(path),
        counts={
            "codes": n_codes,
            "modifiers": n_mods,
            "terminated": n_terminated,
            "billable": n_codes - n_terminated,
        },
        notes=["modifiers are stored flagged (kind 'modifier', not billable)"],
    )
