"""Plain records stored in and read from the code-set knowledge base."""

from __future__ import annotations

from dataclasses import dataclass, field

from clinicode.errors import ClinicodeError

NOTE_KINDS: tuple[str, ...] = (
    "inclusion",
    "includes",
    "excludes1",
    "excludes2",
    "code_first",
    "use_additional",
    "code_also",
    "seven_chr_note",
    "notes",
)


@dataclass
class CodeRecord:
    """One node of a code system: chapter, block, category, subcategory or code."""

    system: str
    code: str
    title: str
    kind: str = "code"  # chapter | block | category | subcategory | code | extension
    billable: bool = True
    parent: str | None = None
    depth: int = 0
    notes: dict[str, list[str]] = field(default_factory=dict)
    seven_chr: dict[str, str] = field(default_factory=dict)
    description_source: str = "official"
    order: int = 0


@dataclass(frozen=True)
class Term:
    """A phrase that names a code: its title, an inclusion term, an index path, a synonym."""

    system: str
    code: str
    text: str
    source: str  # title | inclusion | index | neoplasm | drug | eindex | synonym | description


@dataclass(frozen=True)
class SearchHit:
    system: str
    code: str
    title: str
    billable: bool
    score: float
    matched: str
    source: str


@dataclass
class SystemInfo:
    """A loaded code system. An importer gives the first four fields and ``extra``;
    ``KnowledgeBase.replace_system`` fills in the import time and the counts."""

    system: str
    version: str
    source: str
    source_hash: str
    imported_at: str = ""
    n_codes: int = 0
    n_billable: int = 0
    extra: dict[str, str] = field(default_factory=dict)


class KBError(ClinicodeError):
    """A knowledge-base problem the user can act on (missing build, wrong file ...)."""


@dataclass
class IndexEntry:
    """One main term or subterm of the Alphabetic Index (or a row of a table).

    ``code`` is the code as printed (``E11.2-``, ``C34.9-``); ``resolved`` is the KB record it
    maps to (``None`` when the code is unknown to the KB or absent). ``cells`` holds the table
    columns of the Neoplasm and Drug tables (``{"malignant primary": "C34.9-", ...}``).
    """

    id: int
    system: str
    source: str
    parent_id: int | None
    level: int
    term: str
    nonessential: str = ""
    code: str | None = None
    resolved: str | None = None
    see: str | None = None
    see_also: str | None = None
    manif: str | None = None
    cells: dict[str, str] = field(default_factory=dict)
    order: int = 0
