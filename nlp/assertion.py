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
one in ``historical_sections`` is ``Historical`` unless a current-encounter cue ("admitted
for") governs it. The section category is read from
``span._.section_category`` or ``token._.section_category`` (medspaCy's Sectionizer) when
present, so the component also works on a doc with only a sentencizer.
"""

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span, Token

from clinicode.nlp.tokenizer import add_limit
from clinicode.schema import ASSERTIONS as ASSERTIONS  # the values span._.assertion takes

TEMPORALITIES: tuple[str, ...] = ("Recent", "Historical", "Not particular")
EXPERIENCERS: tuple[str, ...] = ("Patient", "Family member", "Other")

# ConText modifier categories used in the rule files.
NEGATED = "NEGATED_EXISTENCE"
UNCERTAIN = "POSSIBLE_EXISTENCE"
HISTORICAL = "HISTORICAL"
HYPOTHETICAL = "HYPOTHETICAL"
FAMILY = "FAMILY"
OTHER = "OTHER_EXPERIENCER"
CURRENT = "CURRENT_ENCOUNTER"  # "admitted for": the section does not make it historical
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


# (LOWER values or None, IS_PUNCT, OP, SHAPE or "")
_Element = tuple[frozenset[str] | None, bool, str, str]


class CueMatcher:
    """Finds ConText cues with a first-token index: fast on long notes, blind to whitespace.

    Supports what the rule files use: literals (phrase on LOWER) and token patterns whose
    elements test ``LOWER`` (a string or ``{"IN": [...]}``), ``SHAPE`` (spaCy's word shape:
    "dddd" is a year) and/or ``IS_PUNCT``, with ``OP`` in
    ``?``, ``*``, ``+``. Whitespace tokens (line wraps, padding) are skipped, so multi-word cues
    match across them. For each rule and start token the longest match is kept; overlapping
    matches are then pruned to the longest, as medspaCy's matcher does.
    """

    def __init__(self, nlp: Language, rules: list[Any]) -> None:
        self.rules = rules
        self._compiled: list[list[_Element]] = []
        self._by_first: dict[str, list[int]] = {}
        self._any_first: list[int] = []
        for idx, rule in enumerate(rules):
            elements = self._compile(nlp, rule)
            self._compiled.append(elements)
            firsts = self._first_lowers(elements)
            if firsts is None:
                self._any_first.append(idx)
            else:
                for word in firsts:
                    self._by_first.setdefault(word, []).append(idx)

    @staticmethod
    def _compile(nlp: Language, rule: Any) -> list[_Element]:
        pattern = rule.pattern
        if pattern is None:
            words = [t.lower_ for t in nlp.tokenizer(rule.literal) if not t.is_space]
            return [(frozenset([w]), False, "", "") for w in words]
        if not isinstance(pattern, list):
            raise ValueError(
                f"ConText rule {rule.literal!r}: only token-list patterns are supported"
            )
        out: list[_Element] = []
        for el in pattern:
            unknown = set(el) - {"LOWER", "IS_PUNCT", "OP", "SHAPE"}
            op = el.get("OP", "")
            if unknown or op not in ("", "?", "*", "+"):
                raise ValueError(
                    f"ConText rule {rule.literal!r}: unsupported pattern element {el} "
                    "(use LOWER, SHAPE, IS_PUNCT and OP ?, *, +)"
                )
            lower = el.get("LOWER")
            values: frozenset[str] | None = None
            if isinstance(lower, str):
                values = frozenset([lower.lower()])
            elif isinstance(lower, dict):
                values = frozenset(str(v).lower() for v in lower["IN"])
            punct = bool(el.get("IS_PUNCT", False))
            shape = str(el.get("SHAPE", ""))
            if op == "+":
                out.append((values, punct, "", shape))
                op = "*"
            out.append((values, punct, op, shape))
        return out

    @staticmethod
    def _first_lowers(elements: list[_Element]) -> set[str] | None:
        firsts: set[str] = set()
        for values, _punct, op, _shape in elements:
            if values is None:
                return None
            firsts |= values
            if op not in ("?", "*"):
                return firsts
        return None  # every element optional: try everywhere

    def __call__(self, doc: Doc) -> list[tuple[Any, int, int]]:
        """``(rule, start, end)`` of the cues in ``doc`` (token offsets into ``doc``)."""
        from medspacy.common.util import prune_overlapping_matches

        keep: list[int] = []
        lowers: list[str] = []
        puncts: list[bool] = []
        shapes: list[str] = []
        for t in doc:
            if not t.is_space:
                keep.append(t.i)
                lowers.append(t.lower_)
                puncts.append(t.is_punct)
                shapes.append(t.shape_)
        n = len(keep)

        def test(el: _Element, i: int) -> bool:
            values, punct, _, shape = el
            return (
                (values is None or lowers[i] in values)
                and (not punct or puncts[i])
                and (not shape or shapes[i] == shape)
            )

        def longest(elements: list[_Element], k: int, i: int) -> int:
            if k == len(elements):
                return i
            el = elements[k]
            best = longest(elements, k + 1, i) if el[2] in ("?", "*") else -1
            if i < n and test(el, i):
                nxt = k if el[2] == "*" else k + 1
                best = max(best, longest(elements, nxt, i + 1))
            return best

        found: list[tuple[int, int, int]] = []
        for i, word in enumerate(lowers):
            for idx in (*self._by_first.get(word, ()), *self._any_first):
                end = longest(self._compiled[idx], 0, i)
                if end > i:
                    found.append((idx, i, end))
        found = prune_overlapping_matches(found) if found else found
        return [(self.rules[idx], keep[s], keep[e - 1] + 1) for idx, s, e in found]


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
        window_tokens: int = 256,
    ) -> None:
        from medspacy.context import ConText

        register_extensions()
        ConText.register_graph_attributes()  # Span._.modifiers, Doc._.context_graph
        self.name = name
        self.span_group = span_group
        self.use_sections = use_sections
        self.family_sections = frozenset(family_sections)
        self.historical_sections = frozenset(historical_sections)
        self.window_tokens = max(1, window_tokens)
        context_rules, terminating = load_context_rules(rules)
        for rule in context_rules:
            # As ConText(terminating_types=...) does. A TERMINATE rule ("but", "however")
            # ends the scope of every category anyway.
            for other in terminating.get(rule.category.upper(), ()):
                rule.terminated_by.add(other.upper())
        # Longest match wins among overlapping cues ("no history of" over "history").
        self._matcher = CueMatcher(nlp, context_rules)

    def cue_categories(self, doc: Doc) -> set[str]:
        """Categories of every cue in ``doc`` (pseudo-cues and terminations left out)."""
        cats: set[str] = set()
        for rule, _start, _end in self._matcher(doc):
            if rule.direction not in ("PSEUDO", "TERMINATE"):
                cats.add(rule.category)
                cats.update(str(c).upper() for c in (rule.metadata or {}).get("also", ()))
        return cats

    def _modifiers(self, doc: Doc) -> list[Any]:
        from medspacy.context.context_modifier import ConTextModifier

        return [ConTextModifier(rule, start, end, doc) for rule, start, end in self._matcher(doc)]

    def __call__(self, doc: Doc) -> Doc:
        from medspacy.context.context_graph import ConTextGraph

        if self.span_group not in doc.spans or len(doc.spans[self.span_group]) == 0:
            return doc
        if not doc.has_annotation("SENT_START"):
            raise ValueError(
                "clinicode_assertion needs sentence boundaries: add a sentencizer before it"
            )
        targets = list(doc.spans[self.span_group])
        for span in targets:
            span._.modifiers = ()
        graph = ConTextGraph(prune_on_modifier_overlap=False)
        graph.targets = targets
        # A cue inside a mention's own words is part of its name ("diabetes without
        # complication", "... not elsewhere classified"): it modifies nothing.
        interior: set[int] = set()
        for span in targets:
            interior.update(range(span.start + 1, span.end))
        graph.modifiers = [
            m
            for m in self._modifiers(doc)
            if not (m.modifier_span[0] in interior and m.modifier_span[1] - 1 in interior)
        ]
        graph.edges = self._edges_by_sentence(doc, targets, graph.modifiers, self.window_tokens)
        for target, modifier in graph.edges:
            target._.modifiers += (modifier,)
        doc._.context_graph = graph
        # ConText never lets a cue modify a mention it overlaps. A forward historical cue that
        # opens the mention ("status post CABG", "history of MI") still dates it.
        prefix_mods: dict[int, list[Any]] = {}
        for mod in graph.modifiers:
            if mod.category in _PREFIX_CATEGORIES and mod.direction == "FORWARD":
                prefix_mods.setdefault(mod.modifier_span[0], []).append(mod)
        for span in doc.spans[self.span_group]:
            self._set_attributes(span, prefix_mods)
        return doc

    @staticmethod
    def _edges_by_sentence(
        doc: Doc, targets: list[Span], modifiers: list[Any], window: int = 256
    ) -> list[Any]:
        """ConText's scope and edge passes, run sentence by sentence.

        Scopes never cross a sentence boundary, so this is what ``ConTextGraph`` computes over
        the whole doc, without its modifiers x modifiers and modifiers x targets cost on long
        notes. A sentence over ``window`` tokens ("no pneumonia. " a thousand times, which is
        one sentence) is cut into windows of that many tokens, which bounds the cost per
        token; the cut is named in ``doc._.limits``.
        """
        from medspacy.context.context_graph import ConTextGraph

        part_of = [(0, 0)] * len(doc)
        long_sents = 0
        for k, sent in enumerate(doc.sents):
            long_sents += len(sent) > window
            for i in range(sent.start, sent.end):
                part_of[i] = (k, (i - sent.start) // window)
        by_sent: dict[tuple[int, int], tuple[list[Span], list[Any]]] = {}
        for span in targets:
            by_sent.setdefault(part_of[span.start], ([], []))[0].append(span)
        for mod in modifiers:
            group = by_sent.get(part_of[mod.modifier_span[0]])
            if group is not None:
                group[1].append(mod)
        if long_sents and modifiers:
            add_limit(
                doc,
                f"{long_sents} sentence(s) over {window} tokens: assertion cues were read "
                f"within windows of {window} tokens",
            )
        edges: list[Any] = []
        for sent_targets, sent_mods in by_sent.values():
            if not sent_mods:
                continue
            part = ConTextGraph(prune_on_modifier_overlap=False)
            part.targets = sent_targets
            part.modifiers = sent_mods
            part.update_scopes()
            part.apply_modifiers()
            edges.extend(part.edges)
        return edges

    def _set_attributes(self, span: Span, prefix_mods: dict[int, list[Any]]) -> None:
        cues: dict[str, str] = {}
        doc = span.doc
        for mod in (*prefix_mods.get(span.start, ()), *span._.modifiers):
            start, end = mod.modifier_span
            if start < span.end and span.start < end and start != span.start:
                # A cue overlapping the mention is part of its name ("... without complication").
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
            elif (
                section in self.historical_sections
                and temporality == "Recent"
                and CURRENT not in cues
            ):
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
        "window_tokens": 256,
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
    window_tokens: int,
) -> Assertion:
    return Assertion(
        nlp,
        name=name,
        rules=rules,
        span_group=span_group,
        use_sections=use_sections,
        family_sections=family_sections,
        historical_sections=historical_sections,
        window_tokens=window_tokens,
    )
