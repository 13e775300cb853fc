"""The coder's workbench without HTTP: encounters in the work queue, decisions (recorded through
the feedback service, so the training export sees them), sequence, POA, provider queries and
completion. The CLI can drive the same functions with a store and an engine.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from clinicode.kb import KnowledgeBase, normalize_code
from clinicode.schema import DIAGNOSIS_SYSTEMS, Evidence, SuggestResult

from ..encounter_schemas import (
    POA,
    REJECT_REASONS,
    Added,
    Decision,
    DecisionIn,
    EncounterIn,
    EncounterOut,
    FinalLine,
    QueryIn,
    QueryState,
    Worksheet,
    WorksheetPatch,
)
from ..resources import load as load_resource
from ..schemas import FeedbackRequest, SuggestRequest
from ..workqueue import Conflict, Encounter, WorkQueueStore
from . import NotFound, Refused
from .feedback import record_feedback

KBSource = Callable[[], KnowledgeBase]
DOC_SEPARATOR = "\n\n"
NOT_SUPPORT = ("negated", "family", "hypothetical")
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n\s*\n")


class Locked(Refused):
    """The encounter is coded (or changed meanwhile): 409."""

    status = 409


def _now() -> datetime:
    return datetime.now(UTC)


def combine(req: EncounterIn) -> tuple[str, list[dict[str, Any]]]:
    """One text for the encounter (the engine codes the whole encounter) and each document's
    span in it. Several documents are each headed by a line naming them."""
    parts: list[str] = []
    docs: list[dict[str, Any]] = []
    pos = 0
    many = len(req.documents) > 1
    for i, d in enumerate(req.documents, start=1):
        title = d.title or (d.note_type or "").replace("_", " ").capitalize() or f"Document {i}"
        head = f"=== {title} ===\n" if many else ""
        if parts:
            parts.append(DOC_SEPARATOR)
            pos += len(DOC_SEPARATOR)
        start = pos + len(head)
        parts.append(head + d.text)
        pos += len(head) + len(d.text)
        docs.append({"title": title, "note_type": d.note_type, "start": start, "end": pos})
    return "".join(parts), docs


def new_id() -> str:
    return "e-" + uuid.uuid4().hex[:16]


def new_encounter(
    eid: str,
    req: EncounterIn,
    *,
    result: SuggestResult,
    text: str,
    docs: list[dict[str, Any]],
    key_id: str,
) -> Encounter:
    """The encounter as stored, once ``result`` was recorded (its codes have their ids)."""
    now = _now()
    return Encounter(
        encounter_id=eid,
        note_id=eid,
        label=req.label,
        setting=req.setting,
        encounter_date=req.encounter_date,
        status="new",
        created_at=now,
        updated_at=now,
        coded_at=None,
        key_id=key_id,
        version=1,
        text=text,
        documents=docs,
        result=result.model_dump(mode="json"),
        worksheet=_initial_worksheet(result).model_dump(mode="json"),
    )


def suggest_request(req: EncounterIn, text: str) -> SuggestRequest:
    note_type = req.documents[0].note_type if len(req.documents) == 1 else "encounter"
    return SuggestRequest(text=text, setting=req.setting, note_type=note_type)


def _initial_worksheet(result: SuggestResult) -> Worksheet:
    """Drafted provider queries for every code that needs one."""
    ws = Worksheet()
    for s in [*result.codes, *result.candidates]:
        if s.query is not None and s.suggestion_id:
            ws.queries[s.suggestion_id] = QueryState(axis=s.query.axis, text=s.query.question)
    return ws


def get(wq: WorkQueueStore, encounter_id: str) -> Encounter:
    enc = wq.get(encounter_id)
    if enc is None:
        raise NotFound(f"unknown encounter {encounter_id!r}: create it with POST /v1/encounters")
    return enc


# -- the final code lines ------------------------------------------------------------------
def _kind(system: str) -> str:
    if system in DIAGNOSIS_SYSTEMS:
        return "diagnosis"
    return "procedure" if system == "ICD-10-PCS" else "item"


def final_lines(enc: Encounter) -> list[FinalLine]:
    """The codes the coder kept, in the coder's sequence (default: principal first, then the
    engine's order), numbered within diagnoses, procedures and items."""
    result = SuggestResult.model_validate(enc.result)
    ws = Worksheet.model_validate(enc.worksheet)
    lines: dict[str, FinalLine] = {}
    evidence: dict[str, list[Evidence]] = {}
    for s in [*result.codes, *result.candidates]:
        d = ws.decisions.get(s.suggestion_id)
        if d is None or d.action == "reject":
            continue
        code = d.final_code if d.action == "modify" and d.final_code else s.code
        key = f"{s.system}|{code}"
        evidence.setdefault(key, []).extend(s.evidence)
        lines.setdefault(
            key,
            FinalLine(
                key=key,
                kind=_kind(s.system),  # type: ignore[arg-type]
                sequence=0,
                system=s.system,
                code=code,
                title=(d.final_title or code) if d.action == "modify" else s.title,
                source="modified" if d.action == "modify" else "accepted",
                original_code=s.code if d.action == "modify" else None,
                principal=s.principal and d.action == "accept",
            ),
        )
    for a in ws.added:
        key = f"{a.system}|{a.code}"
        lines.setdefault(
            key,
            FinalLine(
                key=key,
                kind=_kind(a.system),  # type: ignore[arg-type]
                sequence=0,
                system=a.system,
                code=a.code,
                title=a.title,
                source="added",
            ),
        )
    default = sorted(lines.values(), key=lambda ln: not ln.principal)  # stable
    pos = {k: i for i, k in enumerate(ws.sequence)}
    ordered = sorted(default, key=lambda ln: pos.get(ln.key, len(pos)))
    counters: dict[str, int] = {}
    for ln in ordered:
        counters[ln.kind] = counters.get(ln.kind, 0) + 1
        ln.sequence = counters[ln.kind]
        ln.principal = ln.kind == "diagnosis" and ln.sequence == 1
        if ln.kind == "diagnosis" and ln.key in ws.poa:
            ln.poa, ln.poa_source = ws.poa[ln.key], "coder"
        elif ln.kind == "diagnosis" and enc.setting == "inpatient":
            ln.poa = poa_from_note(enc.text, evidence.get(ln.key, []))
            ln.poa_source = "note" if ln.poa else None
        ln.modifiers = ws.modifiers.get(ln.key, []) if ln.kind == "item" else []
        ln.units = ws.units.get(ln.key, 1)
    return ordered


