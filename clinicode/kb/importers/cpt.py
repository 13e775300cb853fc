"""CPT: the built-in starter set and a licensed CPT file the user supplies.

CPT descriptors are the AMA's copyright. Clinicode ships only code numbers with descriptions it
wrote in its own words (``clinicode/kb/data/cpt_starter.csv``, description_source
``clinicode-own-words``, version ``Clinicode starter set (not AMA CPT)``). A licensed file
(``clinicode codes import cpt FILE.csv``: columns code and descriptor, common header spellings
accepted) replaces the starter set entirely (description_source ``licensed``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from importlib import resources
from pathlib import Path

from clinicode.kb.importers.common import ImportFileError, ImportReport, read_source, year_in
from clinicode.kb.records import CodeRecord, SystemInfo, Term
from clinicode.kb.store import KnowledgeBase

SYSTEM = "CPT"
STARTER_VERSION = "Clinicode starter set (not AMA CPT)"
STARTER_SOURCE = "clinicode:cpt_starter.csv"
OWN_WORDS = "clinicode-own-words"
# Category I (5 digits), Category II (4 digits + F), Category III (4 digits + T), PLA (4 + U)
_CPT = re.compile(r"^\d{4}[0-9FTU]$")
_CODE_HEADERS = ("code", "cpt", "cpt code", "cpt_code", "cptcode", "hcpcs", "procedure code")
_DESC_HEADERS = (
    "descriptor",
    "description",
    "long descriptor",
    "long description",
    "long_descriptor",
    "long_description",
    "longdescriptor",
    "full descriptor",
    "desc",
    "title",
    "medium descriptor",
    "short descriptor",
)


def _starter_bytes() -> bytes:
    return resources.files("clinicode.kb.data").joinpath("cpt_starter.csv").read_bytes()


def starter_hash() -> str:
    return hashlib.sha256(_starter_bytes()).hexdigest()


def starter_outdated(kb: KnowledgeBase) -> bool:
    """True when the KB has no CPT, or an older version of the starter set."""
    info = kb.system_info(SYSTEM)
    if info is None:
        return True
    return info.source == STARTER_SOURCE and info.source_hash != starter_hash()


def starter_records() -> tuple[list[CodeRecord], str]:
    """The starter set's records and the sha256 of its file."""
    data = _starter_bytes()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    records = [
        CodeRecord(
            SYSTEM,
            r["code"].strip(),
            " ".join(r["description"].split()),
            "code",
            True,
            None,
            0,
            {"notes": [f"Group: {r['group'].strip()}"]} if r.get("group") else {},
            description_source=OWN_WORDS,
            order=i + 1,
        )
        for i, r in enumerate(rows)
    ]
    return records, hashlib.sha256(data).hexdigest()


def ensure_cpt_starter(kb: KnowledgeBase) -> SystemInfo | None:
    """Load (or refresh) the starter set unless a licensed CPT file was imported."""
    current = kb.system_info(SYSTEM)
    if current is not None and current.source != STARTER_SOURCE:
        return None  # a licensed file: never replace it with the starter set
    records, digest = starter_records()
    if current is not None and current.source_hash == digest:
        return current
    info = SystemInfo(
        system=SYSTEM,
        version=STARTER_VERSION,
        source=STARTER_SOURCE,
        source_hash=digest,
        extra={
            "label": STARTER_VERSION,
            "description_source": OWN_WORDS,
            "notice": "Code numbers only; descriptions written by Clinicode, not AMA descriptors."
            " Import your licensed CPT file with `clinicode codes import cpt FILE`.",
        },
    )
    terms = [Term(SYSTEM, r.code, r.title, "title") for r in records]
    return kb.replace_system(info, records, terms)


def _norm_header(h: str) -> str:
    return " ".join(h.strip().lower().replace("-", " ").replace("_", " ").split())


def import_cpt(
    path: Path, kb: KnowledgeBase, version: str | None, extra: dict[str, str] | None = None
) -> ImportReport:
    src = read_source(
        path, lambda n: n.endswith((".csv", ".txt", ".tsv")), "licensed CPT file (CSV)"
    )
    text = src.text()
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if r]
    except csv.Error as exc:
        raise ImportFileError(f"{src.name}: damaged CSV ({exc})") from exc
    if not rows:
        raise ImportFileError(f"{src.name} is empty")
    header = [_norm_header(h) for h in rows[0]]
    code_names = {_norm_header(h) for h in _CODE_HEADERS}
    desc_names = [_norm_header(h) for h in _DESC_HEADERS]
    code_col = next((i for i, h in enumerate(header) if h in code_names), None)
    desc_col = next((header.index(d) for d in desc_names if d in header), None)
    if code_col is None or desc_col is None:
        raise ImportFileError(
            f"{src.name}: need a code column ({', '.join(_CODE_HEADERS[:4])}) and a descriptor"
            f" column ({', '.join(_DESC_HEADERS[:4])}); found {', '.join(rows[0][:8])}"
        )
    records: dict[str, CodeRecord] = {}
    bad: list[str] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) <= max(code_col, desc_col):
            raise ImportFileError(f"{src.name}: line {lineno} is incomplete (file truncated?)")
        code = row[code_col].strip().upper()
        desc = " ".join(row[desc_col].split())
        if not _CPT.match(code) or not desc:
            bad.append(f"line {lineno}")
            continue
        if code not in records:
            records[code] = CodeRecord(
                SYSTEM,
                code,
                desc,
                "code",
                True,
                None,
                0,
                description_source="licensed",
                order=len(records) + 1,
            )
    if not records:
        raise ImportFileError(
            f"{src.name} holds no CPT codes (5 characters: 4 digits + digit/F/T/U)"
        )
    if len(bad) > max(10, len(records) // 10):
        raise ImportFileError(
            f"{src.name}: {len(bad)} rows are not CPT code + descriptor (first: {bad[0]});"
            " is this a CPT file?"
        )
    ver = version or (f"CPT {year_in(src.name)} (licensed)" if year_in(src.name) else None)
    ver = ver or f"licensed ({src.name})"
    info = SystemInfo(
        system=SYSTEM,
        version=ver,
        source=src.name,
        source_hash=src.sha256,
        extra={"label": f"CPT {ver}", "description_source": "licensed", **(extra or {})},
    )
    terms = [Term(SYSTEM, r.code, r.title, "title") for r in records.values()]
    kb.replace_system(info, records.values(), terms)
    return ImportReport(
        system=SYSTEM,
        kind="cpt",
        version=ver,
        source=str(path),
        counts={"codes": len(records), "skipped_rows": len(bad)},
        notes=["replaced the Clinicode CPT starter set"],
    )
