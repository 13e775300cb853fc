"""Assertion of mentions: negated, uncertain, historical, family or hypothetical.

The ``clinicode_assertion`` component runs medspaCy's ConText over the spans in
``doc.spans["mentions"]`` (set by the mention component; ``span.label_`` is the mention kind)
with our extended rules (``nlp/resources/context_rules.json``, loaded by
:func:`load_context_rules`). It keeps the three NegEx axes apart and derives one assertion:

* ``span._.negated``     -- bool
* ``span._.uncertain``   -- bool
* ``span._.temporality`` -- ``"Recent"``, ``"Historical"`` or ``"Not particular"`` (hypothetical)
* ``span._.experiencer`` -- ``"Patient"``, ``"Family member"`` or ``"Other"``
* ``span._.assertion``   -- one of :data:`ASSERTIONS`, by the precedence below
* ``span._.assertion_cue`` -- the text of the cue behind ``assertion`` (``None`` when present)

Precedence of the single ``assertion`` (the first that holds wins)::

    family > hypothetical > negated > uncertain > historical > present

``family`` means "not the patient's": a family member's condition or another person's
(experiencer ``Other``); ``hypothetical`` is temporality ``Not particular`` (return if ...,
risk of ...). A negated family history ("no family history of X") is ``family``; read
``span._.negated`` for the negation.

Section headers can settle an axis the sentence leaves open: with ``use_sections`` on, a
mention in a section whose category is listed in ``family_sections`` is ``Family member`` and
one in ``historical_sections`` is ``Historical``. The section category is read from
``span._.section_category`` or ``token._.section_category`` (medspaCy's Sectionizer) when
present, so the component also works on a doc with only a sentencizer.
"""

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span, Token

ASSERTIONS: tuple[str, ...] = (
    "present",
    "negated",
    "uncertain",
    "historical",
    "family",
    "hypothetical",
)
TEMPORALITIES: tuple[str, ...] = ("Recent", "Historical", "Not particular")
EXPERIENCERS: tuple[str, ...] = ("Patient", "Family member", "Other")

# ConText modifier categories used in the rule files.
NEGATED = "NEGATED_EXISTENCE"
UNCERTAIN = "POSSIBLE_EXISTENCE"
HISTORICAL = "HISTORICAL"
HYPOTHETICAL = "HYPOTHETICAL"
FAMILY = "FAMILY"
OTHER = "OTHER_EXPERIENCER"
CATEGORIES: tuple[str, ...] = (NEGATED, UNCERTAIN, HISTORICAL, HYPOTHETICAL, FAMILY, OTHER)

RULE_SETS: tuple[str, ...] = ("clinicode", "medspacy_default")
DEFAULT_FAMILY_SECTIONS: tuple[str, ...] = ("family_history",)
DEFAULT_HISTORICAL_SECTIONS: tuple[str, ...] = ("past_medical_history", "past_surgical_history")

_EXTENSIONS: dict[str, Any] = {
    "assertion": "present",
    "assertion_cue": None,
    "negated": False,
    "uncertain": False,
    "temporality": "Recent",
    "experiencer": "Patient",
}


def register_extensions() -> None:
    """Register the span extensions this component sets (idempotent)."""
    for name, default in _EXTENSIONS.items():
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)


def medspacy_default_rules_path() -> Path:
    """The English ConText rule file shipped with medspaCy (the baseline)."""
    import medspacy.context.context as ctx

    return Path(ctx.__file__).resolve().parents[2] / "resources" / "en" / "context_rules.json"


@lru_cache(maxsize=8)
def _read_rule_file(rule_set: str) -> dict[str, Any]:
    """Rules (medspaCy dicts) and terminating types of a named or JSON-file rule set."""
    if rule_set == "medspacy_default":
        data = json.loads(medspacy_default_rules_path().read_text(encoding="utf-8"))
        return {"context_rules": tuple(data["context_rules"]), "terminating_types": {}}
    if rule_set == "clinicode":
        from clinicode.nlp.resources import load_resource

        data = load_resource("context_rules.json")
    else:
        data = json.loads(Path(rule_set).read_text(encoding="utf-8"))
    base: list[dict[str, Any]] = []
    terminating: dict[str, list[str]] = {}
    if data.get("extends"):
        parent = _read_rule_file(str(data["extends"]))
        removed = {str(x).lower() for x in data.get("remove_literals", [])}
        base = [r for r in parent["context_rules"] if r["literal"].lower() not in removed]
        terminating.update(parent["terminating_types"])
    ours = [{k: v for k, v in r.items() if not k.startswith("_")} for r in data["context_rules"]]
    terminating.update(data.get("terminating_types", {}))
    return {"context_rules": tuple(base + ours), "terminating_types": terminating}