def _sentence(text: str, start: int, end: int) -> str:
    left = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    m = _SENTENCE_END.search(text, end)
    return text[left : m.start() if m else len(text)]


def poa_from_note(text: str, evidence: Sequence[Evidence]) -> POA | None:
    """The POA status the note documents in the sentence of a diagnosis's evidence (``Y`` or
    ``N``; the longest cue of ``resources/poa_cues.json`` wins), else None."""
    cues: dict[str, list[str]] = load_resource("poa_cues.json")
    best: tuple[int, POA] | None = None
    documented: tuple[POA, ...] = ("Y", "N")
    for e in evidence:
        if e.assertion in NOT_SUPPORT:
            continue
        sentence = _sentence(text, e.start, e.end).lower()
        for value in documented:
            for cue in cues[value]:
                if (best is None or len(cue) > best[0]) and re.search(
                    rf"\b{re.escape(cue)}\b", sentence
                ):
                    best = (len(cue), value)
    return best[1] if best else None


def problems(enc: Encounter, lines: list[FinalLine]) -> list[str]:
    """What must be done before the encounter can be marked coded."""
    result = SuggestResult.model_validate(enc.result)
    ws = Worksheet.model_validate(enc.worksheet)
    out = [f"{s.code} has no decision" for s in result.codes if s.suggestion_id not in ws.decisions]
    out += [
        f"the query on {_code_of(result, sid)} is not answered"
        for sid, q in ws.queries.items()
        if q.status == "sent"
    ]
    if enc.setting == "inpatient":
        out += [
            f"{ln.code} needs a POA indicator"
            for ln in lines
            if ln.kind == "diagnosis" and ln.poa is None
        ]
    if not lines:
        out.append("no final code")
    return out


