"""Evidence that holds in the coding path (I.A.19): a code stands only on what the note states.

* A negated mention never supports a present code. Where a code has present and negated
  evidence, and the negated mention names words of the code's title that the present evidence
  does not ("COPD, not in exacerbation" for J44.1 *with exacerbation*; "no septic shock" for
  R65.21 *with septic shock*), the note documents the code's distinguishing condition as
  absent: the code is suppressed. Otherwise the negated spans are only removed from its
  evidence, so a coder is never shown "no septic shock" as support.
* A code whose title needs a word that the sentence of its evidence states absent ("Type 2
  diabetes, diet controlled, no complications" for E11.8 *with unspecified complications*;
  "COPD, not in exacerbation" where the negation is no mention of its own) is suppressed the same
  way: the sentence's "no", "not" and "without" parts (``documented.stated_absent``) are read
  as the layer's documented-candidates rule reads them.
* A code whose title excludes what its evidence states ("Tubal pregnancy *without intrauterine
  pregnancy*" for "intrauterine pregnancy at 28 weeks") contradicts the note: suppressed.
"""

from __future__ import annotations

import re

from clinicode.kb.text import content_words
from clinicode.models.encoder.words import keys
from clinicode.nlp.cues import negated_before
from clinicode.schema import Evidence, Mention

from .data import ICD
from .documented import Stated
from .layer import Guidelines
from .rules import rule
from .state import Item, NoteState
from .titles import documented_cfg, stated_keys, title_needs

_DUE_TO = re.compile(r"(.+?) due to ", re.I)
_PARENS = re.compile(r"\s*[\[(][^\])]*[\])]")

_NOT_PRESENT = frozenset({"negated"})  # an assertion value of the schema


def _words(text: str) -> set[str]:
    return set(content_words(text))


def _title_parts(title: str) -> tuple[set[str], set[str]]:
    """Content words of a title before and after its "without" (``(all, set())`` if none)."""
    head, sep, tail = title.lower().partition(" without ")
    return (_words(head), _words(tail)) if sep else (_words(title), set())


def _negated_axis(item: Item, title: set[str], tail: set[str]) -> Evidence | None:
    """The negated evidence naming title words that no present evidence names, if any (a
    negated mention naming the title's "without" part, "no heart failure" for *Hypertensive
    heart disease without heart failure*, supports the code)."""
    evidence = item.s.evidence
    present = {w for e in evidence if e.assertion not in _NOT_PRESENT for w in _words(e.text)}
    for e in evidence:
        words = _words(e.text)
        if e.assertion not in _NOT_PRESENT or (tail and words <= tail):
            continue
        if (words & title) - present:
            return e
    return None


def _stated_absent(note: NoteState, item: Item, title: str) -> str | None:
    """The words of ``title`` that the sentence of one of the code's present evidence mentions
    states absent and the mention itself does not name, if any (its sentence's
    "no"/"not"/"without" parts)."""
    need = set(title_needs(title)[0])
    stated = Stated.of_note(note)  # shared with the documented-candidates rule
    longest = int(documented_cfg()["stated_absent"]["max_words_to_suppress"])
    for e in item.s.evidence:
        if e.assertion in _NOT_PRESENT:
            continue
        for m in note.overlapping(e.start, e.end):
            parts = stated.absent_parts(m)
            if not parts:
                continue
            # the mention's own words outweigh the sentence: "opioid use disorder ... (no opioid
            # use x 5 months)" still names the opioid use disorder
            named = need - stated.named_by(m)
            absent = [
                " ".join(words.split())
                for words, ks in parts
                if named.intersection(ks) and len(words.split()) <= longest
            ]
            if absent:
                return ", ".join(dict.fromkeys(absent))
    return None


def _excluded_by_title(
    note: NoteState, item: Item, head: set[str], tail: set[str]
) -> Evidence | None:
    """Present evidence that states what the title's "without" part excludes (not itself
    preceded by a negation cue, as in "concussion without loss of consciousness")."""
    for e in item.s.evidence:
        words = _words(e.text)
        if e.assertion in _NOT_PRESENT or not words or not words <= tail or words <= head:
            continue
        if not negated_before(note.text, e.start):
            return e
    return None


