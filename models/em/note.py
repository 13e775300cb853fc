"""What the E/M level needs to know about a note before its decision making: the sections, the
kind of visit (office, ED, hospital initial/subsequent/discharge, or no visit), new vs
established patient, and the total time documented on the date of the encounter.

How the setting maps to a family: an ``outpatient`` note is an ED visit when its title lines
(or an "ED course" header) say so, an office/outpatient visit otherwise; an ``inpatient`` note
is a discharge day when titled a discharge summary/note, an initial day when titled an
admission note or H&P, a subsequent day otherwise. A note is a visit only when it has both a
history-like section (CC, HPI, S:, interval events) and an assessment-like one (assessment,
A/P, impression, MDM), or is a discharge note; an operative or procedure note is never one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from clinicode.models.em.data import Cues, Hit, cues, load_em_rules

HISTORY, ASSESSMENT = "history", "assessment"


@dataclass(frozen=True)
class Line:
    """One line of the note: absolute offsets, text, and the kind of section it is in."""

    start: int
    end: int
    text: str
    kind: str


@dataclass
class Facts:
    """The note-level facts, each with the span that shows it."""

    lines: list[Line]
    kinds: set[str]
    family: str | None  # office | ed | hospital_initial | hospital_subsequent | hospital_discharge
    family_hit: Hit | None = None
    status: str | None = None  # new | established | None (office only)
    status_hit: Hit | None = None
    minutes: int | None = None
    time_hit: Hit | None = None
    why_not: str = ""


@lru_cache(maxsize=1)
def _header_re() -> tuple[re.Pattern[str], list[str]]:
    kinds = list(load_em_rules()["sections"])
    alts = []
    for i, kind in enumerate(kinds):
        pats = "|".join(sorted(load_em_rules()["sections"][kind], key=len, reverse=True))
        alts.append(f"(?P<k{i}>{pats})")
    rx = re.compile(r"^[ \t#*\-]*(?:" + "|".join(alts) + r")[ \t]*(?::|$)", re.I)
    return rx, kinds


def split_lines(text: str) -> list[Line]:
    """The note's non-empty lines, each tagged with the kind of the section it falls in."""
    rx, kinds = _header_re()
    out: list[Line] = []
    kind = "title"
    pos = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        m = rx.match(body)
        if m and m.lastgroup:
            kind = kinds[int(m.lastgroup[1:])]
        if body.strip():
            out.append(Line(pos, pos + len(body), body, kind))
        pos += len(raw)
    return out


def _first(c: Cues, lines: list[Line]) -> Hit | None:
    for ln in lines:
        for h in c.finditer(ln.text, ln.start):
            return h
    return None


def _family(setting: str, lines: list[Line], kinds: set[str]) -> tuple[str | None, Hit | None]:
    n = int(load_em_rules()["visit"]["title_lines"])
    title = lines[:n]
    headers = [ln for ln in lines if _is_header(ln)]
    if _first(cues("visit", "procedure_title"), title):
        return None, None
    discharge = _first(cues("visit", "discharge_title"), title)
    if setting == "inpatient" and discharge:
        return "hospital_discharge", discharge
    if HISTORY not in kinds or ASSESSMENT not in kinds:
        return None, None
    if setting == "inpatient":
        initial = _first(cues("visit", "initial_title"), title)
        if initial:
            return "hospital_initial", initial
        return "hospital_subsequent", _first(cues("visit", "subsequent_title"), title)
    ed = _first(cues("visit", "ed_title"), title) or _first(cues("visit", "ed_header"), headers)
    return ("ed", ed) if ed else ("office", None)


def _is_header(ln: Line) -> bool:
    return _header_re()[0].match(ln.text) is not None


def _status(lines: list[Line]) -> tuple[str | None, Hit | None]:
    new = _first(cues("patient_status", "new"), lines)
    if new:
        return "new", new
    est = _first(cues("patient_status", "established"), [ln for ln in lines if ln.kind != "plan"])
    return ("established", est) if est else (None, None)


def _minutes(lines: list[Line]) -> tuple[int | None, Hit | None]:
    """The largest total time stated in a time sentence ("more than 30" counts as 31)."""
    rules = load_em_rules()["time"]
    num = re.compile(rules["minutes"], re.I)
    best: tuple[int | None, Hit | None] = (None, None)
    for ln in lines:
        for s in re.finditer(r"[^.]+(?:\.\d[^.]*)*", ln.text):
            sent = s.group(0)
            if not cues("time", "cue").search(sent) or cues("time", "exclude").search(sent):
                continue
            for m in num.finditer(sent):
                n = int(m.group("n")) + (1 if m.group("more") else 0)
                if best[0] is None or n > best[0]:
                    at = ln.start + s.start()
                    hit = Hit(at, at + len(sent.rstrip()), sent.rstrip(), "time")
                    best = (n, hit)
    return best


def read_note(text: str, setting: str) -> Facts:
    """The facts of one note (no decision making yet)."""
    lines = split_lines(text)
    kinds = {ln.kind for ln in lines}
    family, fam_hit = _family(setting, lines, kinds)
    facts = Facts(lines=lines, kinds=kinds, family=family, family_hit=fam_hit)
    if family is None:
        facts.why_not = "not a visit note (no history and assessment sections, or a procedure note)"
        return facts
    if family == "office":
        facts.status, facts.status_hit = _status(lines)
    facts.minutes, facts.time_hit = _minutes(lines)
    return facts
