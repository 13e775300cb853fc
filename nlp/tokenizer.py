"""A tokenizer whose cost is linear in the note's length, whatever the note holds.

spaCy's tokenizer strips prefixes and suffixes one at a time, and each strip searches the whole
remaining whitespace-free chunk: a chunk made of affixes (``")" * 20000``, a line of emoji,
``"'s" * 5000``) costs its length squared, and holds the GIL while it does.
:class:`BoundedTokenizer` wraps spaCy's: a chunk longer than ``max_chunk_chars``, or holding
more than ``max_chunk_symbols`` characters that are neither word characters nor whitespace, is
cut by one linear rule instead: a word (``\\w+``), or a run of one repeated symbol (so
``")" * 20000`` is one token). Every other stretch of the note goes to spaCy unchanged, so a
note without such chunks (nearly every real one) is tokenized exactly as before.

The Doc is rebuilt from the original characters, so ``doc.text`` is the note itself and every
offset stays where it was. ``doc._.limits`` lists what was done, for the result's warnings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from spacy.symbols import ORTH
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc
from spacy.vocab import Vocab

LIMITS_EXT = "limits"
TEXT_EXT = "note_text"  # the note as tokenized: ``doc.text`` joins every token again per call
_SYMBOL = re.compile(r"[^\w\s]")
_LINEAR_TOKEN = re.compile(r"\w+|([^\w\s])\1*")


def register_limits_extension() -> None:
    if not Doc.has_extension(LIMITS_EXT):
        Doc.set_extension(LIMITS_EXT, default=None)
    if not Doc.has_extension(TEXT_EXT):
        Doc.set_extension(TEXT_EXT, default=None)


def doc_text(doc: Doc) -> str:
    """``doc.text``, read once: the text the tokenizer kept (spaCy joins the tokens again on
    every ``doc.text``, a note-length cost per call)."""
    kept = doc._.get(TEXT_EXT) if Doc.has_extension(TEXT_EXT) else None
    if isinstance(kept, str):
        end = doc[-1].idx + len(doc[-1].text_with_ws) if len(doc) else 0
        if end == len(kept):  # the same doc (a check in constant time)
            return kept
    return doc.text


def doc_limits(doc: Doc) -> list[str]:
    """What a bounded component cut short in ``doc`` (empty when nothing was)."""
    if not Doc.has_extension(LIMITS_EXT):
        return []
    value = doc._.get(LIMITS_EXT)
    return list(value) if value else []


def add_limit(doc: Doc, message: str) -> None:
    register_limits_extension()
    current = doc._.get(LIMITS_EXT) or []
    if message not in current:
        doc._.set(LIMITS_EXT, [*current, message])


def drop_noop_space_rules(tokenizer: Tokenizer) -> list[str]:
    """Remove spaCy's special cases that only say a whitespace chunk is itself (``"\\n"``,
    ``"\\t"``, ``" "``); returns their keys.

    They change no token: such a chunk is one token without them too (checked on every CodiEsp
    and MTSamples note, text, offsets and lexical attributes alike). But a special case found
    in a chunk makes spaCy run its special-case matcher over the whole Doc afterwards, and
    every note with a line break has one: that pass was 80 % of tokenizing a CodiEsp note
    (4.9 ms of 5.8). Special cases that set anything else (``"\\xa0"``'s norm) stay.
    """
    rules = tokenizer.rules or {}
    noop = [k for k, v in rules.items() if k.isspace() and v == [{ORTH: k}]]
    if noop:
        tokenizer.rules = {k: v for k, v in rules.items() if k not in noop}
    return noop


def linear_tokens(chunk: str) -> list[str]:
    """A whitespace-free chunk cut into words and runs of one repeated symbol (linear time;
    ``"".join(result) == chunk``)."""
    return [m.group() for m in _LINEAR_TOKEN.finditer(chunk)]


class BoundedTokenizer:
    """spaCy's tokenizer, with hostile chunks cut by a linear rule (see the module doc)."""

    def __init__(
        self,
        inner: Callable[[str], Doc],
        vocab: Vocab,
        *,
        max_chunk_chars: int = 64,
        max_chunk_symbols: int = 8,
    ) -> None:
        self.inner = inner
        self.vocab = vocab
        self.max_chunk_chars = max_chunk_chars
        self.max_chunk_symbols = max_chunk_symbols
        # only a chunk this long can break a bound: most words are never looked at
        shortest = min(max_chunk_chars, max_chunk_symbols) + 1
        self._long_chunk = re.compile(rf"\S{{{shortest},}}")
        register_limits_extension()

    def __getattr__(self, name: str) -> Any:  # rules, prefix_search ... of spaCy's tokenizer
        return getattr(self.inner, name)

    def _hostile(self, chunk: str) -> bool:
        if len(chunk) > self.max_chunk_chars:
            return True
        return len(_SYMBOL.findall(chunk)) > self.max_chunk_symbols

    def __call__(self, text: str) -> Doc:
        hostile = [m.span() for m in self._long_chunk.finditer(text) if self._hostile(m.group())]
        if not hostile:
            doc = self.inner(text)
            doc._.set(TEXT_EXT, text)
            return doc
        words: list[str] = []
        spaces: list[bool] = []
        pos = 0
        for start, end in hostile:
            self._add_inner(text[pos:start], words, spaces)
            for tok in linear_tokens(text[start:end]):
                words.append(tok)
                spaces.append(False)
            pos = end
            if text.startswith(" ", end):  # the chunk's trailing space, as spaCy keeps it
                spaces[-1] = True
                pos = end + 1
        self._add_inner(text[pos:], words, spaces)
        doc = Doc(self.vocab, words=words, spaces=spaces)
        kept = sum(map(len, words)) + sum(spaces)  # words are slices of text, in order
        assert kept == len(text), "bounded tokenizer lost characters"
        doc._.set(TEXT_EXT, text)
        add_limit(
            doc,
            f"{len(hostile)} long run(s) of symbols or unbroken characters were tokenized "
            f"coarsely (chunks over {self.max_chunk_chars} characters or "
            f"{self.max_chunk_symbols} symbols)",
        )
        return doc

    def _add_inner(self, segment: str, words: list[str], spaces: list[bool]) -> None:
        if not segment:
            return
        for tok in self.inner(segment):
            words.append(tok.text)
            spaces.append(bool(tok.whitespace_))