def _head_unstated(g: Guidelines, note: NoteState, item: Item) -> str | None:
    """For a kept "<condition> due to <cause>" code, the condition when the note never names
    it: "Pseudomonas aeruginosa" in a sputum culture is no "Sepsis due to Pseudomonas"."""
    if item.fate != "keep":
        return None
    found = _DUE_TO.match(g.title(item.s.code))
    if found is None:
        return None
    needs = title_needs(found.group(1))[0]
    if not needs:
        return None
    noun = needs[-1]
    # the cause's own words state nothing ("Klebsiella pneumoniae" is no pneumonia)
    cause = _PARENS.sub(" ", g.title(item.s.code)[found.end() :]).strip()
    text = re.sub(re.escape(cause), " ", note.text, flags=re.I) if cause else note.text
    cause_keys = set(keys(cause))
    stated = stated_keys(text) | {
        k
        for m in note.mentions
        if m.assertion != "negated" and not set(keys(m.normalized)) <= cause_keys
        for k in keys(m.normalized)
    }
    if any(len(k) >= 3 and (noun in k or k in noun) for k in stated):
        return None
    return found.group(1)


def _part_of_longer(note: NoteState, item: Item) -> Mention | None:
    """The longer mention whose words a code stands on only in part: every present evidence
    span is a ``component`` mention (words that name a condition only inside code titles,
    "acute exacerbation") within a longer mention that does not name the code ("mild
    intermittent asthma with acute exacerbation" names J45.21, not J47.1 bronchiectasis)."""
    key = f"{item.s.system}:{item.s.code}"
    outer: Mention | None = None
    for e in item.s.evidence:
        if e.assertion in _NOT_PRESENT:
            continue
        at = list(note.overlapping(e.start, e.end))
        own = [m for m in at if m.start == e.start and m.end == e.end]
        if not own or any(m.source != "component" for m in own):
            return None
        longer = [m for m in at if m.start <= e.start and e.end <= m.end and m not in own]
        if not longer or any(key in m.concepts for m in longer):
            return None
        outer = longer[0]
    return outer


@rule("evidence_holds")
def rule_evidence_holds(g: Guidelines, note: NoteState) -> None:
    """Codes whose evidence does not hold: a negated distinguishing condition, or a title that
    excludes what the note states (I.A.19); negated spans never stay as a present code's
    support."""
    components = any(m.source == "component" for m in note.mentions)
    for item in list(note.items.values()):
        s = item.s
        if item.fate not in ("keep", "candidate") or s.system != ICD or not s.evidence:
            continue
        if all(e.assertion in _NOT_PRESENT for e in s.evidence):
            continue  # the assertion policy decides codes with no present evidence
        head, tail = _title_parts(g.title(s.code))
        negated = _negated_axis(item, head, tail)
        if negated is not None:
            g.drop(
                item,
                "I.A.19",
                f"'{negated.text}' is documented as absent and the code's title names it",
                fate="suppressed",
            )
            continue
        absent = _stated_absent(note, item, g.title(s.code))
        if absent is not None:
            g.drop(
                item,
                "I.A.19",
                f"the note says '{absent}' is absent, and the code's title names it",
                fate="suppressed",
            )
            continue
        unstated = _head_unstated(g, note, item)
        if unstated is not None:
            g.drop(item, "I.A.19", f"the note names the cause but not '{unstated}'")
            continue
        outer = _part_of_longer(note, item) if item.fate == "keep" and components else None
        if outer is not None:
            g.drop(
                item,
                "I.A.19",
                f"its words are part of '{outer.text}', which names another code",
            )
            continue
        excluded = _excluded_by_title(note, item, head, tail) if tail else None
        if excluded is not None:
            g.drop(
                item,
                "I.A.19",
                f"the note states '{excluded.text}', which the code's title excludes",
                fate="suppressed",
            )
            continue
        s.evidence = [e for e in s.evidence if e.assertion not in _NOT_PRESENT]
