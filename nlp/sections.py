"""Section detection: medspaCy's Sectionizer with header rules for real US notes.

Headers come from ``nlp/resources/sections.json`` (``category -> [literal, ...]``). A literal
matches in any case at the start of a line, optionally numbered ("1.", "2)", "A.", "IV."),
followed by ":" or "-", or alone on its line ("ASSESSMENT" then a line break).
Each token gets ``token._.section_category`` (medspaCy's extension) with our normalized
category: ``hpi``, ``past_medical_history``, ``assessment_plan``, ``diagnoses`` ...
"""

from functools import lru_cache
from typing import Any

from clinicode.nlp.resources import load_resource
from spacy.language import Language
from spacy.tokens import Doc

_NUMBERING = r"^(?:\d{1,2}|[A-Za-z]|[IVXivx]{1,4})[.)]?$"


@lru_cache(maxsize=1)
def section_literals() -> dict[str, tuple[str, ...]]:
    """``category -> literals`` from ``sections.json``."""
    data = load_resource("sections.json")["sections"]
    return {cat: tuple(lits) for cat, lits in data.items()}


def _literal_tokens(nlp: Language, literal: str) -> list[str]:
    return [t.lower_ for t in nlp.make_doc(literal)]


def section_rules(nlp: Language) -> list[Any]:
    """medspaCy SectionRules: each literal with a colon/dash, or alone on its line."""
    from medspacy.section_detection import SectionRule

    rules = []
    for category, literals in section_literals().items():
        for literal in literals:
            words = [{"LOWER": w} for w in _literal_tokens(nlp, literal)]
            number = [
                {"TEXT": {"REGEX": _NUMBERING}, "OP": "?"},
                {"TEXT": {"IN": [".", ")"]}, "OP": "?"},
            ]
            colon = [{"TEXT": {"IN": [":", "-", "--", ":-"]}}]
            eol = [{"IS_SPACE": True, "TEXT": {"REGEX": "\n"}}]
            for tail, tag in ((colon, "colon"), (eol, "eol")):
                rules.append(
                    SectionRule(
                        literal=f"{literal} [{tag}]",
                        category=category,
                        pattern=number + words + tail,
                    )
                )
    return rules


@Language.factory("clinicode_sectionizer", default_config={"require_start_line": True})
def make_sectionizer(nlp: Language, name: str, require_start_line: bool) -> "Sectionizer":
    return Sectionizer(nlp, name=name, require_start_line=require_start_line)


class Sectionizer:
    """Wraps medspaCy's Sectionizer with our rules; sets ``doc._.sections``."""

    def __init__(
        self, nlp: Language, name: str = "clinicode_sectionizer", require_start_line: bool = True
    ) -> None:
        from medspacy.section_detection import Sectionizer as MedspacySectionizer

        self.name = name
        self._inner = MedspacySectionizer(
            nlp,
            name=f"{name}_medspacy",
            rules=None,
            require_start_line=require_start_line,
            span_attrs=None,
        )
        self._inner.add(section_rules(nlp))

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
