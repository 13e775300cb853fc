"""Documented diagnoses reach the code set (I.A.19): a code whose every title word the note states
around a mention is coded even when the ranker scored it under its threshold.

The default ranker learns "is this code named" from synthetic notes and stays under-confident on
codes a note states word for word ("systemic sclerosis" -> M34.9 *Systemic sclerosis,
unspecified*; "acute appendicitis" -> K35.80; "cellulitis of the right lower leg" -> L03.115
*Cellulitis of right lower limb*). The layer brings such a candidate into the kept set when:

* one of its evidence mentions is a condition or finding that is present (or, in inpatient
  care, uncertain at discharge: II.H codes it as if established; the assertion policy, which
  runs next, judges it);
* every content word of the code's title (or of one of its own inclusion terms, or of the Index
  entries of the encoder's path to it) is stated in that mention or in its sentence, outside
  negated, family and hypothetical mentions there (a title's "unspecified ..." part and the words
  after "without" need no documentation; a parenthesised part may stand in for the rest, as
  "(NSTEMI)" for "Non-ST elevation myocardial infarction"); at least one of them in the mention
  itself; numbers as written ("stage 3", not the "3" of "type 3");
* its title names no residual category ("other", "not elsewhere classified"): those are for a
  type the note names and the title does not, unless one of its own inclusion terms is what
  the note states (*Other persistent atrial fibrillation* for "persistent atrial fibrillation",
  its *Persistent atrial fibrillation NOS*);
* no kept code already stands on the same words (one code per phrase, I.B.2: *Pain,
  unspecified* is not added beside *Periumbilical pain* for "periumbilical pain").

Every later rule (assertion policy, evidence, demographics, combinations, integral symptoms,
Excludes1, sequencing) then judges it like any kept code. Of the candidates of one category that
one mention documents, the best scored is brought in. Tables: ``documented`` in the guideline
data; word keys from the encoder (``models.encoder.words``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from clinicode.models.encoder.tabular import TabularTree
from clinicode.models.encoder.words import Context, keys, load_encoder_data, mention_context
from clinicode.nlp.cues import sentence_bounds
from clinicode.nlp.lexicon import signed_words
from clinicode.nlp.resources import load_resource
from clinicode.schema import Mention

from .data import ICD, any_match, note_refs
from .layer import Guidelines, _code_index
from .rules import rule
from .state import Item, NoteState, assertions_of, explain, spans
from .titles import (
    documented_cfg,
    implied_keys,
    index_term,
    lone_head,
    residual,
    title_absent,
    title_keys,
    title_needs,
)

_KINDS = frozenset({"condition", "finding"})  # mention kinds of the schema, not clinical words


@lru_cache(maxsize=1)
def _absent_rx() -> re.Pattern[str]:
    """What a sentence says is absent ("without aura", "not intractable"): the words after a
    cue up to a clause end or an end word (``documented.stated_absent`` in the guideline data)."""
    cfg = documented_cfg()["stated_absent"]
    cues = "|".join(re.escape(str(w)) for w in cfg["cues"])
    ends = "|".join(re.escape(str(w)) for w in cfg["ends"])
    return re.compile(rf"\b(?:{cues})\s+([^,;.:()]+?)(?=\s+(?:{ends})\b|[,;.:()]|$)", re.I)


@lru_cache(maxsize=1)
def _clause_rx() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(separator between two conditions, linking words that join them): ``documented.clause``
    in the guideline data."""
    cfg = documented_cfg()["clause"]
    seps = "|".join(str(x) for x in cfg["separators"])
    links = "|".join(re.escape(str(x)) for x in cfg["links"])
    return re.compile(seps, re.I), re.compile(rf"\s*(?:{links})\b", re.I)


