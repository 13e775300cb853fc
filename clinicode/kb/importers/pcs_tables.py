"""ICD-10-PCS tables from the CMS tables XML (``icd10pcs_tables_2026.xml``).

CMS layout: the root ``ICD10PCS.tabular`` holds ``pcsTable`` elements; a table has one
``axis`` each for positions 1 to 3 (section, body system, root operation: one ``label code=``
each, the operation with its ``definition``) and ``pcsRow`` elements whose ``axis`` elements
for positions 4 to 7 (body part, approach, device, qualifier) list the values that combine
with each other in that row. Every code a row allows is valid; no other code is.

Stored as one JSON document under the KB meta key ``icd10pcs_tables`` (the PCS builder
validates against it and takes the axis labels from it), in the same transaction as the
``tables_xml`` entries of the ICD-10-PCS system's ``extra``: all or nothing. The order file
must be imported first (it gives the codes their titles); the versions must agree.
"""

from __future__ import annotations

import itertools
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from clinicode.kb.importers.common import ImportFileError, ImportReport, read_source, year_in
from clinicode.kb.store import KnowledgeBase

SYSTEM = "ICD-10-PCS"
META_KEY = "icd10pcs_tables"  # read by clinicode.models.pcs.tables
_VALUE = re.compile(r"^[0-9A-HJ-NP-Z]$")


def _axis(el: ET.Element, where: str) -> tuple[int, list[list[str]], str | None]:
    pos_text = el.get("pos", "")
    if not pos_text.isdigit() or not 1 <= int(pos_text) <= 7:
        raise ImportFileError(f"{where}: axis without a position 1-7 (pos={pos_text!r})")
    labels = []
    for lab in el.findall("label"):
        code = (lab.get("code") or "").strip().upper()
        if not _VALUE.match(code):
            raise ImportFileError(f"{where}, axis {pos_text}: {code!r} is not a PCS value")
        labels.append([code, " ".join((lab.text or "").split())])
    if not labels:
        raise ImportFileError(f"{where}, axis {pos_text}: no label (value)")
    if len({c for c, _ in labels}) != len(labels):
        raise ImportFileError(f"{where}, axis {pos_text}: a value appears twice")
    definition = el.findtext("definition")
    return int(pos_text), labels, (" ".join(definition.split()) if definition else None)


def _table(el: ET.Element, n: int) -> dict[str, Any]:
    where = f"pcsTable {n}"
    head: dict[str, list[str]] = {}
    definition = None
    for ax in el.findall("axis"):
        pos, labels, d = _axis(ax, where)
        if pos > 3 or len(labels) != 1 or str(pos) in head:
            raise ImportFileError(
                f"{where}: axes 1-3 must appear once each with one value (axis {pos})"
            )
        head[str(pos)] = labels[0]
        definition = d if pos == 3 else definition
    if set(head) != {"1", "2", "3"}:
        raise ImportFileError(f"{where}: missing axis {sorted({'1', '2', '3'} - set(head))}")
    where = f"table {''.join(head[p][0] for p in '123')}"
    rows = []
    for i, row_el in enumerate(el.findall("pcsRow"), start=1):
        row: dict[str, list[list[str]]] = {}
        for ax in row_el.findall("axis"):
            pos, labels, _ = _axis(ax, f"{where} row {i}")
            if pos < 4 or str(pos) in row:
                raise ImportFileError(f"{where} row {i}: axes 4-7 must appear once each")
            row[str(pos)] = labels
        if set(row) != {"4", "5", "6", "7"}:
            raise ImportFileError(f"{where} row {i}: needs axes 4, 5, 6 and 7")
        rows.append(row)
    if not rows:
        raise ImportFileError(f"{where} has no pcsRow")
    return {"axes": head, "definition": definition, "rows": rows}


