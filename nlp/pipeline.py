"""The clinical NLP pipeline, built by one function from a typed config.

    pipe = load_pipeline()            # cached; the KB from open_kb()
    mentions = pipe.extract(note)     # list[clinicode.schema.Mention]

Components, in order (each registered with ``@Language.factory``):
``clinicode_sectionizer`` -> ``clinicode_sentences`` -> ``clinicode_abbreviations`` ->
``clinicode_mentions`` -> ``clinicode_assertion`` (nlp/assertion.py) -> ``clinicode_attributes``.
"""

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from spacy.language import Language
from spacy.tokens import Doc, Span

# Importing the component modules registers their factories.
from clinicode.deadline import check_deadline
from clinicode.nlp import abbreviations as _abbreviations  # noqa: F401
from clinicode.nlp import attributes as _attributes  # noqa: F401
from clinicode.nlp import mentions as _mentions
from clinicode.nlp import sections as _sections
from clinicode.nlp import sentences as _sentences  # noqa: F401
from clinicode.nlp.lexicon import PRIORITY_COMPONENT, ensure_lexicon
from clinicode.nlp.sentences import SentenceIndex
from clinicode.nlp.tokenizer import (
    BoundedTokenizer,
    doc_limits,
    doc_text,
    drop_noop_space_rules,
)
from clinicode.schema import Assertion as AssertionLabel
from clinicode.schema import Attribute, Mention


@dataclass(frozen=True)
class NlpConfig:
    """Everything that shapes the pipeline. Hashable, so pipelines are cached per config."""

    sections: bool = True
    sections_require_start_line: bool = True
    abbreviations: bool = True
    scispacy_abbreviations: bool = True
    abbreviation_context_chars: int = 120
    assertion: bool = True
    assertion_rules: str = "clinicode"
    attributes: bool = True
    max_words: int = 10
    max_concepts: int = 30
    keep_nested: bool = True
    batch_size: int = 32
    # Bounded work per note (``nlp.tokenizer``, ``nlp.mentions``): whitespace-free chunks over
    # ``max_chunk_chars`` characters or ``max_chunk_symbols`` symbols are tokenized by a linear
    # rule; a mention spans at most ``max_mention_tokens`` tokens; a note keeps at most
    # ``max_mentions`` mentions; assertion cues are read within windows of
    # ``assertion_window_tokens`` tokens of a longer sentence. A cut that bites is named in the result's ``warnings``.
    max_chunk_chars: int = 64
    max_chunk_symbols: int = 8
    max_mention_tokens: int = 32
    max_mentions: int = 3000
    assertion_window_tokens: int = 256


_ASSERTION_FALLBACK = "clinicode_assertion_fallback"


@Language.factory(_ASSERTION_FALLBACK, default_config={"span_group": "mentions"})
def _make_fallback(nlp: Language, name: str, span_group: str) -> "PresentAssertion":
    return PresentAssertion(span_group=span_group)


class PresentAssertion:
    """Stand-in when ``clinicode_assertion`` is unavailable: every mention is ``present``."""

    def __init__(self, span_group: str = "mentions") -> None:
        self.span_group = span_group
        for name, default in (("assertion", "present"), ("assertion_cue", None)):
            if not Span.has_extension(name):
                Span.set_extension(name, default=default)

    def __call__(self, doc: Doc) -> Doc:
        return doc


def _add_assertion(nlp: Language, config: NlpConfig) -> str:
    try:
        from clinicode.nlp import assertion as _assertion  # noqa: F401
    except ImportError:
        nlp.add_pipe(_ASSERTION_FALLBACK)
        return _ASSERTION_FALLBACK
    nlp.add_pipe(
        "clinicode_assertion",
        config={"rules": config.assertion_rules, "window_tokens": config.assertion_window_tokens},
    )
    return "clinicode_assertion"


def build_nlp(config: NlpConfig, lexicon_path: Path) -> Language:
    """The spaCy pipeline for ``config`` over the lexicon file at ``lexicon_path``."""
    import spacy

    # medspaCy's and scispaCy's internal matchers are empty by design; their W036 warning is noise.
    warnings.filterwarnings("ignore", message=r".*\[W036\]")
    nlp = spacy.blank("en")
    drop_noop_space_rules(nlp.tokenizer)
    nlp.tokenizer = BoundedTokenizer(
        nlp.tokenizer,
        nlp.vocab,
        max_chunk_chars=config.max_chunk_chars,
        max_chunk_symbols=config.max_chunk_symbols,
    )
    if config.sections:
        nlp.add_pipe(
            "clinicode_sectionizer",
            config={"require_start_line": config.sections_require_start_line},
        )
    nlp.add_pipe("clinicode_sentences")
    if config.abbreviations:
        nlp.add_pipe(
            "clinicode_abbreviations",
            config={
                "use_scispacy": config.scispacy_abbreviations,
                "context_chars": config.abbreviation_context_chars,
            },
        )
    nlp.add_pipe(
        "clinicode_mentions",
        config={
            "lexicon_path": str(lexicon_path),
            "max_words": config.max_words,
            "keep_nested": config.keep_nested,
            "max_tokens": config.max_mention_tokens,
            "max_mentions": config.max_mentions,
        },
    )
    if config.assertion:
        _add_assertion(nlp, config)
    else:
        nlp.add_pipe(_ASSERTION_FALLBACK)
    if config.attributes:
        nlp.add_pipe("clinicode_attributes")
    return nlp