class Stated:
    """What a mention with its clause states (its encoder context, with what its words
    imply), built once per mention.

    The clause: the mention's sentence, cut between it and the condition or finding mentioned
    before or after it at the last list separator of the words between them ("HTN, DM2, CKD 3b,
    hx of CVA without residual": four clauses, so "CVA" lends no word to "CKD"), unless a
    linking word follows that separator (I.A.15 "with", "due to", "in": ", with CKD stage 3"
    joins); and before a first mention, at a label's colon ("SECONDARY: hypertension" does not
    state secondary hypertension). Words after the last mention stay with it ("acute otitis
    media, left ear")."""

    def __init__(self, note: NoteState) -> None:
        self.note = note
        self.weights = load_encoder_data()["weights"]
        self._got: dict[tuple[int, int], tuple[Context, dict[str, float], set[str]]] = {}
        self._absent: dict[tuple[int, int], list[tuple[str, list[str]]]] = {}

    def clause(self, m: Mention, near: list[Mention]) -> tuple[int, int]:
        """The bounds of ``m``'s clause in its sentence (``near``: the sentence's mentions)."""
        text = self.note.text
        lo, hi = m.sentence_start, m.sentence_end
        before = [o.end for o in near if o.kind in _KINDS and lo <= o.start and o.end <= m.start]
        after = [o.start for o in near if o.kind in _KINDS and o.start >= m.end and o.end <= hi]
        first = min(
            [o.start for o in near if o.kind in _KINDS and lo <= o.start <= m.start] or [m.start]
        )
        colon = text.rfind(":", lo, first)  # a label before the sentence's first mention
        lo = colon + 1 if colon >= 0 else lo  # ("HISTORY: Back pain after a fall")
        if before:
            cut = _cut(text, max(before), m.start)
            lo = max(lo, cut[1]) if cut else lo
        if after:
            cut = _cut(text, m.end, min(after))
            hi = cut[0] if cut else hi
        return lo, hi

    @classmethod
    def of_note(cls, note: NoteState) -> Stated:
        """The note's one ``Stated`` (built on first use, shared by the rules)."""
        got = note.shared.get("stated")
        if got is None:
            got = note.shared["stated"] = cls(note)
        return got

    def of(self, m: Mention) -> tuple[Context, dict[str, float], set[str]]:
        got = self._got.get((m.start, m.end))
        if got is None:
            near = list(self.note.overlapping(m.sentence_start, m.sentence_end))
            lo, hi = self.clause(m, near)
            scoped = m.model_copy(update={"sentence_start": lo, "sentence_end": hi})
            others = [o for o in near if o is not m]
            ctx = mention_context(self.note.text, scoped, others, {}, self.weights)
            local = dict(ctx.local)
            for k in self.absent_keys(m):  # "without aura", "not intractable"
                local.pop(k, None)
            implies = implied_keys()
            for k, w in list(local.items()):
                for k2 in implies.get(k, ()):
                    local.setdefault(k2, w)
            own = {k for k, w in local.items() if w >= self.weights["mention"]}
            got = self._got[(m.start, m.end)] = (ctx, local, own)
        return got

    def absent_keys(self, m: Mention) -> list[str]:
        """The keys its sentence says are absent."""
        return [k for _, ks in self.absent_parts(m) for k in ks]

    @staticmethod
    def named_by(m: Mention) -> set[str]:
        """The keys the mention's own words state, less what they state absent ("migraine
        without aura" states "migraine", not "aura")."""
        return set(keys(_absent_rx().sub(" ", m.text)))

    def absent_parts(self, m: Mention) -> list[tuple[str, list[str]]]:
        """The words its sentence says are absent, as written with their keys (read once per
        sentence)."""
        span = (m.sentence_start, m.sentence_end)
        if span[1] <= span[0]:  # a mention made without its sentence (a rule's, a test's)
            span = sentence_bounds(self.note.text, m.start, m.end)
        got = self._absent.get(span)
        if got is None:
            sentence = self.note.text[span[0] : span[1]]
            got = self._absent[span] = [(p, keys(p)) for p in _absent_rx().findall(sentence)]
        return got


def _cut(text: str, lo: int, hi: int) -> tuple[int, int] | None:
    """The last list separator between two mentions (``text[lo:hi]``), unless a linking word
    follows it; None where the words between them join them."""
    sep, link = _clause_rx()
    last = None
    for found in sep.finditer(text, lo, hi):
        last = found
    if last is None or link.match(text, last.end(), hi):
        return None
    return last.start(), last.end()


def documents(
    stated: Stated, m: Mention, need: tuple[str, ...], alt: tuple[str, ...]
) -> tuple[str, ...] | None:
    """The keys with which mention ``m`` and its sentence state all of ``need`` (else all of
    ``alt``), or None."""
    ctx, local, own = stated.of(m)
    for ks in (need, alt):
        if not ks or not all(k in local for k in ks) or not own & set(ks):
            continue
        if ctx.spells(ks):
            return ks
    return None


