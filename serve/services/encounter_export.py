"""Final codes out of the workbench: JSON, CSV and a FHIR R4 ``Claim``.

The Claim is checked against the FHIR structure with ``fhir.resources`` (its R4B package: R4B
is a technical correction of R4 4.0.1 and leaves ``Claim`` unchanged). Patient, provider and
coverage are references for the billing system to fill in: the workbench knows none of them.
The exports hold codes, decisions and reasons, never the note text (the training export, which
needs the text, is admin-only).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from clinicode.schema import SuggestResult

from ..encounter_schemas import REJECT_REASONS, FinalLine, Worksheet
from ..workqueue import Encounter
from . import Refused
from .workbench import final_lines

CODE_SYSTEM_URI = {
    "ICD-10-CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "ICD-10-PCS": "http://www.cms.gov/Medicare/Coding/ICD10",
    "CPT": "http://www.ama-assn.org/go/cpt",
    "HCPCS": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
}
POA_SYSTEM = "https://www.nubc.org/CodeSystem/PresentOnAdmissionIndicator"
DIAGNOSIS_TYPE = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
CSV_FIELDS = [
    "encounter_id",
    "label",
    "encounter_date",
    "setting",
    "status",
    "kind",
    "sequence",
    "system",
    "code",
    "title",
    "principal",
    "poa",
    "poa_source",
    "modifiers",
    "units",
    "source",
    "original_code",
    "decision",
    "reason",
    "reason_text",
]


def rejections(enc: Encounter) -> list[dict[str, Any]]:
    """Rejected suggestions with their reason from the closed list."""
    result = SuggestResult.model_validate(enc.result)
    ws = Worksheet.model_validate(enc.worksheet)
    out = []
    for s in [*result.codes, *result.candidates]:
        d = ws.decisions.get(s.suggestion_id)
        if d is not None and d.action == "reject":
            out.append(
                {
                    "system": s.system,
                    "code": s.code,
                    "title": s.title,
                    "reason": d.reason,
                    "reason_label": REJECT_REASONS.get(d.reason or "", ""),
                    "reason_text": d.reason_text,
                }
            )
    return out


def to_json(enc: Encounter) -> dict[str, Any]:
    result = SuggestResult.model_validate(enc.result)
    ws = Worksheet.model_validate(enc.worksheet)
    return {
        "encounter_id": enc.encounter_id,
        "note_id": enc.note_id,
        "label": enc.label,
        "encounter_date": enc.encounter_date.isoformat(),
        "setting": enc.setting,
        "status": enc.status,
        "coded_at": enc.coded_at.isoformat() if enc.coded_at else None,
        "model": result.model.model_dump(),
        "code_sets": result.code_sets,
        "codes": [ln.model_dump(exclude={"key"}) for ln in final_lines(enc)],
        "rejected": rejections(enc),
        "queries": [
            {"code": _code(result, sid), **q.model_dump(mode="json")}
            for sid, q in ws.queries.items()
            if q.status != "draft"
        ],
    }


def _code(result: SuggestResult, sid: str) -> str:
    for s in [*result.codes, *result.candidates]:
        if s.suggestion_id == sid:
            return s.code
    return ""


def csv_rows(enc: Encounter) -> list[dict[str, Any]]:
    base = {
        "encounter_id": enc.encounter_id,
        "label": enc.label,
        "encounter_date": enc.encounter_date.isoformat(),
        "setting": enc.setting,
        "status": enc.status,
    }
    rows = [
        {
            **base,
            **ln.model_dump(exclude={"key"}),
            "modifiers": " ".join(ln.modifiers),
            "decision": ln.source,
            "reason": "",
            "reason_text": "",
        }
        for ln in final_lines(enc)
    ]
    for r in rejections(enc):
        rows.append(
            {
                **base,
                "kind": "rejected",
                "system": r["system"],
                "code": r["code"],
                "title": r["title"],
                "decision": "rejected",
                "reason": r["reason"] or "",
                "reason_text": r["reason_text"] or "",
            }
        )
    return rows


def _cell(v: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def to_csv(encs: list[Encounter]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    for enc in encs:
        w.writerows({k: _cell(v) for k, v in row.items()} for row in csv_rows(enc))
    return buf.getvalue()


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def claim_dict(enc: Encounter, lines: list[FinalLine]) -> dict[str, Any]:
    day = enc.encounter_date.isoformat()
    dx = [ln for ln in lines if ln.kind == "diagnosis"]
    px = [ln for ln in lines if ln.kind == "procedure"]
    items = [ln for ln in lines if ln.kind == "item"]
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "id": enc.encounter_id[:64],
        "status": "draft" if enc.status != "coded" else "active",
        "type": _concept(
            CLAIM_TYPE, "institutional" if enc.setting == "inpatient" else "professional"
        ),
        "use": "claim",
        "patient": {"display": "to be completed by the billing system"},
        "billablePeriod": {"start": day},
        "created": (enc.coded_at or datetime.now(UTC)).isoformat(),
        "provider": {"display": "to be completed by the billing system"},
        "priority": _concept("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
        "insurance": [
            {
                "sequence": 1,
                "focal": True,
                "coverage": {"display": "to be completed by the billing system"},
            }
        ],
        "diagnosis": [
            {
                "sequence": ln.sequence,
                "diagnosisCodeableConcept": _concept(CODE_SYSTEM_URI[ln.system], ln.code, ln.title),
                **(
                    {"type": [_concept(DIAGNOSIS_TYPE, "principal")]}
                    if ln.principal and enc.setting == "inpatient"
                    else {}
                ),
                **({"onAdmission": _concept(POA_SYSTEM, ln.poa)} if ln.poa else {}),
            }
            for ln in dx
        ],
        "procedure": [
            {
                "sequence": ln.sequence,
                "date": day,
                "procedureCodeableConcept": _concept(CODE_SYSTEM_URI[ln.system], ln.code, ln.title),
            }
            for ln in px
        ],
        "item": [
            {
                "sequence": ln.sequence,
                "diagnosisSequence": [d.sequence for d in dx[:4]],
                "productOrService": _concept(CODE_SYSTEM_URI[ln.system], ln.code),
                "modifier": [_concept(CODE_SYSTEM_URI[ln.system], m) for m in ln.modifiers],
                "servicedDate": day,
                "quantity": {"value": ln.units},
            }
            for ln in items
        ],
    }
    for k in ("diagnosis", "procedure", "item"):
        if not claim[k]:
            del claim[k]
    for it in claim.get("item", []):
        if not it["modifier"]:
            del it["modifier"]
        if not it["diagnosisSequence"]:
            del it["diagnosisSequence"]
    return claim


def to_fhir_claim(enc: Encounter) -> dict[str, Any]:
    """The Claim as JSON, once ``fhir.resources`` accepts it (a rejection is a 422, not a bad
    file handed on)."""
    from fhir.resources.R4B.claim import Claim
    from pydantic import ValidationError

    data = claim_dict(enc, final_lines(enc))
    try:
        claim = Claim.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        raise Refused(f"the FHIR Claim does not validate ({where})") from None
    out: dict[str, Any] = claim.model_dump(mode="json", exclude_none=True)
    return out


def training_record(enc: Encounter) -> dict[str, Any]:
    """``{"id","text","codes"}`` for ``clinicode train --format jsonl``, with the rejected
    codes and their reasons (``rejected``) as the negative signal."""
    return {
        "id": enc.note_id,
        "text": enc.text,
        "codes": [{"system": ln.system, "code": ln.code} for ln in final_lines(enc)],
        "rejected": [
            {"system": r["system"], "code": r["code"], "reason": r["reason"]}
            for r in rejections(enc)
        ],
    }