def _section_getter() -> Any:
    """``(doc, token index) -> section category`` (medspaCy's token extension), or None."""
    from spacy.tokens import Token

    if not Token.has_extension("section_category"):
        return lambda doc, i: None

    def get(doc: Doc, i: int) -> str | None:
        value = doc[i]._.get("section_category")
        return str(value) if value else None

    return get


def _source(span: Span, spans: list[Span]) -> str:
    """How a mention was found: ``component`` for words that name a condition only as part of
    code titles ("acute exacerbation") found inside a longer mention ("asthma with acute
    exacerbation"), whose code they belong to; else ``terminology`` or ``synonym``."""
    if not span._.concepts:
        return "synonym"
    if span._.match_priority >= PRIORITY_COMPONENT and any(
        o is not span and o.start <= span.start and span.end <= o.end and len(o) > len(span)
        for o in spans
    ):
        return "component"
    return "terminology"


def doc_to_mentions(doc: Doc) -> list[Mention]:
    """The :class:`Mention` list of a processed doc (offsets into ``doc.text``)."""
    if _mentions.SPAN_GROUP not in doc.spans:
        return []
    text = doc_text(doc)
    sents = SentenceIndex(doc)
    has_attrs = Span.has_extension("attributes")
    has_assertion = Span.has_extension("assertion")
    section_of = _section_getter()
    out: list[Mention] = []
    spans = list(doc.spans[_mentions.SPAN_GROUP])
    for span in spans:
        sent_start, sent_end = sents.bounds(span.start)
        attrs = []
        if has_attrs:
            for name, value, a_start, a_end in span._.attributes:
                attrs.append(
                    Attribute(
                        name=name, value=value, start=a_start, end=a_end, text=text[a_start:a_end]
                    )
                )
        assertion = span._.get("assertion") if has_assertion else "present"
        cue = span._.get("assertion_cue") if has_assertion else None
        out.append(
            Mention(
                start=span.start_char,
                end=span.end_char,
                text=text[span.start_char : span.end_char],
                normalized=span._.normalized or span.text.lower(),
                kind=span.label_,
                section=section_of(doc, span.start),
                sentence_start=sent_start,
                sentence_end=sent_end,
                assertion=cast(AssertionLabel, assertion or "present"),
                assertion_cue=cue or None,
                attributes=attrs,
                concepts=list(span._.concepts),
                source=_source(span, spans),
            )
        )
    return out


class ClinicalPipeline:
    """The loaded pipeline: ``extract``, ``extract_many``, ``sections`` and ``process``."""

    def __init__(self, nlp: Language, config: NlpConfig, lexicon_path: Path) -> None:
        self.nlp = nlp
        self.config = config
        self.lexicon_path = lexicon_path

    def process(self, text: str) -> Doc:
        return self.nlp(text)

    def extract(self, text: str) -> list[Mention]:
        """Mentions of one note."""
        return doc_to_mentions(self.nlp(text))

    def extract_many(self, texts: Iterable[str]) -> list[list[Mention]]:
        """Mentions of many notes (``nlp.pipe``)."""
        return [
            doc_to_mentions(doc)
            for doc in self.nlp.pipe(list(texts), batch_size=self.config.batch_size)
        ]

    def extract_checked(self, texts: Sequence[str]) -> list[tuple[list[Mention], list[str]]]:
        """Mentions of each note with what the pipeline's bounds cut short in it (the
        result's warnings; empty for nearly every note)."""
        if len(texts) != 1:
            out = []
            for doc in self.nlp.pipe(list(texts), batch_size=self.config.batch_size):
                check_deadline()  # between the notes of a batch
                out.append((doc_to_mentions(doc), doc_limits(doc)))
            return out
        # One note: the components one by one, checking the caller's deadline between them.
        doc = self.nlp.make_doc(texts[0])
        for _name, proc in self.nlp.pipeline:
            check_deadline()
            doc = proc(doc)
        return [(doc_to_mentions(doc), doc_limits(doc))]

    def sections(self, text: str | Doc) -> list[dict[str, Any]]:
        """``[{category, start, end, header}]`` of a note (or an already processed doc)."""
        doc = text if isinstance(text, Doc) else self.nlp(text)
        return _sections.doc_sections(doc)

    def describe(self) -> dict[str, Any]:
        return {
            "components": list(self.nlp.pipe_names),
            "config": asdict(self.config),
            "lexicon": str(self.lexicon_path),
        }


def cache_dir() -> Path:
    from clinicode.settings import get_settings

    return get_settings().data_dir / "cache" / "nlp"


def load_pipeline(
    kb: Any = None, config: NlpConfig | None = None, *, cache: Path | None = None
) -> ClinicalPipeline:
    """The pipeline for ``kb`` (default: ``open_kb()``) and ``config``, kept on the KB object
    (``KnowledgeBase.derived``: built once per KB and configuration, forgotten when the KB's
    content changes through it).

    The first call for a new KB version builds the mention lexicon (~15 s) and caches it under
    ``cache`` (default: ``<data dir>/cache/nlp``); later loads take a few seconds.
    """
    cfg = config or NlpConfig()
    if kb is None:
        from clinicode.kb import open_kb

        kb = open_kb()
    where = cache or cache_dir()

    def build(kb: Any) -> ClinicalPipeline:
        path = ensure_lexicon(kb, where, max_concepts=cfg.max_concepts)
        return ClinicalPipeline(build_nlp(cfg, path), cfg, path)

    pipe: ClinicalPipeline = kb.derived(f"nlp_pipeline|{cfg!r}|{where}", build)
    return pipe