def _forms(
    g: Guidelines, it: Item, *, inclusion: bool = True, index: bool = True
) -> list[tuple[int, tuple[str, ...], tuple[str, ...]]]:
    """What a note may state to document ``it``, as ``(tier, needed keys, alternative)``: its
    title (tier 0), its own inclusion terms (1: *Bronchiectasis NOS* for J47.9, "hypertension
    (arterial) (benign) (essential)" for I10) and the Index entries of the encoder's path to it
    (2: "Index: Hypertension, hypertensive -> I10")."""
    code = it.s.code
    title = _title(g, code)
    terms = [(0, title)] if index or not inclusion else []
    alias = _ALIAS.search(title) if inclusion else None
    if alias is not None:  # *Estrogen receptor positive status [ER+]*: "ER positive"
        terms.append((1, signed_words(alias.group(1))))
    if inclusion:
        terms += [(1, t) for t in _curated().get(f"{ICD}:{code}", ())]
    rec = g.rec(code) if inclusion else None  # its own notes (one cached KB read)
    if rec is not None:
        for kind in ("inclusion", "includes"):
            terms += [(1, t) for t in rec.notes.get(kind, [])]
    for line in it.s.explanation if index else ():
        if line.startswith("Index: ") and " -> " in line:
            terms.append((2, index_term(line)))
    return [(tier, *f) for tier, f in ((tier, title_needs(t)) for tier, t in terms) if f[0]]


# an acronym closing a title in brackets is the code's other name ("... status [ER+]")
_ALIAS = re.compile(r"\[([A-Z][A-Z0-9]{0,7}[+-]?)\]\s*$")


@lru_cache(maxsize=1)
def _curated() -> dict[str, tuple[str, ...]]:
    """The synonym phrases that document their one code ('documents' in the NLP's synonyms)."""
    out: dict[str, list[str]] = {}
    for ph in load_resource("synonyms.json")["phrases"]:
        if ph.get("documents") and len(ph.get("concepts", ())) == 1:
            out.setdefault(ph["concepts"][0], []).append(ph["term"])
    return {k: tuple(v) for k, v in out.items()}


def _names_curated(own: set[str], code: str) -> bool:
    """Whether a mention's own keys spell one of the code's curated phrases."""
    return any(set(keys(t)) <= own for t in _curated().get(f"{ICD}:{code}", ()))


def _contradicts(stated: Stated, m: Mention, title: str) -> bool:
    """Whether ``m``'s clause states what ``title`` says is absent ("spondylosis with
    myelopathy" and *Spondylosis without myelopathy or radiculopathy, ...*)."""
    return not title_absent(title).isdisjoint(stated.of(m)[1])


def _index_path(explanation: list[str]) -> bool:
    return any(line.startswith("Index: ") for line in explanation)


def _title(g: Guidelines, code: str) -> str:
    """A code's title from the layer's in-memory code index (no KB query per code)."""
    return _code_index(g.kb)[1].get(code) or g.title(code)


