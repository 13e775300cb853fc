"""Mentions: terminology-driven matching of conditions, findings, procedures and medications.

Each sentence is cut into runs of tokens between hard punctuation (``. ; : , ( )``) and line
breaks. Inside a run, every window of up to ``max_words`` content tokens is turned into a
bag-of-stems key (abbreviations replaced by their expansions, function words and laterality
dropped, inflections folded) and looked up in the lexicon (:mod:`clinicode.nlp.lexicon`), so
"femur fracture", "fracture of the left femur" and "fractured femur" all hit the same entry.

Overlaps are resolved longest first; a span inside an accepted one is kept only when it is one
side of a connector ("with", "and", "due to" ...) and carries a different concept (its best code
category is not among the outer span's best), so "diabetic nephropathy" survives inside
"type 2 diabetes with diabetic nephropathy" while "CKD" inside "CKD stage 3" and "pain" inside
"chest pain" do not.

Spans go to ``doc.spans["mentions"]`` with ``span.label_`` = kind and ``span._.concepts``.
"""

from functools import lru_cache

from spacy.language import Language
from spacy.tokens import Doc, Span

from clinicode.nlp.abbreviations import expansions
from clinicode.nlp.lexicon import LexEntry, Lexicon, load_lexicon
from clinicode.nlp.resources import load_resource
from clinicode.nlp.text import WORD_RE, Normalizer, get_normalizer, lemma
from clinicode.nlp.tokenizer import add_limit

SPAN_GROUP = "mentions"


@lru_cache(maxsize=1)
def _connectors() -> frozenset[str]:
    """Words that may join two conditions inside one mention ("with", "due to": ``words.json``)."""
    return frozenset(load_resource("words.json")["mention_connectors"])


@lru_cache(maxsize=1)
def acronym_words() -> frozenset[str]:
    """Acronyms spelled like an everyday word ("AIDS", "PIN", "TRAPS"): a word names one only
    written in capitals ("hearing aids" is no AIDS: ``words.json``)."""
    return frozenset(load_resource("words.json")["acronym_words"])


def lower_acronym(word: str) -> bool:
    """Whether ``word`` spells an acronym of :func:`acronym_words` (or its plural: "pins")
    but not in capitals."""
    if word.isupper():
        return False
    low, acronyms = word.lower(), acronym_words()
    return low in acronyms or lemma(low) in acronyms


_BARRIERS = frozenset({".", ";", ":", ",", "(", ")", "[", "]", "!", "?", "|", '"', "=", "+"})


def register_extensions() -> None:
    for name, default in (("concepts", ()), ("match_priority", 9), ("normalized", "")):
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)


def concept_category(concept: str) -> str:
    """``ICD-10-CM:E11.22`` -> ``ICD-10-CM:E11``; PCS/CPT/HCPCS codes -> first 3 characters."""
    system, _, code = concept.partition(":")
    return f"{system}:{code.split('.')[0][:3]}"


@Language.factory(
    "clinicode_mentions",
    default_config={
        "lexicon_path": "",
        "max_words": 10,
        "keep_nested": True,
        "max_tokens": 32,
        "max_mentions": 3000,
    },
)
def make_mentions(
    nlp: Language,
    name: str,
    lexicon_path: str,
    max_words: int,
    keep_nested: bool,
    max_tokens: int,
    max_mentions: int,
) -> "MentionMatcher":
    return MentionMatcher(
        name=name,
        lexicon_path=lexicon_path,
        max_words=max_words,
        keep_nested=keep_nested,
        max_tokens=max_tokens,
        max_mentions=max_mentions,
    )