def _code_of(result: SuggestResult, sid: str) -> str:
    for s in [*result.codes, *result.candidates]:
        if s.suggestion_id == sid:
            return s.code
    return sid


def view(enc: Encounter) -> EncounterOut:
    lines = final_lines(enc)
    return EncounterOut(
        encounter_id=enc.encounter_id,
        note_id=enc.note_id,
        label=enc.label,
        setting=enc.setting,  # type: ignore[arg-type]
        encounter_date=enc.encounter_date,
        status=enc.status,  # type: ignore[arg-type]
        version=enc.version,
        created_at=enc.created_at,
        updated_at=enc.updated_at,
        coded_at=enc.coded_at,
        text=enc.text,
        documents=enc.documents,
        result=SuggestResult.model_validate(enc.result),
        worksheet=Worksheet.model_validate(enc.worksheet),
        final=lines,
        problems=problems(enc, lines),
    )


def index_codes(enc: Encounter) -> list[str]:
    """Codes the queue's code filter finds the encounter by: final, then suggested."""
    result = SuggestResult.model_validate(enc.result)
    return [ln.code for ln in final_lines(enc)] + [s.code for s in result.codes]


# -- changes -------------------------------------------------------------------------------
def mutate(
    wq: WorkQueueStore,
    encounter_id: str,
    change: Callable[[Encounter, Worksheet], None],
    *,
    version: int | None,
    allow_coded: bool = False,
) -> Encounter:
    """Read, change and save under the version check; retried when another write came first
    and the caller gave no version."""
    for _attempt in range(5):
        enc = get(wq, encounter_id)
        if version is not None and enc.version != version:
            raise Locked(
                f"encounter {encounter_id!r} is at version {enc.version}, not {version}: "
                "reload it and try again"
            )
        if enc.status == "coded" and not allow_coded:
            raise Locked(f"encounter {encounter_id!r} is coded: reopen it to change it")
        ws = Worksheet.model_validate(enc.worksheet)
        change(enc, ws)
        enc.worksheet = ws.model_dump(mode="json")
        if enc.status != "coded":
            enc.status = _derived_status(ws)
        try:
            return wq.save(enc, index_codes(enc), expected_version=enc.version)
        except Conflict:
            if version is not None:
                raise Locked(f"encounter {encounter_id!r} changed meanwhile: reload it") from None
    raise Locked(f"encounter {encounter_id!r} is busy: try again")


def _derived_status(ws: Worksheet) -> str:
    if any(q.status == "sent" for q in ws.queries.values()):
        return "queried"
    if ws.decisions or ws.added or any(q.status != "draft" for q in ws.queries.values()):
        return "in_progress"
    return "new"


def _suggestion(enc: Encounter, sid: str) -> dict[str, Any]:
    for s in [*enc.result["codes"], *enc.result["candidates"]]:
        if s.get("suggestion_id") == sid:
            return dict(s)
    raise NotFound(f"no suggestion {sid!r} in encounter {enc.encounter_id!r}")


def decide(
    wq: WorkQueueStore,
    encounter_id: str,
    req: DecisionIn,
    *,
    record: Callable[[FeedbackRequest], Any],
    kb: KBSource,
) -> Encounter:
    """Record the decision through the feedback service (audit and training export), then
    show it in the worksheet. ``record`` is ``record_feedback`` bound to the store and key."""
    enc = get(wq, encounter_id)
    if enc.status == "coded":
        raise Locked(f"encounter {encounter_id!r} is coded: reopen it to change it")
    if req.action == "undo":
        return mutate(wq, encounter_id, lambda e, ws: _undo(ws, req), version=req.version)
    if req.action == "add":
        system = req.system or "ICD-10-CM"
        code = normalize_code(req.code or "", system)
        fb = FeedbackRequest(note_id=enc.note_id, code=code, system=system, action="add")
        row = record(fb)
        title = _title(kb, code, system)

        def add(_e: Encounter, ws: Worksheet) -> None:
            if not any(a.system == system and a.code == code for a in ws.added):
                ws.added.append(
                    Added(system=system, code=code, title=title, feedback_id=row.id, at=row.at)
                )

        return mutate(wq, encounter_id, add, version=req.version)
    sid = str(req.suggestion_id)
    sugg = _suggestion(enc, sid)
    reason = None
    if req.action == "reject" and req.reason:
        reason = req.reason + (f": {req.reason_text.strip()}" if req.reason_text else "")
    elif req.reason_text:
        reason = req.reason_text.strip()
    fb = FeedbackRequest(
        suggestion_id=sid,
        action=req.action,
        final_code=req.final_code if req.action == "modify" else None,
        reason=reason,
    )
    row = record(fb)
    final_title = _title(kb, row.final_code, sugg["system"]) if req.action == "modify" else None

    def put(_e: Encounter, ws: Worksheet) -> None:
        ws.decisions[sid] = Decision(
            action=req.action,  # type: ignore[arg-type]
            final_code=row.final_code,
            final_title=final_title,
            reason=req.reason if req.action == "reject" else None,
            reason_text=req.reason_text,
            feedback_id=row.id,
            at=row.at,
        )

    return mutate(wq, encounter_id, put, version=req.version)