@rule("documented_candidates")
def rule_documented_candidates(g: Guidelines, note: NoteState) -> None:
    """Candidates a present mention states word for word join the kept codes (I.A.19). Of the
    candidates of one category that one mention documents, the most specific wins (the most
    words documented: *Acute on chronic diastolic heart failure* over *Heart failure,
    unspecified* for "acute on chronic diastolic (HFpEF) heart failure"), then the one its
    title documents over an inclusion term or an Index path (I50.33's title, F32.A's over the
    Index's default F32.9 for "depression"), then the ranker's score."""
    cfg = documented_cfg()
    floor = float(cfg["min_score"])
    allowed = set(cfg["assertions"][note.setting])
    chronic = g.rules["assertion"]["chronic_persisting"]
    stated = Stated.of_note(note)
    coded = [(sp, it) for it in note.kept() for sp in spans(it)]
    _, titles, billable = _code_index(g.kb)
    tree = TabularTree.of(g.kb)
    at: dict[tuple[int, int], list[Mention]] = {}  # the mentions on each evidence span
    best: dict[
        tuple[str, tuple[int, int]],
        tuple[tuple[int, int, float, tuple[str, ...]], Item],
    ] = {}
    for it in note.items.values():
        s = it.s
        if it.fate != "candidate" or s.system != ICD or s.score < floor or not s.evidence:
            continue
        if s.code not in billable or tree.left_open_beside(s.code):
            continue
        title = titles.get(s.code) or g.title(s.code)
        # a residual title ("Other persistent atrial fibrillation") is documented only by an
        # inclusion term of its own that names the type ("Persistent atrial fibrillation NOS")
        is_residual = residual(title)
        forms: list[tuple[int, tuple[str, ...], tuple[str, ...]]] | None = None
        for e in s.evidence:
            span = (e.start, e.end)
            if span not in at:
                at[span] = [m for m in note.overlapping(e.start, e.end) if m.kind in _KINDS]
            m = next(
                (
                    m
                    for m in at[span]
                    if m.assertion in allowed
                    # "hx of HTN": a chronic condition listed as history is still present
                    or (m.assertion == "historical" and any_match(chronic, s.code))
                ),
                None,
            )
            if m is None or (_sided(m) and _side_unspecified(g, s.code, title)):
                continue
            if _contradicts(stated, m, title):
                continue
            own = stated.of(m)[2]
            names_title = bool(own & title_keys(title)) or _names_curated(own, s.code)
            # no word of its title in the mention: only an Index path can document it, and a
            # residual code's inclusion terms only count for a mention naming its words
            if not names_title and (is_residual or not _index_path(s.explanation)):
                continue
            if forms is None:  # the title and Index path first; inclusion terms (a KB query)
                # when the mention names a title word
                forms = (
                    _forms(g, it, index=False) if is_residual else _forms(g, it, inclusion=False)
                )
            found = _found(stated, m, forms)
            if not found and not is_residual and names_title:
                found = _found(stated, m, _forms(g, it, index=False))
            if not found:
                continue
            size, tier, ks = max(found)
            if size == 1 and not tier and not lone_head(title) <= stated.of(m)[1].keys():
                continue  # "endocrine therapy" states no *Endocrine disorder*
            there = [o for (lo, hi), o in coded if lo < e.end and e.start < hi and o is not it]
            if any(_blocks(g, stated, o, s.code, (size, tier, set(ks))) for o in there):
                break  # the words already support a kept code that says as much
            rank = (size, tier, s.score, ks)
            key = (s.code[:3], (m.start, m.end))
            if key not in best or rank > best[key][0]:
                best[key] = (rank, it)
            break
    chosen = _most_specific(list({id(it): (rank[3], it) for rank, it in best.values()}.values()))
    ranks = {id(it): rank[:2] for rank, it in best.values()}
    for ks, it in _without_symptoms_of_a_diagnosis(g, note, chosen):
        it.fate = "keep"
        it.s.status = "suggested"
        it.s.reason = None
        explain(it, "I.A.19", "the note states every word of the code's title: coded as documented")
        needs = set(ks)
        for (lo, hi), o in coded:
            if o.fate != "keep" or not _on(it, lo, hi) or _coded_first(g, o, it.s.code):
                continue
            if _less_specific(g, o, needs):
                g.drop(o, "I.B.2", f"{it.s.code} documents the same words more specifically")
            elif o.s.code[:3] == it.s.code[:3] and documented_rank(g, stated, o) < ranks[id(it)]:
                g.drop(
                    o,
                    "I.B.2",
                    f"{it.s.code} is what the note documents; this code's title names what "
                    "the note does not state",
                )


def _without_symptoms_of_a_diagnosis(
    g: Guidelines, note: NoteState, chosen: list[tuple[tuple[str, ...], Item]]
) -> list[tuple[tuple[str, ...], Item]]:
    """The documented codes less the signs and symptoms (``symptom_codes``) when the note
    codes a definitive diagnosis (a code outside ``documented.not_diagnoses``): a symptom is
    coded when no diagnosis explains it (I.B.4) and beside one only when not routinely part of
    it (I.B.5/I.B.6), which is the ranker's and the integral-symptom rule's judgement, not a
    word match ("fever, cough" of an aspiration pneumonia, "cramps" of hypokalemia)."""
    symptoms, other = g.rules["symptom_codes"], documented_cfg()["not_diagnoses"]
    # a kept code whose words are all negated ("r/o meningitis unlikely") is no diagnosis
    # (the assertion rule suppresses it later)
    stated = [
        it
        for it in note.kept()
        if not it.s.evidence or "present" in assertions_of(it.s, note.mentions)
    ]
    codes = [it.s.code for it in stated] + [it.s.code for _, it in chosen]
    if not any(not any_match(other, c) for c in codes):
        return chosen
    return [(ks, it) for ks, it in chosen if not any_match(symptoms, it.s.code)]


