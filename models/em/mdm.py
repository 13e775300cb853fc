"""Medical decision making from its three elements (AMA 2021 office, 2023 hospital and ED):
the problems addressed, the data reviewed and analysed, the risk of patient management. Each
element gets a level 1-4 with the spans that show it; the MDM level is the one that two of the
three elements meet or exceed (the middle of the three levels).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from clinicode.models.em.data import Cues, Hit, cues, load_em_rules, longest_first
from clinicode.models.em.note import Facts, Line

Span = tuple[int, int]


@dataclass
class Element:
    """One MDM element: its level (1-4; problems 0 when none was found), why, and evidence."""

    name: str
    level: int
    reasons: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(load_em_rules()["levels"][self.name][self.level])

    def describe(self) -> str:
        why = "; ".join(self.reasons)
        return f"{self.name} {self.label}" + (f" ({why})" if why else "")


def _quote(hits: Iterable[Hit]) -> str:
    """The hits' texts quoted, each distinct text (case-insensitive) once."""
    seen: dict[str, str] = {}
    for h in hits:
        seen.setdefault(h.text.lower(), h.text)
    return ", ".join(f"'{t}'" for t in seen.values())


@lru_cache(maxsize=1)
def _contrast() -> re.Pattern[str]:
    """A study "with/without contrast": no negation (``contrast_phrase`` of the E/M rules)."""
    return re.compile(load_em_rules()["contrast_phrase"], re.I)


def negated(line: Line, hit: Hit) -> bool:
    """A negation or hypothesis cue before the hit in its clause ("no fever", "if ... ICU")."""
    before = line.text[: hit.start - line.start]
    cut = max(before.rfind(c) for c in ".;:")
    return cues("negation").search(_contrast().sub(" ", before[cut + 1 :]))


def _inside(hit: Hit, spans: Iterable[Span]) -> bool:
    return any(hit.start < e and s < hit.end for s, e in spans)


@lru_cache(maxsize=1)
def _conditions() -> Cues:
    groups: dict[str, list[str]] = {}
    for base, keys in load_em_rules()["conditions"].items():
        for key, pats in keys.items():
            groups[f"{base}:{key}"] = pats
    return Cues(groups)


def _category(base: str, mods: set[str]) -> str:
    if "threat" in mods:
        return "threat"
    if base == "chronic":
        if "severe" in mods:
            return "chronic_severe"
        return "chronic_exacerbation" if "exacerbation" in mods else "stable_chronic"
    if base in ("acute_uncomplicated", "unrecognised"):
        for mod, cat in (
            ("complicated", "acute_complicated"),
            ("systemic", "acute_systemic"),
            ("undiagnosed", "undiagnosed_uncertain"),
            ("stable", "stable_acute"),
        ):
            if mod in mods:
                return cat
    if base == "acute_systemic" and "stable" in mods and "exacerbation" not in mods:
        return "stable_acute"
    return base


def _items(line: Line) -> Iterable[Line]:
    """A line of an assessment split at semicolons: each part is one problem at most."""
    pos = 0
    for part in line.text.split(";"):
        yield Line(line.start + pos, line.start + pos + len(part), part, line.kind)
        pos += len(part) + 1


def problems(facts: Facts, blocked: list[Span], extra: Iterable[Span] = ()) -> Element:
    """Number and complexity of the problems addressed, read from the assessment sections.

    ``blocked``: spans of negated, family or hypothetical NLP mentions (not problems);
    ``extra``: spans of present NLP condition mentions, problems of complexity unknown to the
    tables where no cue names one in their item."""
    extra = list(extra)
    cats = load_em_rules()["problem_categories"]
    found: dict[str, tuple[str, Hit]] = {}
    for line in (ln for ln in facts.lines if ln.kind == "assessment"):
        for item in _items(line):
            mods = {
                h.group
                for h in cues("modifiers").finditer(item.text, item.start)
                if not negated(item, h)
            }
            hits = [
                h
                for h in longest_first(_conditions().finditer(item.text, item.start))
                if not negated(item, h) and not _inside(h, blocked)
            ]
            if not hits:
                hits = _unnamed(item, mods, extra)
            scored = [(_category(h.group.split(":")[0], mods), h) for h in hits]
            if not scored:
                continue
            cat, hit = max(scored, key=lambda ch: int(cats[ch[0]]["level"]))
            key = hit.group.split(":")[1] + (hit.text.lower() if "item" in hit.group else "")
            old = found.get(key)
            if old is None or cats[cat]["level"] > cats[old[0]]["level"]:
                found[key] = (cat, hit)
    counts = Counter(cat for cat, _ in found.values())
    level = max((int(cats[c]["level"]) for c in counts), default=0)
    if counts["stable_chronic"] >= 2:
        level = max(level, 3)
    if counts["self_limited"] >= 2:
        level = max(level, 2)
    reasons = []
    for cat in sorted(counts, key=lambda c: -int(cats[c]["level"])):
        hits = [h for c, h in found.values() if c == cat]
        reasons.append(f"{len(hits)} x {cats[cat]['label']}: {_quote(hits)}")
    return Element("problems", level, reasons, [h for _, h in found.values()])


