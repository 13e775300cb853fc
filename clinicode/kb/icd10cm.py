"""Parse the ICD-10-CM tabular XML carried by the PyPI package ``simple-icd-10-cm``.

The parse keeps every chapter, block, category and code with its instructional notes, and
expands the 7th-character definitions into the full billable codes (``S72.302A``,
``T81.4XXA``), padding with the placeholder X.
"""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from clinicode.errors import ClinicodeError
from clinicode.hashing import sha256_file
from clinicode.kb.records import CodeRecord, SystemInfo, Term

SYSTEM = "ICD-10-CM"
PACKAGE = "simple_icd_10_cm"
TABULAR_PREFIX = "icd10c-tabular-"

# XML element -> our note kind
_NOTE_TAGS = {
    "inclusionTerm": "inclusion",
    "includes": "includes",
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "codeFirst": "code_first",
    "useAdditionalCode": "use_additional",
    "codeAlso": "code_also",
    "sevenChrNote": "seven_chr_note",
    "notes": "notes",
}
_RANGE = re.compile(r"\(([A-Z][0-9A-Z]{2}(?:\.[0-9A-Z]+)?-[A-Z][0-9A-Z]{2}(?:\.[0-9A-Z]+)?)\)\s*$")
# "7th characters D and S do not apply to codes in category S06 with 6th character 7 ... or 8"
_SEVENTH_EXCLUSION = re.compile(
    r"7th characters? ((?:[A-Z](?:, | and | or )?)+) do(?:es)? not apply to codes in category"
    r" (\w+) with 6th character (\w)(?:[^.]*? or (\w) -)?"
)
_RELEASE = re.compile(r"tabular-(\w+)-(\d+)-(\d{4})")
_MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ],
        start=1,
    )
}


class TabularError(ClinicodeError):
    pass


@dataclass
class ParsedTabular:
    info: SystemInfo
    records: list[CodeRecord] = field(default_factory=list)
    terms: list[Term] = field(default_factory=list)


def tabular_path() -> Path:
    """Path of the tabular XML inside the installed ``simple-icd-10-cm`` package."""
    # find_spec locates the package without importing it (its __init__ parses the whole XML).
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TabularError("package simple-icd-10-cm is not installed")
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(TABULAR_PREFIX) and entry.name.endswith(".xml"):
            return Path(str(entry))
    raise TabularError("no ICD-10-CM tabular XML found inside simple-icd-10-cm")


def _notes(elem: ET.Element) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for child in elem:
        kind = _NOTE_TAGS.get(child.tag)
        if kind is None:
            continue
        texts = [" ".join((n.text or "").split()) for n in child.findall("note")]
        texts = [t for t in texts if t]
        if texts:
            out.setdefault(kind, []).extend(texts)
    return out


def _seven_chr(elem: ET.Element) -> dict[str, str]:
    d = elem.find("sevenChrDef")
    if d is None:
        return {}
    return {
        ext.get("char", ""): " ".join((ext.text or "").split())
        for ext in d.findall("extension")
        if ext.get("char")
    }


def with_seventh(code: str, char: str) -> str:
    """``S72.302`` + ``A`` -> ``S72.302A``; ``T81.4`` + ``A`` -> ``T81.4XXA``."""
    bare = code.replace(".", "")
    bare = bare.ljust(6, "X") + char
    return bare[:3] + "." + bare[3:]