def _sided(m: Mention) -> bool:
    return any(a.name == "laterality" for a in m.attributes)


def _side_unspecified(g: Guidelines, code: str, title: str) -> bool:
    """Whether ``title``'s "unspecified" is a side or site, which a mention that states a side
    answers (*Pain in unspecified knee*, *Primary osteoarthritis, unspecified site* for "OA of
    right knee"): it says so ("unspecified site"), or a billable code beside it names a side
    (*Pain in right knee* beside *Pain in unspecified knee*). Patterns: ``documented.sides``."""
    cfg = documented_cfg()["sides"]
    if "unspecified" not in title.lower() or re.search(cfg["side"], title, re.I):
        return False
    if re.search(cfg["unspecified"], title, re.I):
        return True
    parent = code[:-1].rstrip(".")
    return any(re.search(cfg["side"], r.title, re.I) for r in g.billable_descendants(parent))


def _most_specific(
    chosen: list[tuple[tuple[str, ...], Item]],
) -> list[tuple[tuple[str, ...], Item]]:
    """The documented codes less those whose words are a strict part of another's on the same
    words (I.B.2: *Unspecified appendicitis* beside *Unspecified acute appendicitis* for "acute
    appendicitis"; the Index's *Dystonia* for "dyskinesia" beside *Parkinson's disease with
    dyskinesia, with fluctuations*)."""
    return [
        (ks, it)
        for ks, it in chosen
        if not any(
            set(ks) < set(ks2) and any(_on(it2, e.start, e.end) for e in it.s.evidence)
            for ks2, it2 in chosen
        )
    ]


def _coded_first(g: Guidelines, manifestation: Item, code: str) -> bool:
    """Whether ``manifestation``'s "code first" note names ``code``: an etiology coded beside
    it, not a more specific code for its words (*Type 2 diabetes mellitus with diabetic
    autonomic (poly)neuropathy* and *Gastroparesis* for "diabetic gastroparesis", I.A.13)."""
    notes = g.notes(manifestation.s.code).get("code_first", [])
    return any_match([r for _s, t in notes for r in note_refs(t)], code)


def _found(
    stated: Stated, m: Mention, forms: list[tuple[int, tuple[str, ...], tuple[str, ...]]]
) -> list[tuple[int, int, tuple[str, ...]]]:
    """``(size, -tier, keys)`` of each form that mention ``m`` documents."""
    return [
        (len(ks), -tier, ks)
        for tier, need, alt in forms
        if (ks := documents(stated, m, need, alt)) is not None
    ]


def _on(it: Item, lo: int, hi: int) -> bool:
    return any(lo < e.end and e.start < hi for e in it.s.evidence)


def _said(g: Guidelines, other: Item) -> list[set[str]]:
    """What each of ``other``'s forms (title, inclusion terms, Index path) says."""
    return [set(ks) for _, need, alt in _forms(g, other) for ks in (need, alt) if ks]


def _less_specific(g: Guidelines, other: Item, needs: set[str]) -> bool:
    """Whether kept ``other`` says less than a code documented by ``needs``: one of its forms
    says a strict part of them (*Unspecified appendicitis* under *Acute appendicitis*;
    *Parkinsonism, unspecified*, reached by the Index's "Disease, Parkinson's", under
    *Parkinson's disease with dyskinesia, with fluctuations*), or it is a residual code
    (*Other systemic sclerosis*) whose title words the note states with no other type."""
    said = _said(g, other)
    if any(ks < needs for ks in said):
        return True
    title = g.title(other.s.code)
    return residual(title) and set(title_needs(title)[0]) <= needs