def _undo(ws: Worksheet, req: DecisionIn) -> None:
    """Takes a decision off the worksheet (the audit keeps it; a new decision supersedes it in
    the training export)."""
    if req.suggestion_id:
        ws.decisions.pop(req.suggestion_id, None)
    if req.code:
        ws.added = [a for a in ws.added if a.code != req.code]


def _title(kb: KBSource, code: str | None, system: str) -> str:
    if not code:
        return ""
    try:
        rec = kb().get(code, system)
    except Exception:  # the code sets may be unavailable; the title is only for display
        return code
    return rec.title if rec is not None else code


def patch_worksheet(wq: WorkQueueStore, encounter_id: str, req: WorksheetPatch) -> Encounter:
    def change(_e: Encounter, ws: Worksheet) -> None:
        if req.sequence is not None:
            ws.sequence = list(dict.fromkeys(req.sequence))
        if req.poa is not None:
            ws.poa.update(req.poa)
        if req.modifiers is not None:
            ws.modifiers.update({k: [m.upper() for m in v][:4] for k, v in req.modifiers.items()})
        if req.units is not None:
            ws.units.update(req.units)
        if req.cursor is not None:
            ws.cursor = req.cursor
        if req.view is not None:
            ws.view = req.view

    only_view = req.sequence is None and req.poa is None and req.modifiers is None
    only_view = only_view and req.units is None
    return mutate(wq, encounter_id, change, version=req.version, allow_coded=only_view)


def put_query(wq: WorkQueueStore, encounter_id: str, sid: str, req: QueryIn) -> Encounter:
    enc = get(wq, encounter_id)
    _suggestion(enc, sid)

    def change(_e: Encounter, ws: Worksheet) -> None:
        old = ws.queries.get(sid)
        ws.queries[sid] = QueryState(
            axis=old.axis if old else "",
            text=req.text,
            status=req.status,
            answer=req.answer,
            at=_now(),
        )

    return mutate(wq, encounter_id, change, version=req.version)


def complete(wq: WorkQueueStore, encounter_id: str, version: int | None) -> Encounter:
    enc = get(wq, encounter_id)
    todo = problems(enc, final_lines(enc))
    if todo:
        raise Refused("cannot mark coded: " + "; ".join(todo))

    def change(e: Encounter, _ws: Worksheet) -> None:
        e.status = "coded"
        e.coded_at = _now()

    return mutate(wq, encounter_id, change, version=version)


def reopen(wq: WorkQueueStore, encounter_id: str, version: int | None) -> Encounter:
    def change(e: Encounter, ws: Worksheet) -> None:
        e.status = _derived_status(ws)
        e.coded_at = None

    return mutate(wq, encounter_id, change, version=version, allow_coded=True)


def bound_recorder(
    *, store: Any, key_id: str, engine: Any, kb: KBSource
) -> Callable[[FeedbackRequest], Any]:
    def record(req: FeedbackRequest) -> Any:
        return record_feedback(req, store=store, key_id=key_id, engine=engine, kb=kb)

    return record


__all__ = ["REJECT_REASONS", "Locked"]
