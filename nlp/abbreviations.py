"""Abbreviations: definitions in the text (scispaCy) plus a curated clinical table.

Results go to ``doc.spans["abbreviations"]``: each span is the short form with
``span.label_`` = its expansion in lower case ("congestive heart failure"). The mention
matcher reads them so that "DM2 with CKD" matches "type 2 diabetes mellitus with chronic kidney
disease". A definition in the note ("... Guillain-Barre syndrome (GBS) ...") wins over the
table. Ambiguous forms (MS, PE, RA, CA, PT, BS) are resolved from cue words in the same
sentence and left unexpanded when no cue decides.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from clinicode.nlp.resources import load_resource
from clinicode.nlp.sentences import SentenceIndex
from clinicode.nlp.tokenizer import doc_text

SPAN_GROUP = "abbreviations"


@dataclass(frozen=True)
class Sense:
    expansion: str
    cues: tuple[str, ...]


@dataclass(frozen=True)
class AbbrevEntry:
    form: str
    senses: tuple[Sense, ...]
    default: str | None
    exact_case: bool


@lru_cache(maxsize=1)
def abbreviation_table() -> dict[str, AbbrevEntry]:
    """The curated table from ``abbreviations.json`` keyed by written form."""
    out: dict[str, AbbrevEntry] = {}
    for form, spec in load_resource("abbreviations.json")["abbreviations"].items():
        if "senses" in spec:
            senses = tuple(
                Sense(s["expansion"].lower(), tuple(c.lower() for c in s.get("cues", ())))
                for s in spec["senses"]
            )
            default = spec.get("default")
        else:
            senses = (Sense(spec["expansion"].lower(), ()),)
            default = spec["expansion"].lower()
        out[form] = AbbrevEntry(form, senses, default, spec.get("case") == "exact")
    return out


def resolve_sense(entry: AbbrevEntry, context: str) -> str | None:
    """The expansion whose cues occur most in ``context`` (lower case); the default on a tie at 0."""
    if len(entry.senses) == 1:
        return entry.senses[0].expansion
    best, best_hits = entry.default, 0
    for sense in entry.senses:
        hits = sum(1 for cue in sense.cues if cue in context)
        if hits > best_hits:
            best, best_hits = sense.expansion, hits
    return best


@Language.factory(
    "clinicode_abbreviations", default_config={"use_scispacy": True, "context_chars": 120}
)
def make_abbreviations(
    nlp: Language, name: str, use_scispacy: bool, context_chars: int
) -> "AbbreviationExpander":
    return AbbreviationExpander(
        nlp, name=name, use_scispacy=use_scispacy, context_chars=context_chars
    )


class AbbreviationExpander:
    """Finds abbreviations and their expansions; writes ``doc.spans["abbreviations"]``."""

    def __init__(
        self,
        nlp: Language,
        name: str = "clinicode_abbreviations",
        use_scispacy: bool = True,
        context_chars: int = 120,
    ) -> None:
        self.name = name
        self.context_chars = context_chars
        self.table = abbreviation_table()
        self._exact = PhraseMatcher(nlp.vocab, attr="ORTH")
        self._lower = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._by_key: dict[str, AbbrevEntry] = {}
        for form, entry in self.table.items():
            key = f"abbr:{form}"
            self._by_key[key] = entry
            doc = nlp.make_doc(form)
            (self._exact if entry.exact_case else self._lower).add(key, [doc])
        self._scispacy: Any = None
        if use_scispacy:
            from scispacy.abbreviation import AbbreviationDetector

            self._scispacy = AbbreviationDetector(nlp)

    def _defined_in_text(self, doc: Doc) -> list[Span]:
        if self._scispacy is None:
            return []
        doc._.abbreviations = []  # scispaCy's extension default is a shared list
        self._scispacy(doc)
        out = []
        for short in doc._.abbreviations:
            long_form = short._.long_form
            if long_form is None or short.text == long_form.text:
                continue
            out.append(Span(doc, short.start, short.end, label=long_form.text.lower()))
        doc._.abbreviations = []
        return out

    def __call__(self, doc: Doc) -> Doc:
        spans = self._defined_in_text(doc)
        taken = {i for s in spans for i in range(s.start, s.end)}
        defined_forms = {s.text for s in spans}
        matches = [*self._exact(doc), *self._lower(doc)]
        matches.sort(key=lambda m: (m[1], -(m[2] - m[1])))
        text = doc_text(doc)
        sents = SentenceIndex(doc)
        for match_id, start, end in matches:
            if any(i in taken for i in range(start, end)):
                continue
            span = doc[start:end]
            if span.text in defined_forms:
                continue
            entry = self._by_key[doc.vocab.strings[match_id]]
            if len(entry.senses) > 1:
                s_lo, s_hi = sents.bounds(start)
                lo = max(s_lo, span.start_char - self.context_chars)
                hi = min(s_hi, span.end_char + self.context_chars)
                context = (text[lo : span.start_char] + " " + text[span.end_char : hi]).lower()
                expansion = resolve_sense(entry, context)
            else:
                expansion = entry.senses[0].expansion
            if not expansion:
                continue
            spans.append(Span(doc, start, end, label=expansion))
            taken.update(range(start, end))
        spans.sort(key=lambda s: s.start)
        doc.spans[SPAN_GROUP] = spans
        return doc


def expansions(doc: Doc) -> dict[int, tuple[int, str]]:
    """``start token -> (end token, expansion)`` for the abbreviations found in ``doc``."""
    if SPAN_GROUP not in doc.spans:
        return {}
    return {s.start: (s.end, s.label_) for s in doc.spans[SPAN_GROUP]}