def load_context_rules(rule_set: str = "clinicode") -> tuple[list[Any], dict[str, list[str]]]:
    """ConText rules and terminating types by name (``clinicode``, ``medspacy_default``) or path.

    A rule file holds ``{"context_rules": [...]}`` in medspaCy's format; ours may also say
    ``"extends": "medspacy_default"``, list ``"remove_literals"`` to drop or redefine base rules,
    and give ``"terminating_types"`` (category -> categories that end its scope, as in
    ``ConText(terminating_types=...)``). ``metadata.also`` on a rule lists further categories
    its cue carries. Keys starting with ``_`` are comments. Fresh rule objects are returned on
    each call because ConText mutates them when they are added.
    """
    from medspacy.context import ConTextRule

    data = _read_rule_file(rule_set)
    rules = [ConTextRule.from_dict(dict(r)) for r in data["context_rules"]]
    return rules, {k: list(v) for k, v in data["terminating_types"].items()}


def _edge_variants(pattern: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Variants of ``pattern`` whose first and last elements are required.

    Optional elements at the edges are either dropped or made required, so that the runs of
    whitespace tokens allowed between elements never start or end a match.
    """
    for i in (0, len(pattern) - 1):
        if len(pattern) > 1 and pattern[i].get("OP") in ("?", "*"):
            dropped = pattern[1:] if i == 0 else pattern[:-1]
            required = [dict(t) for t in pattern]
            if required[i]["OP"] == "?":
                del required[i]["OP"]
            else:
                required[i]["OP"] = "+"
            return _edge_variants(dropped) + _edge_variants(required)
    return [pattern]


def _space_tolerant_patterns(nlp: Language, literal: str, pattern: Any) -> list[Any]:
    """Token patterns for a rule that also match across runs of whitespace tokens.

    Notes wrap lines and pad with spaces; spaCy keeps those as whitespace tokens, which would
    break multi-word cues ("appears to have   resolved"). Literal rules become token patterns on
    LOWER; regex (string) patterns are kept as they are.
    """
    if isinstance(pattern, str):
        return [pattern]
    if pattern is None:
        pattern = [{"LOWER": t.lower_} for t in nlp.tokenizer(literal) if not t.is_space]
    out: list[Any] = []
    for variant in _edge_variants([dict(t) for t in pattern]):
        spaced: list[dict[str, Any]] = []
        for k, tok in enumerate(variant):
            if k:
                spaced.append({"IS_SPACE": True, "OP": "*"})
            spaced.append(tok)
        out.append(spaced)
    return out


def _section_category(span: Span) -> str | None:
    if Span.has_extension("section_category"):
        value = span._.get("section_category")
        if value:
            return str(value)
    if Token.has_extension("section_category"):
        value = span[0]._.get("section_category")
        if value:
            return str(value)
    return None


def derive_assertion(negated: bool, uncertain: bool, temporality: str, experiencer: str) -> str:
    """The single assertion: family > hypothetical > negated > uncertain > historical > present."""
    if experiencer != "Patient":
        return "family"
    if temporality == "Not particular":
        return "hypothetical"
    if negated:
        return "negated"
    if uncertain:
        return "uncertain"
    if temporality == "Historical":
        return "historical"
    return "present"


class Assertion:
    """Sets negation, uncertainty, temporality, experiencer and one assertion on each mention."""

    def __init__(
        self,
        nlp: Language,
        name: str = "clinicode_assertion",
        rules: str = "clinicode",
        span_group: str = "mentions",
        use_sections: bool = True,
        family_sections: list[str] | tuple[str, ...] = DEFAULT_FAMILY_SECTIONS,
        historical_sections: list[str] | tuple[str, ...] = DEFAULT_HISTORICAL_SECTIONS,
    ) -> None:
        from medspacy.context import ConText

        register_extensions()
        self.name = name
        self.span_group = span_group
        self.use_sections = use_sections
        self.family_sections = frozenset(family_sections)
        self.historical_sections = frozenset(historical_sections)
        # A TERMINATE rule ("but", "however", ...) ends the scope of every cue category.
        context_rules, terminating = load_context_rules(rules)
        spaced_rules = []
        for rule in context_rules:
            for pattern in _space_tolerant_patterns(nlp, rule.literal, rule.pattern):
                variant = copy.copy(rule)
                variant.pattern = pattern
                spaced_rules.append(variant)
        self._context = ConText(
            nlp,
            name=f"{name}_context",
            rules=None,
            span_attrs=None,
            input_span_type="group",
            span_group_name=span_group,
            terminating_types=terminating or None,
        )
        self._context.add(spaced_rules)

    def __call__(self, doc: Doc) -> Doc:
        if self.span_group not in doc.spans or len(doc.spans[self.span_group]) == 0:
            return doc
        if not doc.has_annotation("SENT_START"):
            raise ValueError(
                "clinicode_assertion needs sentence boundaries: add a sentencizer before it"
            )
        for span in doc.spans[self.span_group]:
            span._.modifiers = ()
        self._context(doc)
        # ConText never lets a cue modify a mention it overlaps. A forward historical cue that
        # opens the mention ("status post CABG", "history of MI") still dates it.
        prefix_mods: dict[int, list[Any]] = {}
        for mod in doc._.context_graph.modifiers:
            if mod.category in _PREFIX_CATEGORIES and mod.direction == "FORWARD":
                prefix_mods.setdefault(mod.modifier_span[0], []).append(mod)
        for span in doc.spans[self.span_group]:
            self._set_attributes(span, prefix_mods)
        return doc

    def _set_attributes(self, span: Span, prefix_mods: dict[int, list[Any]]) -> None:
        cues: dict[str, str] = {}
        doc = span.doc
        for mod in (*prefix_mods.get(span.start, ()), *span._.modifiers):
            start, end = mod.modifier_span
            if start < span.end and span.start < end and start != span.start:
                # A cue inside the mention is part of its name ("... without complication").
                continue
            cue = doc[start:end].text
            cues.setdefault(mod.category, cue)
            for also in (mod.rule.metadata or {}).get("also", ()):
                cues.setdefault(str(also).upper(), cue)
        negated = NEGATED in cues
        uncertain = UNCERTAIN in cues
        if HYPOTHETICAL in cues:
            temporality = "Not particular"
        elif HISTORICAL in cues:
            temporality = "Historical"
        else:
            temporality = "Recent"
        if FAMILY in cues:
            experiencer = "Family member"
        elif OTHER in cues:
            experiencer = "Other"
        else:
            experiencer = "Patient"
        if self.use_sections:
            section = _section_category(span)
            if section in self.family_sections and experiencer == "Patient":
                experiencer = "Family member"
                cues.setdefault(FAMILY, "")
            elif section in self.historical_sections and temporality == "Recent":
                temporality = "Historical"
                cues.setdefault(HISTORICAL, "")
        assertion = derive_assertion(negated, uncertain, temporality, experiencer)
        span._.negated = negated
        span._.uncertain = uncertain
        span._.temporality = temporality
        span._.experiencer = experiencer
        span._.assertion = assertion
        # The cue of the winning axis; None when the section header (not a cue) decided it.
        cue_cats = _CUE_CATEGORIES[assertion]
        span._.assertion_cue = next((cues[c] for c in cue_cats if cues.get(c)), None)


_PREFIX_CATEGORIES = frozenset({HISTORICAL})

_CUE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "negated": (NEGATED,),
    "uncertain": (UNCERTAIN,),
    "historical": (HISTORICAL,),
    "hypothetical": (HYPOTHETICAL,),
    "family": (FAMILY, OTHER),
    "present": (),
}


@Language.factory(
    "clinicode_assertion",
    default_config={
        "rules": "clinicode",
        "span_group": "mentions",
        "use_sections": True,
        "family_sections": list(DEFAULT_FAMILY_SECTIONS),
        "historical_sections": list(DEFAULT_HISTORICAL_SECTIONS),
    },
)
def make_assertion(
    nlp: Language,
    name: str,
    rules: str,
    span_group: str,
    use_sections: bool,
    family_sections: list[str],
    historical_sections: list[str],
) -> Assertion:
    return Assertion(
        nlp,
        name=name,
        rules=rules,
        span_group=span_group,
        use_sections=use_sections,
        family_sections=family_sections,
        historical_sections=historical_sections,
    )