def _unnamed(item: Line, mods: set[str], extra: list[Span]) -> list[Hit]:
    """The problem of an assessment item that no condition cue names: an NLP condition
    mention in it, or the item itself when it says the problem is undiagnosed."""
    for s, e in extra:
        if item.start <= s and e <= item.end:
            return [Hit(s, e, item.text[s - item.start : e - item.start], "unrecognised:item")]
    if "undiagnosed" in mods:
        text = item.text.strip(" -#*\t")
        at = item.start + item.text.index(text)
        return [Hit(at, at + len(text), text, "undiagnosed_uncertain:item")]
    return []


def _first_per_group(hits: Iterable[Hit]) -> dict[str, Hit]:
    out: dict[str, Hit] = {}
    for h in hits:
        out.setdefault(h.group, h)
    return out


def data(facts: Facts) -> Element:
    """Amount and complexity of the data reviewed and analysed (the three categories)."""
    rules = load_em_rules()
    allowed = set(rules["test_sections"])
    tests: list[Hit] = []
    interp: list[Hit] = []
    ext: list[Hit] = []
    hist: list[Hit] = []
    talk: list[Hit] = []
    for ln in facts.lines:
        found = [h for h in cues("tests").finditer(ln.text, ln.start) if not negated(ln, h)]
        reviewed = ln.kind == "history" and cues("test_action").search(ln.text)
        if ln.kind in allowed or reviewed:
            tests.extend(found)
        shown = [h for h in cues("independent_interpretation").finditer(ln.text, ln.start)]
        if shown and any(h.group in rules["interpretable"] for h in found):
            interp.extend(shown[:1])
        ext.extend(cues("external_notes").finditer(ln.text, ln.start))
        hist.extend(cues("independent_historian").finditer(ln.text, ln.start))
        talk.extend(h for h in cues("discussion").finditer(ln.text, ln.start) if not negated(ln, h))
    unique = list(_first_per_group(tests).values())
    cat1 = len(unique) + len(ext)
    met = (cat1 + (1 if hist else 0) >= 3) + bool(interp) + bool(talk)
    level = 4 if met >= 2 else 3 if met else 2 if (cat1 >= 2 or hist) else 1
    reasons = []
    for what, hits in (
        (f"{len(unique)} unique test(s)", unique),
        ("external notes reviewed", ext),
        ("independent historian", hist),
        ("independent interpretation of a test", interp),
        ("discussion with an external physician", talk),
    ):
        if hits:
            reasons.append(f"{what}: {_quote(hits)}")
    return Element("data", level, reasons, unique + ext + hist + interp + talk)


def risk(facts: Facts, drugs: Iterable[Span] = ()) -> Element:
    """Risk of complications of patient management, from the management sections.

    ``drugs``: spans of NLP medication mentions; one that no drug cue names is a prescription
    drug unless marked over the counter."""
    drugs = list(drugs)
    rules = load_em_rules()
    inpatient = (facts.family or "").startswith("hospital")
    ignored = set(rules["inpatient_ignores"]) if inpatient else set()
    lines = [ln for ln in facts.lines if ln.kind in rules["drug_sections"]]
    by_level: dict[int, list[tuple[str, Hit]]] = {4: [], 3: [], 2: [], 1: []}
    for ln in lines:
        for level, name in ((4, "high"), (3, "moderate"), (2, "low")):
            for h in cues("risk", name).finditer(ln.text, ln.start):
                if h.group not in ignored and not negated(ln, h):
                    by_level[level].append((h.group.replace("_", " "), h))
        named = list(_drugs().finditer(ln.text, ln.start))
        for s, e in drugs:
            if ln.start <= s and e <= ln.end and not any(h.start < e and s < h.end for h in named):
                named.append(Hit(s, e, ln.text[s - ln.start : e - ln.start], "rx"))
        for h in named:
            if negated(ln, h):
                continue
            near = ln.text[max(0, h.start - ln.start - 25) : h.end - ln.start + 25]
            otc = h.group == "otc" or cues("otc_marker").search(near)
            otc = otc or cues("otc_drugs").search(h.text)
            if otc:
                by_level[2].append(("over-the-counter drugs", h))
            else:
                by_level[3].append(("prescription drug management", h))
        for h in cues("minimal_care").finditer(ln.text, ln.start):
            by_level[1].append(("minimal-risk care", h))
    level = max((lv for lv, hits in by_level.items() if hits), default=1)
    reasons: list[str] = []
    hits: list[Hit] = []
    for lv in (4, 3, 2, 1):
        groups: dict[str, list[Hit]] = {}
        for what, h in by_level[lv]:
            groups.setdefault(what, []).append(h)
        for what, hs in groups.items():
            if lv == level:
                reasons.append(f"{what}: {_quote(hs)}")
            hits.extend(hs)
    return Element("risk", level, reasons, hits)


@lru_cache(maxsize=1)
def _drugs() -> Cues:
    rules = load_em_rules()
    return Cues({"rx": rules["rx_drugs"], "otc": rules["otc_drugs"]})


def mdm_level(elements: list[Element]) -> int:
    """The level two of the three elements meet or exceed (problems not found count as 1)."""
    levels = sorted(max(e.level, 1) for e in elements)
    return levels[1]
