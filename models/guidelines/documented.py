"""Documented diagnoses reach the code set (I.A.19): a code whose every title word the note states
around a mention is coded even when the ranker scored it under its threshold.

The default ranker learns "is this code named" from synthetic notes and stays under-confident on
codes a note states word for word ("systemic sclerosis" -> M34.9 *Systemic sclerosis,
unspecified*; "acute appendicitis" -> K35.80; "cellulitis of the right lower leg" -> L03.115
*Cellulitis of right lower limb*). The layer brings such a candidate into the kept set when:

* one of its evidence mentions is a condition or finding that is present (or uncertain: the
  assertion policy, which runs next, decides uncertain ones by setting);
* every content word of the code's title is stated in that mention or in its sentence, outside
  negated, family and hypothetical mentions there (a title's "unspecified ..." part and the words
  after "without" need no documentation; a parenthesised part may stand in for the rest, as
  "(NSTEMI)" for "Non-ST elevation myocardial infarction"); at least one of them in the mention
  itself; numbers as written ("stage 3", not the "3" of "type 3");
* its title names no residual category ("other", "not elsewhere classified"): those are for a
  type the note names and the title does not;
* no code of its category read off the same words is already kept (one code per phrase, I.B.2).

Every later rule (assertion policy, evidence, demographics, combinations, integral symptoms,
Excludes1, sequencing) then judges it like any kept code. Of the candidates of one category that
one mention documents, the best scored is brought in. Tables: ``documented`` in the guideline
data; word keys from the encoder (``models.encoder.words``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from clinicode.models.encoder.words import keys, load_encoder_data, mention_context
from clinicode.schema import Mention

from .data import ICD
from .layer import Guidelines
from .rules import rule
from .state import Item, NoteState, explain, spans

_PAREN = re.compile(r"\(([^()]*)\)")
_KINDS = frozenset({"condition", "finding"})


@lru_cache(maxsize=8192)
def title_needs(title: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys a note must state for ``title``: ``(all, alternative)`` where ``alternative``
    (possibly empty) is a parenthesised part that may stand for the whole title."""
    cfg = _cfg()
    low = title.lower()
    alt = tuple(k for p in _PAREN.findall(low) for k in keys(p))
    low = _PAREN.sub(" ", low)
    low = re.split(r"\bwithout\b", low)[0]
    parts = [p for p in low.split(",") if not p.strip().startswith("unspecified")]
    low = " ".join(parts)
    optional = {k for w in cfg["optional_words"] for k in keys(str(w))}
    need = tuple(k for k in dict.fromkeys(keys(low)) if k not in optional)
    return need, alt


@lru_cache(maxsize=1)
def _cfg() -> dict[str, Any]:
    from .data import load_rules

    return dict(load_rules()["documented"])


@lru_cache(maxsize=1)
def _implies() -> dict[str, tuple[str, ...]]:
    """Note word key -> title keys it states ("leg" states "lower limb")."""
    out: dict[str, tuple[str, ...]] = {}
    for word, title_words in _cfg()["implies"].items():
        for k in keys(str(word)):
            out[k] = tuple(k2 for w in title_words for k2 in keys(str(w)))
    return out


def _residual(title: str) -> bool:
    return bool(re.search(_cfg()["residual_title"], title, re.I))


def documents(note: NoteState, m: Mention, need: tuple[str, ...], alt: tuple[str, ...]) -> bool:
    """Whether mention ``m`` with its sentence states every key of ``need`` (or of ``alt``)."""
    near = list(note.overlapping(m.sentence_start, m.sentence_end))
    weights = load_encoder_data()["weights"]
    ctx = mention_context(note.text, m, near, {}, weights)
    local = dict(ctx.local)
    implies = _implies()
    for k, w in list(local.items()):
        for k2 in implies.get(k, ()):
            local.setdefault(k2, w)
    own = {k for k, w in local.items() if w >= weights["mention"]}
    for ks in (need, alt):
        if not ks or not all(k in local for k in ks) or not own & set(ks):
            continue
        if ctx.spells(ks):
            return True
    return False


@rule("documented_candidates")
def rule_documented_candidates(g: Guidelines, note: NoteState) -> None:
    """Candidates a present mention states word for word join the kept codes (I.A.19)."""
    cfg = _cfg()
    floor = float(cfg["min_score"])
    allowed = set(cfg["assertions"])
    kept_cats = {(it.s.code[:3], sp) for it in note.kept() for sp in spans(it)}
    best: dict[tuple[str, tuple[int, int]], Item] = {}
    for it in note.items.values():
        s = it.s
        if it.fate != "candidate" or s.system != ICD or s.score < floor or not s.evidence:
            continue
        if not g.is_billable(s.code):
            continue
        title = g.title(s.code)
        if _residual(title):
            continue
        need, alt = title_needs(title)
        if not need:
            continue
        for e in s.evidence:
            if (s.code[:3], (e.start, e.end)) in kept_cats:
                break
            m = next(
                (
                    m
                    for m in note.overlapping(e.start, e.end)
                    if m.kind in _KINDS and m.assertion in allowed
                ),
                None,
            )
            if m is None or not documents(note, m, need, alt):
                continue
            key = (s.code[:3], (m.start, m.end))
            other = best.get(key)
            if other is None or (s.score, len(need)) > (
                other.s.score,
                len(title_needs(g.title(other.s.code))[0]),
            ):
                best[key] = it
            break
    chosen = {id(it): it for it in best.values()}
    for it in chosen.values():
        it.fate = "keep"
        it.s.status = "suggested"
        it.s.reason = None
        explain(it, "I.A.19", "the note states every word of the code's title: coded as documented")
