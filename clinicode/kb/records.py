"""Plain records stored in and read from the code-set knowledge base."""

from __future__ import annotations

from dataclasses import dataclass, field

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