def parse_tabular(path: Path | None = None) -> ParsedTabular:
    """Parse the tabular XML into records and terms."""
    path = path or tabular_path()
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise TabularError(f"{path.name} is not well-formed XML: {exc}") from exc
    root = tree.getroot()
    if root.tag != "ICD10CM.tabular":
        raise TabularError(f"{path.name} is not an ICD-10-CM tabular file (root <{root.tag}>)")
    fy = (root.findtext("version") or "").strip()
    m = _RELEASE.search(path.name)
    release = ""
    if m and m.group(1) in _MONTHS:
        release = f"{m.group(3)}-{_MONTHS[m.group(1)]:02d}-{int(m.group(2)):02d}"
    info = SystemInfo(
        system=SYSTEM,
        version=f"FY{fy}",
        source=f"simple-icd-10-cm:{path.name}",
        source_hash=sha256_file(path),
        extra={"release": release, "label": f"ICD-10-CM FY{fy}"},
    )
    out = ParsedTabular(info=info)
    order = 0

    def add(rec: CodeRecord) -> None:
        nonlocal order
        order += 1
        rec.order = order
        out.records.append(rec)

    def seventh_exclusions(notes: dict[str, list[str]]) -> list[tuple[set[str], str, set[str]]]:
        out_rules = []
        for note in notes.get("seven_chr_note", []) + notes.get("notes", []):
            for em in _SEVENTH_EXCLUSION.finditer(note):
                chars = set(re.findall(r"[A-Z]", em.group(1)))
                sixth = {c for c in (em.group(3), em.group(4)) if c}
                out_rules.append((chars, em.group(2), sixth))
        return out_rules

    def excluded(code: str, char: str, rules: list[tuple[set[str], str, set[str]]]) -> bool:
        bare = code.replace(".", "").ljust(6, "X")
        return any(
            char in chars and bare.startswith(cat) and bare[5] in sixth
            for chars, cat, sixth in rules
        )

    def walk_diag(
        d: ET.Element,
        parent: str,
        depth: int,
        seven: dict[str, str],
        rules: list[tuple[set[str], str, set[str]]],
    ) -> None:
        code = (d.findtext("name") or "").strip()
        title = " ".join((d.findtext("desc") or "").split())
        if not code:
            raise TabularError(f"a <diag> under {parent} has no <name>")
        notes = _notes(d)
        own_seven = _seven_chr(d)
        seven_here = own_seven or seven
        kids = d.findall("diag")
        is_leaf = not kids
        kind = "category" if len(code) == 3 else ("code" if is_leaf else "subcategory")
        billable = is_leaf and not seven_here
        add(CodeRecord(SYSTEM, code, title, kind, billable, parent, depth, notes, own_seven))
        out.terms.append(Term(SYSTEM, code, title, "title"))
        for inc in notes.get("inclusion", []):
            out.terms.append(Term(SYSTEM, code, inc, "inclusion"))
        rules = rules + seventh_exclusions(notes)
        for kid in kids:
            walk_diag(kid, code, depth + 1, seven_here, rules)
        if is_leaf and seven_here:
            for char, meaning in seven_here.items():
                if excluded(code, char, rules):
                    continue
                full = with_seventh(code, char)
                full_title = f"{title}, {meaning}"
                add(CodeRecord(SYSTEM, full, full_title, "code", True, code, depth + 1))
                out.terms.append(Term(SYSTEM, full, full_title, "title"))

    for ch in root.findall("chapter"):
        desc = " ".join((ch.findtext("desc") or "").split())
        rm = _RANGE.search(desc)
        ch_code = rm.group(1) if rm else f"CH{(ch.findtext('name') or '').strip()}"
        ch_title = _RANGE.sub("", desc).strip()
        add(CodeRecord(SYSTEM, ch_code, ch_title, "chapter", False, None, 0, _notes(ch)))
        for sec in ch.findall("section"):
            sec_id = sec.get("id", "").strip()
            sec_title = _RANGE.sub("", " ".join((sec.findtext("desc") or "").split())).strip()
            if not sec_id:
                raise TabularError(f"a <section> in chapter {ch_code} has no id")
            if "-" not in sec_id:  # a block of one category: keep the block id a range
                sec_id = f"{sec_id}-{sec_id}"
            add(CodeRecord(SYSTEM, sec_id, sec_title, "block", False, ch_code, 1, _notes(sec)))
            for d in sec.findall("diag"):
                walk_diag(d, sec_id, 2, {}, [])
    if not out.records:
        raise TabularError(f"{path.name} holds no chapters")
    return out


def iter_billable(parsed: ParsedTabular) -> Iterator[str]:
    return (r.code for r in parsed.records if r.billable)
