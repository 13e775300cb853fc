"""ICD-10-CM Alphabetic Index, External cause index, Neoplasm table and Table of Drugs.

Accepted files:

* kind ``index``: the official index XML (``icd10cm_index_2017.xml``, root ``ICD10CM.index``),
  the release zip holding it, or the CSV conversion (columns RowID, Letter, Level, Term, See,
  SeeAlso, NonEssModif, Code; nesting by row order and Level; lossy).
* kinds ``eindex``, ``neoplasm``, ``drug``: the official XML (or a release zip).

Every entry is kept in the ``index_entries`` tree; every entry (or table cell) whose code
exists in the KB's ICD-10-CM becomes a term: the path joined with ``", "``, e.g.
``"Diabetes, type 2, with, chronic kidney disease"`` -> ``E11.22`` and
``"Neoplasm, lung, malignant primary"`` -> ``C34.9``. A main term printed with its adjective
(``Diabetes, diabetic``) contributes its first spelling to paths; the non-essential modifiers of
the last path element are kept in parentheses (``"Hypertension (accelerated) (benign) ..."``);
search ignores parenthesised words when it looks for exact matches. An incomplete code ending
in ``-`` (``C34.9-``) maps to its category/subcategory record. Codes the KB does not know
(deleted since the index was published) are dropped and counted.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from clinicode.kb.importers.common import (
    PROVENANCE_KEYS,
    ImportFileError,
    ImportReport,
    SourceFile,
    read_source,
    resolve_icd_code,
    year_in,
)
from clinicode.kb.importers.completeness import check_counts, check_coverage, check_line_end
from clinicode.kb.records import Term
from clinicode.kb.store import IndexEntry, KnowledgeBase

SYSTEM = "ICD-10-CM"
CSV_COLUMNS = ("RowID", "Letter", "Level", "Term", "See", "SeeAlso", "NonEssModif", "Code")

_EXTERNAL_LETTERS = ("V", "W", "X", "Y")


@dataclass
class ParsedIndex:
    entries: list[IndexEntry]
    version_label: str


# -- shared: paths and terms ----------------------------------------------------------------
def main_display(title: str) -> str:
    """``"Diabetes, diabetic"`` -> ``"Diabetes"``; ``"Abduction contracture, hip"`` unchanged."""
    parts = [p.strip() for p in title.split(",")]
    if len(parts) < 2 or any(" " in p or not p for p in parts):
        return title
    head = parts[0].lower()
    if all(p.lower()[:4] == head[:4] for p in parts[1:]) and len(head) >= 4:
        return parts[0]
    return title


def _column_label(head: str) -> str:
    label = " ".join(head.split()).lower()
    if label == "ca in situ":
        return "carcinoma in situ"
    if label.startswith("poisoning ") and not label.startswith("poisoning,"):
        return "poisoning, " + label[len("poisoning ") :]
    return label


def build_terms(
    entries: list[IndexEntry], source: str, known: dict[str, bool]
) -> tuple[list[Term], dict[str, int]]:
    """Resolve codes and turn entries (and table cells) into search terms; returns counts.

    ``known`` maps every ICD-10-CM code of the KB to its billability. ``not_billable`` counts
    coded entries printed as complete codes that are no longer billable (subdivided since the
    index was published, or needing a 7th character)."""
    by_id = {e.id: e for e in entries}
    display: dict[int, str] = {}
    counts = {"entries": len(entries), "coded": 0, "terms": 0, "unknown_codes": 0}
    counts["not_billable"] = 0
    unknown: set[str] = set()
    seen: set[tuple[str, str]] = set()
    terms: list[Term] = []

    def add(code: str, text: str) -> None:
        if (code, text.lower()) not in seen:
            seen.add((code, text.lower()))
            terms.append(Term(SYSTEM, code, text, source))

    for e in entries:
        own = main_display(e.term) if e.parent_id is None else e.term
        display[e.id] = own if e.parent_id is None else f"{display[e.parent_id]}, {own}"
        leaf = display[e.id] + (f" {e.nonessential}" if e.nonessential else "")
        if e.code:
            counts["coded"] += 1
            e.resolved = resolve_icd_code(e.code, known)
            if e.resolved is None:
                counts["unknown_codes"] += 1
                unknown.add(e.code)
            else:
                add(e.resolved, leaf)
                if not e.code.endswith("-") and not known[e.resolved]:
                    counts["not_billable"] += 1
        for label, raw in e.cells.items():
            counts["coded"] += 1
            code = resolve_icd_code(raw, known)
            if code is None:
                counts["unknown_codes"] += 1
                unknown.add(raw)
            else:
                add(code, f"{display[e.id]}, {label}")
                if not raw.endswith("-") and not known[code]:
                    counts["not_billable"] += 1
    # "see" references: a term with no code of its own names the code its target leads to
    resolved_see = 0
    targets = _see_targets(entries, by_id, display)
    for e in entries:
        if e.see and not e.code and not e.cells:
            target = targets.get(e.see.lower())
            if target is not None and target.resolved:
                add(target.resolved, display[e.id])
                resolved_see += 1
    counts["see_resolved"] = resolved_see
    counts["terms"] = len(terms)
    counts["distinct_unknown_codes"] = len(unknown)
    return terms, counts


def _see_targets(
    entries: list[IndexEntry], by_id: dict[int, IndexEntry], display: dict[int, str]
) -> dict[str, IndexEntry]:
    """Entries addressable by a "see" text: ``"Pain, abdominal"`` -> that entry."""
    out: dict[str, IndexEntry] = {}
    for e in entries:
        full = display[e.id].lower()
        out.setdefault(full, e)
        out.setdefault(full.replace("(s)", ""), e)
        if e.parent_id is None:
            out.setdefault(e.term.lower(), e)
            out.setdefault(e.term.lower().replace("(s)", ""), e)
    return out


# -- XML ------------------------------------------------------------------------------------
def _title(elem: ET.Element) -> tuple[str, str]:
    """(title text without modifiers, non-essential modifiers) of a mainTerm/term."""
    t = elem.find("title")
    if t is None:
        t = elem.find("diff")
    if t is None:
        return "", ""
    text = t.text or ""
    nemod = []
    for child in t:
        if child.tag == "nemod":
            nemod.append(" ".join("".join(child.itertext()).split()))
        else:
            text += "".join(child.itertext())
        text += child.tail or ""
    return " ".join(text.split()), " ".join(nemod)


def _text(elem: ET.Element, tag: str) -> str | None:
    v = elem.findtext(tag)
    v = " ".join(v.split()) if v else None
    return v or None


def parse_index_xml(src: SourceFile, kind: str, version: str | None) -> ParsedIndex:
    try:
        root = ET.fromstring(src.data)
    except ET.ParseError as exc:
        raise ImportFileError(
            f"{src.name} is not well-formed XML ({exc}); is the file complete?"
        ) from exc
    if root.tag == "ICD10CM.tabular":
        raise ImportFileError(
            f"{src.name} is the ICD-10-CM tabular list, not the {kind} file; the tabular list"
            " ships with Clinicode (`clinicode codes build`)"
        )
    if root.tag != "ICD10CM.index":
        raise ImportFileError(
            f"{src.name} is not an ICD-10-CM index/table XML (root <{root.tag}>,"
            " expected <ICD10CM.index>)"
        )
    heads = {
        int(h.get("col", "0")): " ".join((h.text or "").split())
        for h in root.findall("indexHeading/head")
    }
    table = (heads.get(1) or "").lower()
    found = {"neoplasm": "neoplasm", "substance": "drug"}.get(table)
    title = (root.findtext("title") or "").upper()
    if found is None:
        if heads:
            raise ImportFileError(f"{src.name}: unknown table (first column {heads.get(1)!r})")
        if "EXTERNAL" in title:
            found = "eindex"
        elif title:
            found = "index"
        else:  # no title: look at the codes
            codes = [c.text or "" for c in root.iter("code")]
            ext = sum(c.startswith(_EXTERNAL_LETTERS) for c in codes)
            found = "eindex" if codes and ext > len(codes) / 2 else "index"
    if found != kind:
        names = {
            "index": "Alphabetic Index to Diseases",
            "eindex": "External Cause index",
            "neoplasm": "Neoplasm table",
            "drug": "Table of Drugs and Chemicals",
        }
        raise ImportFileError(
            f"{src.name} is the {names[found]} ({found}), not the {names[kind]}; "
            f"import it with `clinicode codes import {found} {src.origin.name}`"
        )
    letters = root.findall("letter")
    if not letters:
        raise ImportFileError(f"{src.name} holds no <letter> sections (empty or truncated)")
    labels = {col: _column_label(h) for col, h in heads.items() if col > 1}
    entries: list[IndexEntry] = []

    def walk(elem: ET.Element, parent: int | None, level: int) -> None:
        term, nemod = _title(elem)
        code = _text(elem, "code")
        subcat = _text(elem, "subcat")
        seecat = _text(elem, "seecat")
        see = _text(elem, "see") or (f"category {seecat}" if seecat else None)
        cells = {}
        for cell in elem.findall("cell"):
            v = " ".join("".join(cell.itertext()).split())
            col = int(cell.get("col", "0"))
            if v and set(v) != {"-"} and col in labels:
                cells[labels[col]] = v
        e = IndexEntry(
            id=len(entries) + 1,
            system=SYSTEM,
            source=kind,
            parent_id=parent,
            level=level,
            term=term,
            nonessential=nemod,
            code=code or (f"{subcat}-" if subcat else None),
            see=see,
            see_also=_text(elem, "seeAlso"),
            manif=_text(elem, "manif"),
            cells=cells,
            order=len(entries) + 1,
        )
        entries.append(e)
        for sub in elem.findall("term"):
            walk(sub, e.id, level + 1)

    for letter in letters:
        for main in letter.findall("mainTerm"):
            walk(main, None, 0)
    if not entries:
        raise ImportFileError(f"{src.name} holds no main terms (empty or truncated)")
    fy = (root.findtext("version") or "").strip() or year_in(src.name) or "unknown"
    label = f"{version or 'FY' + fy} (XML)"
    return ParsedIndex(entries, label)


# -- CSV ------------------------------------------------------------------------------------
def parse_index_csv(src: SourceFile, version: str | None) -> ParsedIndex:
    text = src.text()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{src.name} is empty") from None
    except csv.Error as exc:
        raise ImportFileError(f"{src.name} is not a readable CSV: {exc}") from exc
    header = [h.strip() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ImportFileError(
            f"{src.name} is not the Alphabetic Index CSV: missing column(s) {', '.join(missing)}"
            f" (expected {', '.join(CSV_COLUMNS)}; found {', '.join(header[:10])})"
        )
    col = {c: header.index(c) for c in CSV_COLUMNS}
    entries: list[IndexEntry] = []
    stack: list[int] = []  # entry ids by level
    try:
        for lineno, row in enumerate(reader, start=2):
            if not row or not any(row):
                continue
            if len(row) < len(header):
                raise ImportFileError(
                    f"{src.name}: line {lineno} has {len(row)} of {len(header)} columns;"
                    " the file looks truncated or damaged"
                )
            try:
                level = int(row[col["Level"]])
            except ValueError:
                raise ImportFileError(
                    f"{src.name}: line {lineno}: Level {row[col['Level']]!r} is not a number"
                ) from None
            if level < 0 or level > len(stack):
                raise ImportFileError(
                    f"{src.name}: line {lineno}: level {level} does not follow level"
                    f" {len(stack) - 1} (rows out of order or damaged file)"
                )
            del stack[level:]
            term = " ".join(row[col["Term"]].split())
            nonessential = " ".join(row[col["NonEssModif"]].split())
            if not term:  # a subterm that is only a modifier, e.g. "(somatoform)"
                term, nonessential = nonessential, ""
            if not term:
                raise ImportFileError(f"{src.name}: line {lineno} has no Term")
            e = IndexEntry(
                id=len(entries) + 1,
                system=SYSTEM,
                source="index",
                parent_id=stack[-1] if stack else None,
                level=level,
                term=term,
                nonessential=nonessential,
                code=row[col["Code"]].strip() or None,
                see=row[col["See"]].strip() or None,
                see_also=row[col["SeeAlso"]].strip() or None,
                order=len(entries) + 1,
            )
            entries.append(e)
            stack.append(e.id)
    except csv.Error as exc:
        raise ImportFileError(f"{src.name}: damaged CSV ({exc})") from exc
    if not entries:
        raise ImportFileError(f"{src.name} has a header but no index rows")
    label = f"{version or year_in(src.name) or 'unknown'} (CSV, lossy)"
    return ParsedIndex(entries, label)


def check_index_csv(src: SourceFile, parsed: ParsedIndex, version: str | None) -> None:
    """The Index CSV is complete: whole last line, every letter A-Z, the known row count."""
    check_line_end(src)
    letters = {e.term[:1].upper() for e in parsed.entries if e.parent_id is None}
    check_coverage(src, "index_csv", "letters", letters, "main terms under letter")
    year = year_in(version or "") or year_in(src.name)
    if year is not None:
        check_counts(src, "index_csv", year, {"rows": len(parsed.entries)})


# -- importers ------------------------------------------------------------------------------
_PICK = {
    "index": lambda n: "index" in n and "eindex" not in n and n.endswith((".xml", ".csv")),
    "eindex": lambda n: "eindex" in n and n.endswith(".xml"),
    "neoplasm": lambda n: "neoplasm" in n and n.endswith(".xml"),
    "drug": lambda n: "drug" in n and n.endswith(".xml"),
}
_WHAT = {
    "index": "ICD-10-CM Alphabetic Index (XML or CSV)",
    "eindex": "ICD-10-CM External Cause index XML",
    "neoplasm": "ICD-10-CM Neoplasm table XML",
    "drug": "ICD-10-CM Table of Drugs and Chemicals XML",
}


def _looks_xml(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"


def import_index_kind(
    kind: str,
    path: Path,
    kb: KnowledgeBase,
    version: str | None,
    extra: dict[str, str] | None = None,
    *,
    force: bool = False,
) -> ImportReport:
    if kb.system_info(SYSTEM) is None:
        raise ImportFileError("ICD-10-CM is not in the knowledge base; run `clinicode codes build`")
    src = read_source(path, _PICK[kind], _WHAT[kind])
    if _looks_xml(src.data):
        parsed = parse_index_xml(src, kind, version)
    elif kind == "index":
        parsed = parse_index_csv(src, version)
        if not force:
            check_index_csv(src, parsed, version)
    else:
        raise ImportFileError(f"{src.name} is not XML; expected the {_WHAT[kind]}")
    known = kb.billable_map(SYSTEM)
    terms, counts = build_terms(parsed.entries, kind, known)
    if counts["terms"] == 0:
        raise ImportFileError(f"{src.name}: no entry maps to a known ICD-10-CM code")
    # provenance of an earlier fetch is dropped when this file comes from elsewhere
    info_extra: dict[str, str | None] = {f"{kind}_{k}": None for k in PROVENANCE_KEYS}
    info_extra.update({f"{kind}_{k}": v for k, v in (extra or {}).items()})
    info_extra[kind] = parsed.version_label
    kb.replace_index(SYSTEM, kind, parsed.entries, terms, info_extra=info_extra)
    return ImportReport(
        system=SYSTEM,
        kind=kind,
        version=parsed.version_label,
        source=str(path) + ("" if src.name == path.name else f"!{src.name}"),
        counts=counts,
        notes=[
            f"{counts['unknown_codes']} coded entries name codes this KB's ICD-10-CM does not"
            " have (deleted or changed since the index was published); they are kept in the"
            " index tree but give no search term"
        ]
        if counts["unknown_codes"]
        else [],
    )