def documented_in_full(g: Guidelines, stated: Stated, other: Item) -> bool:
    """Whether ``other``'s evidence mentions, with their sentences, state one of its forms in
    full (*Streptococcal pharyngitis* by "streptococcal pharyngitis" though its other
    evidence, "sore throat", does not; *Alcohol dependence with withdrawal delirium* by
    "alcohol dependence" in one sentence and "alcohol withdrawal delirium" in another)."""
    return documented_size(g, stated, other) > 0


def documented_size(g: Guidelines, stated: Stated, other: Item) -> int:
    """How many words the largest of ``other``'s forms its evidence states in full has (0:
    none): *Other chest pain* (chest, pain) says more of "chest pain" than *Pain, unspecified*."""
    return documented_rank(g, stated, other)[0]


def documented_rank(g: Guidelines, stated: Stated, other: Item) -> tuple[int, int]:
    """``(size, -tier)`` of the best of ``other``'s forms its evidence states in full ((0, 0):
    none): the most words, then its title over an inclusion term over an Index path."""
    local: set[str] = set()
    for e in other.s.evidence:
        for m in stated.note.overlapping(e.start, e.end):
            if m.kind in _KINDS:
                local |= set(stated.of(m)[1])
    return max(
        (
            (len(ks), -tier)
            for tier, need, alt in _forms(g, other)
            for ks in (need, alt)
            if ks and set(ks) <= local
        ),
        default=(0, 0),
    )


def _blocks(
    g: Guidelines,
    stated: Stated,
    other: Item,
    code: str,
    by: tuple[int, int, set[str]],
) -> bool:
    """Whether kept ``other``, on the same words, keeps a code documented by ``by`` (size,
    -tier, keys) out: it says at least as much (*Periumbilical pain* keeps *Pain,
    unspecified* out), or it is of the same category, not less specific and documented at
    least as well (one code per phrase and category, I.B.2; *Type 2 diabetes mellitus with
    unspecified complications* names complications that "type 2 diabetes" does not state, so
    it keeps E11.9 out of nothing). A code the Index alone reached does not keep out one of
    its category whose Tabular title the note states as fully: the coder verifies the Index's
    code in the Tabular (the FY2017 Index's "Depression" F32.9 is *Major depressive
    disorder, single episode* in FY2026; *Depression, unspecified* F32.A says what the note
    says)."""
    size, neg_tier, needs = by
    if _less_specific(g, other, needs):
        return False
    if other.s.code[:3] == code[:3]:
        got = documented_rank(g, stated, other)
        return got[0] > 0 and got >= (size, neg_tier)
    return any(ks >= needs for ks in _said(g, other))


@rule("documented_specificity")
def rule_documented_specificity(g: Guidelines, note: NoteState) -> None:
    """A kept unspecified code moves to the most specific billable code of its category whose
    every title word its mention and sentence state (I.B.2, IV.F.3): *Cellulitis, unspecified*
    for "cellulitis of the left lower leg" becomes *Cellulitis of left lower limb* even when
    no generator proposed it."""
    stated = Stated.of_note(note)
    allowed = set(documented_cfg()["assertions"][note.setting])
    for it in note.kept():
        s = it.s
        title = g.title(s.code)
        if "unspecified" not in title.lower() or not s.evidence:
            continue
        own = set(title_needs(title)[0])
        best: tuple[int, str] | None = None
        tie = False
        for e in s.evidence:
            for m in note.overlapping(e.start, e.end):
                if m.kind not in _KINDS or m.assertion not in allowed:
                    continue
                for rec in g.billable_descendants(s.code[:3]):
                    if rec.code == s.code or residual(rec.title):
                        continue
                    need = title_needs(rec.title)[0]
                    if not own < set(need) or documents(stated, m, need, ()) is None:
                        continue
                    if _contradicts(stated, m, rec.title):
                        continue
                    if best is None or len(need) > best[0]:
                        best, tie = (len(need), rec.code), False
                    elif len(need) == best[0] and rec.code != best[1]:
                        tie = True  # two codes as specific: the note does not settle it
        if best is not None and not tie:
            g.replace(
                note,
                [it],
                best[1],
                "I.B.2",
                f"the note documents {best[1]} ({g.title(best[1])}): more specific than {s.code}",
            )