class MentionMatcher:
    """Puts mention spans into ``doc.spans["mentions"]``.

    Work is bounded per note: a mention spans at most ``max_tokens`` tokens (function words
    and hyphens included) and a note keeps at most ``max_mentions`` mentions, the first ones;
    a cut is recorded on ``doc._.limits`` (the result's ``warnings``).
    """

    def __init__(
        self,
        name: str = "clinicode_mentions",
        lexicon_path: str = "",
        max_words: int = 10,
        keep_nested: bool = True,
        max_tokens: int = 32,
        max_mentions: int = 3000,
    ) -> None:
        if not lexicon_path:
            raise ValueError("clinicode_mentions needs lexicon_path (built by load_pipeline)")
        register_extensions()
        self.name = name
        self.lexicon: Lexicon = load_lexicon(lexicon_path)
        self.max_words = max(1, min(max_words, self.lexicon.max_words))
        self.keep_nested = keep_nested
        self.max_tokens = max(1, max_tokens)
        self.max_mentions = max(1, max_mentions)
        self.norm: Normalizer = get_normalizer()
        self._token_cache: dict[str, tuple[tuple[str, ...] | None, str]] = {}

    # -- token features -----------------------------------------------------------------
    def _features(self, text: str) -> tuple[tuple[str, ...] | None, str]:
        if text.isspace():
            return (None if "\n" in text else ()), ""
        if text in _BARRIERS or not any(c.isalnum() for c in text):
            return (() if text in ("-", "/", "'", "&") else None), ""
        low = text.lower()
        found = WORD_RE.findall(low)
        out: list[str] = []
        for w in found:
            out.extend(self.norm.word_stems(w))
        return tuple(out), " ".join(lemma(w) for w in found)

    def _token_stems(self, doc: Doc) -> tuple[list[tuple[str, ...] | None], list[str]]:
        """Per token: stems (empty tuple: skippable word; None: barrier) and readable words."""
        exp = expansions(doc)
        stems: list[tuple[str, ...] | None] = [None] * len(doc)
        words: list[str] = [""] * len(doc)
        skip_until = -1
        headers: set[int] = set()
        if Doc.has_extension("sections"):
            for sec in doc._.sections:
                if sec.category is not None:
                    headers.update(range(sec.title_start, sec.title_end))
        cache = self._token_cache
        for i, text in enumerate(t.text for t in doc):
            if i in headers:
                continue
            if i < skip_until:
                stems[i] = ()
                continue
            if i in exp:
                end, expansion = exp[i]
                stems[i] = tuple(self.norm.stems(expansion))
                words[i] = expansion
                skip_until = end
                continue
            hit = cache.get(text)
            if hit is None:
                hit = self._features(text)
                if len(cache) < 100_000:
                    cache[text] = hit
            stems[i], words[i] = hit
        return stems, words

    # -- matching -------------------------------------------------------------------------
    def _candidates(
        self, doc: Doc, stems: list[tuple[str, ...] | None]
    ) -> tuple[list[tuple[int, int, LexEntry]], int]:
        """Lexicon hits ``(start, end, entry)``, and how many windows the token cap cut."""
        out: list[tuple[int, int, LexEntry]] = []
        sent_starts = (
            [v == 1 for v in doc.to_array("SENT_START").tolist()]
            if doc.has_annotation("SENT_START")
            else None
        )
        run: list[int] = []  # token indices of content tokens in the current run
        cut = 0

        vocab = self.lexicon.vocab
        max_words = self.max_words
        max_tokens = self.max_tokens
        entries: dict[str, LexEntry | None] = {}  # a repeated key is unpacked once per note

        def lookup(key: str) -> LexEntry | None:
            if key not in entries:
                entries[key] = self.lexicon.get(key)
            return entries[key]

        known = [s is not None and vocab.issuperset(s) for s in stems]  # once per token
        stem_sets = [
            frozenset(s) if s is not None and k else None for s, k in zip(stems, known, strict=True)
        ]

        def flush() -> None:
            nonlocal cut
            n_run = len(run)
            for a in range(n_run):
                bag: set[str] = set()
                entry: LexEntry | None = None
                for b in range(a, min(a + max_words, n_run)):
                    if run[b] - run[a] >= max_tokens:
                        cut += 1
                        break  # too many tokens between the words: not one mention
                    if not known[run[b]]:
                        break  # no key holds this word: no longer window can match
                    s = stem_sets[run[b]]
                    assert s is not None
                    if not bag.issuperset(s):  # a repeated word keeps the key (and entry)
                        bag.update(s)
                        entry = lookup(" ".join(sorted(bag)))
                    if entry is not None and not (b == a and lower_acronym(doc[run[a]].text)):
                        out.append((run[a], run[b] + 1, entry))
            run.clear()

        for i, s in enumerate(stems):
            if s is None or (sent_starts is not None and sent_starts[i] and i > 0):
                flush()
                if s is None:
                    continue
            if s:
                run.append(i)
        flush()
        return out, cut

    @staticmethod
    def _is_component(
        conn: list[bool], start: int, end: int, outer_start: int, outer_end: int
    ) -> bool:
        """True when [start, end) is one side of a connector inside the outer span:
        "diabetic nephropathy" in "type 2 diabetes with diabetic nephropathy" (``conn[i]``:
        token i is a connector)."""
        left_ok = start == outer_start or conn[start - 1]
        right_ok = end == outer_end or conn[end]
        touches_connector = (start > outer_start and conn[start - 1]) or (
            end < outer_end and conn[end]
        )
        return left_ok and right_ok and touches_connector

    @classmethod
    def _select(
        cls, doc: Doc, cands: list[tuple[int, int, LexEntry]], keep_nested: bool
    ) -> list[tuple[int, int, LexEntry]]:
        """Longest first; a candidate is checked against the chosen spans that share a token
        with it (found through ``owners``, so the cost is linear in the candidates)."""
        cands.sort(key=lambda c: (-(c[1] - c[0]), c[2].priority, c[0]))
        connectors = _connectors()
        conn = [t.lower_ in connectors for t in doc] if cands else []
        chosen: list[tuple[int, int, LexEntry]] = []
        owners: dict[int, list[int]] = {}  # token -> indices of the chosen spans covering it
        for start, end, entry in cands:
            if cls._fits(conn, start, end, entry, chosen, owners, keep_nested):
                for t in range(start, end):
                    owners.setdefault(t, []).append(len(chosen))
                chosen.append((start, end, entry))
        chosen.sort(key=lambda c: (c[0], -c[1]))
        return chosen

    @classmethod
    def _fits(
        cls,
        conn: list[bool],
        start: int,
        end: int,
        entry: LexEntry,
        chosen: list[tuple[int, int, LexEntry]],
        owners: dict[int, list[int]],
        keep_nested: bool,
    ) -> bool:
        """Whether [start, end) may stay beside every chosen span it shares a token with
        (stops at the first that refuses it: a long run of one repeated word gives many
        windows over the same tokens, each refused at its first token)."""
        seen: set[int] = set()
        for t in range(start, end):
            for k in owners.get(t, ()):
                if k not in seen:
                    seen.add(k)
                    if not cls._nested_ok(conn, start, end, entry, chosen[k], keep_nested):
                        return False
        return True

    @classmethod
    def _nested_ok(
        cls,
        conn: list[bool],
        start: int,
        end: int,
        entry: LexEntry,
        outer: tuple[int, int, LexEntry],
        keep_nested: bool,
    ) -> bool:
        """May [start, end) stay beside the overlapping chosen span ``outer``? Only inside it,
        as a component of a combination ("X with Y") naming another code category than the
        outer span's best concepts."""
        s2, e2, ent2 = outer
        if not (start >= s2 and end <= e2 and keep_nested):
            return False
        if not entry.concepts or not cls._is_component(conn, start, end, s2, e2):
            return False
        return concept_category(entry.concepts[0]) not in {
            concept_category(c) for c in ent2.concepts[:3]
        }

    def __call__(self, doc: Doc) -> Doc:
        stems, words = self._token_stems(doc)
        cands, cut = self._candidates(doc, stems)
        chosen = self._select(doc, cands, self.keep_nested)
        if cut:
            add_limit(doc, f"mentions longer than {self.max_tokens} tokens were not matched")
        if len(chosen) > self.max_mentions:
            add_limit(
                doc,
                f"the note has {len(chosen)} mentions; only the first {self.max_mentions} "
                "were kept (max_mentions)",
            )
            chosen = chosen[: self.max_mentions]
        spans = []
        for start, end, entry in chosen:
            # Trim leading/trailing tokens without stems (function words, hyphens).
            while start < end - 1 and not stems[start]:
                start += 1
            while end - 1 > start and not stems[end - 1]:
                end -= 1
            span = Span(doc, start, end, label=entry.kind)
            span._.concepts = entry.concepts
            span._.match_priority = entry.priority
            span._.normalized = " ".join(w for w in words[start:end] if w)
            spans.append(span)
        doc.spans[SPAN_GROUP] = spans
        return doc