def parse_tables(data: bytes, name: str) -> tuple[list[dict[str, Any]], str | None]:
    """The tables of the XML and its ``version`` element (None when absent)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ImportFileError(f"{name} is not well-formed XML ({exc}); is it complete?") from exc
    if "pcs" not in root.tag.lower():
        raise ImportFileError(
            f"{name} is not the ICD-10-PCS tables XML (root element <{root.tag}>, expected"
            " <ICD10PCS.tabular>)"
        )
    tables = [_table(el, i) for i, el in enumerate(root.findall("pcsTable"), start=1)]
    if not tables:
        raise ImportFileError(f"{name} holds no pcsTable")
    seen: set[str] = set()
    for t in tables:
        key = "".join(t["axes"][p][0] for p in "123")
        if key in seen:
            raise ImportFileError(f"{name}: table {key} appears twice")
        seen.add(key)
    version = (root.findtext("version") or "").strip() or None
    return tables, version


def expand_tables(
    tables: list[dict[str, Any]],
) -> tuple[list[str], dict[str, dict[int, dict[str, str]]]]:
    """Every code the stored tables allow, and the label of each value by table and position
    (a stored table: ``{"axes": {"1": [value, label], "2": ..., "3": ...}, "rows": [{"4":
    [[value, label], ...], ..., "7": [...]}, ...]}``, as :func:`parse_tables` returns)."""
    codes: list[str] = []
    labels: dict[str, dict[int, dict[str, str]]] = {}
    for t in tables:
        head = "".join(t["axes"][str(p)][0] for p in (1, 2, 3))
        lab = labels.setdefault(head, {})
        for p in (1, 2, 3):
            lab.setdefault(p, {})[t["axes"][str(p)][0]] = t["axes"][str(p)][1]
        for row in t["rows"]:
            values = []
            for p in (4, 5, 6, 7):
                pairs = row[str(p)]
                lab.setdefault(p, {}).update({c: label for c, label in pairs})
                values.append([c for c, _ in pairs])
            codes.extend(head + "".join(v) for v in itertools.product(*values))
    return codes, labels


def import_pcs_tables(
    path: Path, kb: KnowledgeBase, version: str | None, extra: dict[str, str] | None = None
) -> ImportReport:
    src = read_source(
        path,
        lambda n: "tables" in n and n.endswith(".xml"),
        "ICD-10-PCS tables XML (icd10pcs_tables_YYYY.xml)",
    )
    tables, xml_version = parse_tables(src.data, src.name)
    year = xml_version or year_in(src.name)
    fy = version or (f"FY{year}" if year else None)
    if fy is None:
        raise ImportFileError(f"cannot tell the version of {src.name!r}; pass --version FY2026")
    info = kb.system_info(SYSTEM)
    if info is None:
        raise ImportFileError(
            "import the ICD-10-PCS order file first (`clinicode codes import pcs"
            " icd10pcs_order_YYYY.txt`): it gives the codes their titles"
        )
    if info.version != fy:
        raise ImportFileError(
            f"{src.name} is {fy} but the knowledge base holds the ICD-10-PCS {info.version}"
            " order file; import the tables of the same fiscal year"
        )
    codes, _ = expand_tables(tables)
    known = {c for c, b in kb.billable_map(SYSTEM).items() if b}
    unknown = sorted(set(codes) - known)
    payload = {"version": fy, "source": src.name, "sha256": src.sha256, "tables": tables}
    kb.replace_meta(
        META_KEY,
        json.dumps(payload, separators=(",", ":")),
        system=SYSTEM,
        info_extra={"tables_xml": src.name, "tables_xml_sha256": src.sha256, **(extra or {})},
    )
    notes = []
    if unknown:
        notes.append(
            f"{len(unknown)} code(s) the tables allow are not in the order file"
            f" (e.g. {', '.join(unknown[:5])})"
        )
    return ImportReport(
        system=SYSTEM,
        kind="pcs-tables",
        version=fy,
        source=str(path),
        counts={
            "tables": len(tables),
            "rows": sum(len(t["rows"]) for t in tables),
            "codes": len(set(codes)),
            "not_in_order_file": len(unknown),
        },
        notes=notes,
    )
