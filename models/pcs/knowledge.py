"""The PCS builder's word knowledge: one loader of ``models/resources/pcs_terms.yaml``.

Everything clinical the builder reads (root operation words and suffixes, body part terms
and combining forms, approach, device and qualifier words, named procedures) is data in that
file; :func:`load_knowledge` reads and compiles it once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from clinicode.models.resources import load_resource


def word_pattern(pattern: str) -> re.Pattern[str]:
    """A data pattern as a case-insensitive regex that matches whole words only."""
    return re.compile(rf"(?<![A-Za-z0-9])(?:{pattern})(?![A-Za-z0-9])", re.I)


@dataclass(frozen=True)
class BodyPart:
    name: str
    terms: re.Pattern[str] | None
    forms: tuple[str, ...]
    # body system -> value, or {right|left|bilateral|none: value}, or {count: [values]}
    values: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)
    count_terms: re.Pattern[str] | None = None  # distinct matches count the parts treated


@dataclass(frozen=True)
class Procedure:
    pattern: re.Pattern[str]
    axes: dict[str, str]
    root: str
    body: str | None = None
    prefer: str | None = None
    default_approach: str | None = None
    inspection_only: bool = False
    qualifier: tuple[tuple[re.Pattern[str], str], ...] = ()
    default_qualifier: str | None = None
    durations: tuple[tuple[re.Pattern[str], str], ...] = ()


@dataclass(frozen=True)
class OpTerm:
    pattern: re.Pattern[str]
    op: str
    body: str | None = None
    qualifier: str | None = None
    weak: bool = False  # dropped when the statement names another operation ("placement")


@dataclass(frozen=True)
class ValueTerm:
    """A device or qualifier word: the value it documents, for which operations."""

    pattern: re.Pattern[str]
    value: str
    ops: tuple[str, ...] = ()
    counted: tuple[str, ...] = ()


@dataclass(frozen=True)
class Knowledge:
    sections: dict[str, str]
    skipped_sections: frozenset[str]
    axis_names: dict[str, tuple[str, ...]]
    root_operations: dict[str, dict[str, str]]  # name -> {value, definition}
    approach_labels: dict[str, str]
    approach_terms: tuple[tuple[re.Pattern[str], str], ...]
    approach_overrides: tuple[tuple[re.Pattern[str], str], ...]
    approach_ignore: re.Pattern[str]
    procedures: tuple[Procedure, ...]
    op_terms: tuple[OpTerm, ...]
    suffixes: dict[str, str]
    suffix_pattern: re.Pattern[str]
    partial_words: re.Pattern[str]
    total_words: re.Pattern[str]
    lesion_words: re.Pattern[str]
    body_parts: tuple[BodyPart, ...]
    abscess_systems: tuple[str, ...]
    abscess_terms: re.Pattern[str]
    devices: tuple[ValueTerm, ...]
    qualifiers: tuple[ValueTerm, ...]
    laterality: tuple[tuple[re.Pattern[str], str], ...]
    op_switches: tuple[tuple[str, re.Pattern[str], str], ...]
    negated_before: re.Pattern[str]  # a negation cue ending just before a word ("without ")
    count_words: dict[str, int]
    count_before: re.Pattern[str]  # a number (word or digit) ending just before a word

    def axis_name(self, section: str, position: int) -> str:
        """What the section calls the axis at ``position`` ("approach"; "duration" in 5)."""
        names = self.axis_names.get(section, self.axis_names["0"])
        return names[position - 1]

    def op_name(self, value: str) -> str | None:
        for name, info in self.root_operations.items():
            if info["value"] == value:
                return name
        return None

    def body_part(self, name: str) -> BodyPart | None:
        key = name.lower()
        return next((b for b in self.body_parts if b.name.lower() == key), None)


def _value_terms(items: list[dict[str, Any]]) -> tuple[ValueTerm, ...]:
    return tuple(
        ValueTerm(
            word_pattern(d["pattern"]),
            str(d["value"]),
            tuple(d.get("ops", ())),
            tuple(str(v) for v in d.get("counted", ())),
        )
        for d in items
    )


def _choices(mapping: dict[str, Any] | None) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((word_pattern(p), str(v)) for p, v in (mapping or {}).items())


def _procedure(d: dict[str, Any]) -> Procedure:
    return Procedure(
        pattern=word_pattern(d["pattern"]),
        axes={k: str(v) for k, v in d.get("axes", {}).items()},
        root=d["root"],
        body=d.get("body"),
        prefer=d.get("prefer"),
        default_approach=d.get("default_approach"),
        inspection_only=bool(d.get("inspection_only", False)),
        qualifier=_choices(d.get("qualifier")),
        default_qualifier=d.get("default_qualifier"),
        durations=_choices(d.get("durations")),
    )


def _body_part(d: dict[str, Any]) -> BodyPart:
    terms = d.get("terms") or []
    return BodyPart(
        name=d["name"],
        terms=word_pattern("|".join(terms)) if terms else None,
        forms=tuple(d.get("forms", ())),
        values={str(k): v for k, v in d["values"].items()},
        tags={k: str(v) for k, v in d.get("tags", {}).items()},
        count_terms=word_pattern(d["count_terms"]) if d.get("count_terms") else None,
    )


def build_knowledge(data: dict[str, Any]) -> Knowledge:
    """Compile the parsed YAML (tests may pass a variant)."""
    approaches = data["approaches"]
    suffixes = {str(k): str(v) for k, v in data["suffixes"].items()}
    suffix_re = "|".join(sorted(suffixes, key=len, reverse=True))
    negation = "|".join(re.escape(str(w)) for w in data["negation_cues"])
    counts = {str(k): int(v) for k, v in data["count_words"].items()}
    count_re = "|".join(re.escape(w) for w in counts)
    return Knowledge(
        sections={str(k): v for k, v in data["sections"].items()},
        skipped_sections=frozenset(data.get("skipped_sections", ())),
        axis_names={str(k): tuple(v) for k, v in data["axis_names"].items()},
        root_operations={
            k: {"value": str(v["value"]), "definition": v["definition"]}
            for k, v in data["root_operations"].items()
        },
        approach_labels={str(k): v["label"] for k, v in approaches.items()},
        approach_terms=tuple(
            (word_pattern("|".join(v["terms"])), str(k)) for k, v in approaches.items()
        ),
        approach_overrides=tuple(
            (word_pattern(d["pattern"]), str(d["value"])) for d in data["approach_overrides"]
        ),
        approach_ignore=word_pattern(data.get("approach_ignore", "(?!x)x")),
        procedures=tuple(_procedure(d) for d in data["procedures"]),
        op_terms=tuple(
            OpTerm(
                word_pattern(d["pattern"]),
                d["op"],
                d.get("body"),
                d.get("qualifier"),
                bool(d.get("weak", False)),
            )
            for d in data["operation_terms"]
        ),
        suffixes=suffixes,
        suffix_pattern=re.compile(rf"\b([a-z]+?)-?({suffix_re})\b", re.I),
        partial_words=word_pattern(data["partial_words"]),
        total_words=word_pattern(data["total_words"]),
        lesion_words=word_pattern(data["lesion_words"]),
        body_parts=tuple(_body_part(d) for d in data["body_parts"]),
        abscess_systems=tuple(str(s) for s in data.get("abscess_systems", ())),
        abscess_terms=word_pattern(data.get("abscess_terms", "abscess")),
        devices=_value_terms(data["devices"]),
        qualifiers=_value_terms(data["qualifiers"]),
        laterality=tuple((word_pattern(p), side) for side, p in data["laterality"].items()),
        op_switches=tuple(
            (d["op"], word_pattern(d["pattern"]), d["to"]) for d in data.get("op_switches", ())
        ),
        negated_before=re.compile(rf"\b(?:{negation})\s+(?:\w+\s+)?$", re.I),
        count_words=counts,
        count_before=re.compile(rf"(?:\b({count_re})|\b(\d))\s+(?:\S+\s+){{0,2}}$", re.I),
    )


@lru_cache(maxsize=1)
def load_knowledge() -> Knowledge:
    """The builder's knowledge from ``models/resources/pcs_terms.yaml`` (read once, cached)."""
    return build_knowledge(load_resource("pcs_terms.yaml"))
