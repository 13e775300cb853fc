"""HCPCS Level II codes for what the encounter supplied (``models.registry`` kind
``rule_coder``, name ``hcpcs``; runs when HCPCS is loaded in the KB).

* Drugs given in the encounter -> J codes (and other drug codes), with billing units from the
  documented dose: units = dose / the amount in one unit of the code's descriptor, rounded up
  (Kenalog 40 mg -> J3301 per 10 mg -> 4 units). No dose documented -> a query.
* Supplies and DME dispensed (walking boot, crutches, sling ...) -> their L/E/A codes.

Knowledge (drug names -> code, amount per unit; supply words -> code) is data in
``models/resources/hcpcs_rules.yaml``, each code checked against the CMS file by the tests.
Vaccine products are CPT codes (``models.rule_cpt``). Outpatient only: drugs and supplies of an
inpatient stay are the facility's. Importing does no I/O.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from clinicode.models.procedure_text import NoteText, Span, load_yaml
from clinicode.schema import CodeSuggestion, Evidence, Mention, Query

SYSTEM = "HCPCS"


@lru_cache(maxsize=1)
def load_hcpcs_rules() -> dict[str, Any]:
    """``hcpcs_rules.yaml`` (read once; callers must not mutate it)."""
    return load_yaml("hcpcs_rules.yaml")


@lru_cache(maxsize=1)
def _doses() -> tuple[re.Pattern[str], dict[str, tuple[str, float]]]:
    """How a dose is written and each written unit as ``(base unit, factor)`` (``dose`` and
    ``dose_units`` of ``hcpcs_rules.yaml``)."""
    rules = load_hcpcs_rules()
    units = {str(k): (str(v[0]), float(v[1])) for k, v in rules["dose_units"].items()}
    return re.compile(rules["dose"], re.I), units


class HCPCSCoder:
    """HCPCS Level II drugs and supplies (``types.RuleCoder``)."""

    name = "hcpcs"
    systems: tuple[str, ...] = (SYSTEM,)

    def __init__(self, kb: Any) -> None:
        self.kb = kb
        self.rules = load_hcpcs_rules()

    def code(self, text: str, mentions: list[Mention], *, setting: str) -> list[CodeSuggestion]:
        if setting != "outpatient":
            return []
        note = NoteText(text, mentions)
        out: dict[str, CodeSuggestion] = {}
        for entry, hit, units, why, query in self._drugs(note):
            self._add(out, note, entry["code"], hit, units, why, query)
        for entry, hit in self._supplies(note):
            why = [f"supply '{note.text[hit[0] : hit[1]]}' dispensed"]
            self._add(out, note, entry["code"], hit, 1, why, None)
        return list(out.values())

    def _drugs(
        self, note: NoteText
    ) -> list[tuple[dict[str, Any], Span, int | None, list[str], Query | None]]:
        found = []
        drugs = [e for e in self.rules["drugs"] if any(note.maybe(p) for p in e["names"])]
        if not drugs:
            return []
        for sent in note.sentences:
            if not sent.eligible:
                continue
            span = (sent.start, sent.end)
            if not note.search(self.rules["given"], [span]):
                continue
            for entry in drugs:
                hit = note.search(entry["names"], [span])
                if hit is None or not note.done_here(*hit)[0]:
                    continue
                if note.search(entry.get("none", []), [span]):
                    continue
                if entry.get("route") == "inhaled" and not note.search(
                    ["nebul", r"\bneb\b", r"\bHHN\b"], [span]
                ):
                    continue
                units, why = billing_units(note.text, span, hit, entry)
                q = None
                if units is None:
                    q = Query(
                        axis="dose", question=f"dose of {note.text[hit[0] : hit[1]]} not documented"
                    )
                found.append((entry, hit, units, why, q))
        return found

    def _supplies(self, note: NoteText) -> list[tuple[dict[str, Any], Span]]:
        out = []
        supplies = [e for e in self.rules["supplies"] if any(note.maybe(p) for p in e["names"])]
        if not supplies:
            return []
        for sent in note.sentences:
            span = (sent.start, sent.end)
            if not sent.eligible or not note.search(self.rules["dispensed"], [span]):
                continue
            families: set[str] = set()
            for entry in supplies:
                family = str(entry.get("family", entry["code"]))
                hit = None if family in families else note.search(entry["names"], [span])
                if hit is not None and note.done_here(*hit)[0]:
                    families.add(family)
                    out.append((entry, hit))
        return out

    def _add(
        self,
        out: dict[str, CodeSuggestion],
        note: NoteText,
        code: str,
        hit: Span,
        units: int | None,
        why: list[str],
        query: Query | None,
    ) -> None:
        rec = self.kb.get(code, SYSTEM)
        if rec is None or not rec.billable:
            return  # not in the loaded HCPCS release, or ended
        ev = Evidence(
            start=hit[0],
            end=hit[1],
            text=note.text[hit[0] : hit[1]],
            section=note.sentence_at(hit[0]).section,
        )
        if code in out:  # the same drug twice: add the units, keep the evidence
            s = out[code]
            s.evidence.append(ev)
            if s.units is not None and units is not None:
                s.units += units
            return
        out[code] = CodeSuggestion(
            system=SYSTEM,
            code=code,
            title=rec.title,
            billable=True,
            description_source=rec.description_source,
            score=0.6 if query else 0.9,
            status="needs_query" if query else "suggested",
            evidence=[ev],
            explanation=["rule hcpcs", *why],
            query=query,
            units=units,
        )


def billing_units(
    text: str, sent: Span, name: Span, entry: dict[str, Any]
) -> tuple[int | None, list[str]]:
    """Units of ``entry``'s code for the dose written nearest the drug name in the sentence."""
    drug = text[name[0] : name[1]]
    if entry["unit"] == "dose":
        return 1, [f"'{drug}' given: one unit per dose"]
    dose = nearest_dose(text, sent, name, entry["unit"])
    if dose is None:
        return None, [f"'{drug}' given, dose not documented"]
    amount, written = dose
    per = float(entry["per"])
    units = max(1, math.ceil(amount / per - 1e-9))
    return units, [
        f"'{drug}' {written} given; {entry['code']} is per {per:g} {entry['unit']}: {units} unit(s)"
    ]


def nearest_dose(text: str, sent: Span, name: Span, unit: str) -> tuple[float, str] | None:
    """The dose (in ``unit``) written closest to the drug name within its sentence."""
    best: tuple[int, float, str] | None = None
    dose, to_base = _doses()
    for m in dose.finditer(text, sent[0], sent[1]):
        key = " ".join(m.group(2).lower().split())
        base, factor = to_base.get(key) or to_base.get(key.rstrip("s"), ("", 0.0))
        want = "mg" if unit == "mcg" else unit
        if base != want:
            continue
        value = float(m.group(1).replace(",", "")) * factor
        if unit == "mcg":
            value *= 1000.0
        # after the name (within 60 characters) reads first; then before it (within 30)
        dist = m.start() - name[1] if m.start() >= name[1] else (name[0] - m.end()) * 2
        if dist > 60 or (dist < 0):
            continue
        if best is None or dist < best[0]:
            best = (dist, value, text[m.start() : m.end()])
    return (best[1], best[2]) if best else None
