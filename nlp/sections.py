"""Section detection: medspaCy's Sectionizer with header rules for real US notes.

Headers come from ``nlp/resources/sections.json`` (``category -> [literal, ...]``). A literal
matches in any case at the start of a line, optionally numbered ("1.", "2)", "A.", "IV."),
followed by ":" or "-", or alone on its line ("ASSESSMENT" then a line break).
Each token gets ``token._.section_category`` (medspaCy's extension) with our normalized
category: ``hpi``, ``past_medical_history``, ``assessment_plan``, ``diagnoses`` ...
"""

import re
from functools import lru_cache
from typing import Any

from medspacy.section_detection.util import is_end_line, is_start_line
from spacy.language import Language
from spacy.tokens import Doc

from clinicode.nlp.resources import load_resource

_NUMBERING = re.compile(r"^(?:\d{1,2}|[A-Za-z]|[IVXivx]{1,4})[.)]?$")
_NEWLINE = re.compile(r"[\n\r]+[\s]*$")
_HEADER_END = (":", "-", "--", ":-")


@lru_cache(maxsize=1)
def section_literals() -> dict[str, tuple[str, ...]]:
    """``category -> literals`` from ``sections.json``."""
    data = load_resource("sections.json")["sections"]
    return {cat: tuple(lits) for cat, lits in data.items()}


def header_patterns() -> dict[str, list[list[dict[str, Any]]]]:
    """``category -> token patterns`` for headers no literal lists (``header_patterns``)."""
    data: dict[str, list[list[dict[str, Any]]]] = load_resource("sections.json").get(
        "header_patterns", {}
    )
    return data


def section_rules() -> list[Any]:
    """medspaCy SectionRules (phrase rules, matched on lower case): each literal bare, with a
    colon and with a dash, then the token patterns. Whether a bare one is a header is decided
    by the line filters."""
    from medspacy.section_detection import SectionRule

    rules = []
    for category, literals in section_literals().items():
        for literal in literals:
            for tail in ("", ":", " -"):
                rules.append(SectionRule(literal=f"{literal}{tail}", category=category))
    for category, patterns in header_patterns().items():
        for i, pattern in enumerate(patterns):
            rules.append(SectionRule(literal=f"{category}#{i}", category=category, pattern=pattern))
    return rules


def _line_start(doc: Doc, idx: int) -> bool:
    """Token ``idx`` begins a line, possibly after a list number ("1.", "2)", "IV.")."""
    if is_start_line(idx, doc, _NEWLINE):
        return True
    j = idx - 1
    if j >= 0 and doc[j].text in (".", ")"):
        j -= 1
    return j >= 0 and bool(_NUMBERING.match(doc[j].text)) and is_start_line(j, doc, _NEWLINE)


def _make_sectionizer_class() -> Any:
    from medspacy.section_detection import Sectionizer as MedspacySectionizer

    class _Sectionizer(MedspacySectionizer):
        """medspaCy's Sectionizer with our line rules: a header starts a line (or follows its
        list number) and ends with ':' / '-', before a ':' or at the end of the line."""

        def filter_start_lines(self, doc: Doc, matches: list[Any]) -> list[Any]:
            return [m for m in matches if _line_start(doc, m[1])]

        def filter_end_lines(self, doc: Doc, matches: list[Any]) -> list[Any]:
            return [
                m
                for m in matches
                if doc[m[2] - 1].text in _HEADER_END
                or is_end_line(m[2] - 1, doc, _NEWLINE)
                or (m[2] < len(doc) and doc[m[2]].text == ":")
            ]

    return _Sectionizer


@Language.factory("clinicode_sectionizer", default_config={"require_start_line": True})
def make_sectionizer(nlp: Language, name: str, require_start_line: bool) -> "Sectionizer":
    return Sectionizer(nlp, name=name, require_start_line=require_start_line)


class Sectionizer:
    """Wraps medspaCy's Sectionizer with our rules; sets ``doc._.sections``."""

    def __init__(
        self, nlp: Language, name: str = "clinicode_sectionizer", require_start_line: bool = True
    ) -> None:
        self.name = name
        self._inner = _make_sectionizer_class()(
            nlp,
            name=f"{name}_medspacy",
            rules=None,
            require_start_line=require_start_line,
            require_end_line=True,
            span_attrs=None,
        )
        self._inner.add(section_rules())

    def __call__(self, doc: Doc) -> Doc:
        return self._inner(doc)


def doc_sections(doc: Doc) -> list[dict[str, Any]]:
    """``[{category, start, end, header}]`` in character offsets for each section of ``doc``."""
    out: list[dict[str, Any]] = []
    if not Doc.has_extension("sections"):
        return out
    for sec in doc._.sections:
        body_end = sec.body_end
        start_tok = sec.title_start if sec.category is not None else sec.body_start
        if body_end <= start_tok:
            continue
        span = doc[start_tok:body_end]
        header = doc[sec.title_start : sec.title_end].text if sec.category is not None else ""
        out.append(
            {
                "category": sec.category,
                "start": span.start_char,
                "end": span.end_char,
                "header": header.strip(),
            }
        )
    return out
