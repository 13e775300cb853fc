"""The work queue: ``/v1/encounters`` (create, list and filter, open, decide, sequence and POA,
provider queries, mark coded, export as JSON / CSV / FHIR Claim) and the admin export of coded
encounters for a date range. Logic in :mod:`clinicode.serve.services.workbench`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from clinicode.schema import Setting

from ..deps import AdminKeyDep, EngineDep, KeyDep, ServiceDep, WorkQueueDep, get_kb
from ..encounter_schemas import (
    DecisionIn,
    EncounterIn,
    EncounterOut,
    QueryIn,
    QueueOut,
    Status,
    VersionIn,
    WorksheetPatch,
)
from ..schemas import ERRORS, NOTE_ID_PATTERN, Problem
from ..services import Refused
from ..services import encounter_export as export
from ..services import workbench as wb
from ..services.suggest import check_note, record_suggestions, suggest_one
from ..workqueue import Conflict, QueueFilter

router = APIRouter(prefix="/v1", tags=["encounters"])
EncounterId = Annotated[str, PathParam(pattern=NOTE_ID_PATTERN, description="The encounter id.")]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": Problem, "description": "No such encounter."},
    409: {"model": Problem, "description": "Coded (reopen it first) or changed meanwhile."},
}


@router.post(
    "/encounters",
    status_code=201,
    response_model=EncounterOut,
    responses={**_RESPONSES, 413: {"model": Problem}, 503: {"model": Problem}},
    summary="Put an encounter in the work queue",
)
def create_encounter(
    req: EncounterIn, svc: ServiceDep, key: KeyDep, engine: EngineDep, wq: WorkQueueDep
) -> EncounterOut:
    """Its documents are coded together (one text, each document headed by its title) and the
    suggestions recorded under the encounter id, which feedback refers to as the note id."""
    text, docs = wb.combine(req)
    sreq = wb.suggest_request(req, text)
    check_note(sreq, svc.settings)
    if req.encounter_id and wq.get(req.encounter_id) is not None:
        raise wb.Locked(f"encounter {req.encounter_id!r} exists already")
    result = suggest_one(engine, svc.holder.slot, sreq)
    eid = req.encounter_id or wb.new_id()
    record_suggestions(svc.store, svc.metrics, sreq, eid, result, key.id)
    enc = wb.new_encounter(eid, req, result=result, text=text, docs=docs, key_id=key.id)
    try:
        wq.create(enc, wb.index_codes(enc))
    except Conflict as exc:
        raise wb.Locked(str(exc)) from None
    return wb.view(enc)


@router.get(
    "/encounters", response_model=QueueOut, responses=ERRORS, summary="The work queue, filtered"
)
def list_encounters(
    _key: KeyDep,
    wq: WorkQueueDep,
    status: Annotated[list[Status] | None, Query(description="Any of these statuses.")] = None,
    setting: Setting | None = None,
    date_from: Annotated[date | None, Query(alias="from", description="From this date.")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="To this date.")] = None,
    code: Annotated[
        str | None, Query(max_length=32, description="A code or the start of one.")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="Words of the label.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> QueueOut:
    f = QueueFilter(
        status=tuple(status or ()),
        setting=setting,
        date_from=date_from,
        date_to=date_to,
        code=code.strip() or None if code else None,
        label=q.strip() or None if q else None,
        limit=limit,
    )
    return QueueOut.model_validate({"counts": wq.counts(), "items": wq.queue(f)})


@router.get(
    "/encounters/{encounter_id}",
    response_model=EncounterOut,
    responses=_RESPONSES,
    summary="Open an encounter as it was left",
)
def get_encounter(encounter_id: EncounterId, _key: KeyDep, wq: WorkQueueDep) -> EncounterOut:
    return wb.view(wb.get(wq, encounter_id))


@router.post(
    "/encounters/{encounter_id}/decisions",
    response_model=EncounterOut,
    responses=_RESPONSES,
    summary="Accept, reject (with a reason), modify, add or undo a code",
)
def decide(
    encounter_id: EncounterId, req: DecisionIn, svc: ServiceDep, key: KeyDep, wq: WorkQueueDep
) -> EncounterOut:
    """Recorded through `/v1/feedback`'s service (audit table, training export), then shown
    on the encounter's worksheet."""
    kb = partial(get_kb, svc)
    record = wb.bound_recorder(store=svc.store, key_id=key.id, engine=svc.holder.engine, kb=kb)
    enc = wb.decide(wq, encounter_id, req, record=record, kb=kb)
    if req.action != "undo":
        svc.metrics.feedback.inc(svc.metrics.worker, req.action)
    return wb.view(enc)


@router.patch(
    "/encounters/{encounter_id}/worksheet",
    response_model=EncounterOut,
    responses=_RESPONSES,
    summary="Sequence, POA, modifiers, units, position",
)
def patch_worksheet(
    encounter_id: EncounterId, req: WorksheetPatch, _key: KeyDep, wq: WorkQueueDep
) -> EncounterOut:
    return wb.view(wb.patch_worksheet(wq, encounter_id, req))


@router.put(
    "/encounters/{encounter_id}/queries/{suggestion_id}",
    response_model=EncounterOut,
    responses=_RESPONSES,
    summary="Edit, send (record) or resolve a provider query",
)
def put_query(
    encounter_id: EncounterId,
    suggestion_id: Annotated[str, PathParam(min_length=1, max_length=128)],
    req: QueryIn,
    _key: KeyDep,
    wq: WorkQueueDep,
) -> EncounterOut:
    return wb.view(wb.put_query(wq, encounter_id, suggestion_id, req))


@router.post(
    "/encounters/{encounter_id}/complete",
    response_model=EncounterOut,
    responses=_RESPONSES,
    summary="Mark coded (refused with what is left to do)",
)
def complete(
    encounter_id: EncounterId, _key: KeyDep, wq: WorkQueueDep, req: VersionIn | None = None
) -> EncounterOut:
    return wb.view(wb.complete(wq, encounter_id, req.version if req else None))


@router.post(
    "/encounters/{encounter_id}/reopen",
    response_model=EncounterOut,
    responses=_RESPONSES,
    summary="Reopen a coded encounter",
)
def reopen(
    encounter_id: EncounterId, _key: KeyDep, wq: WorkQueueDep, req: VersionIn | None = None
) -> EncounterOut:
    return wb.view(wb.reopen(wq, encounter_id, req.version if req else None))


ExportFormat = Literal["json", "csv", "fhir"]


@router.get(
    "/encounters/{encounter_id}/export",
    responses={
        **_RESPONSES,
        200: {"content": {"application/json": {}, "text/csv": {}, "application/fhir+json": {}}},
    },
    summary="Final codes as JSON, CSV or a FHIR R4 Claim",
)
def export_encounter(
    encounter_id: EncounterId,
    _key: KeyDep,
    wq: WorkQueueDep,
    format: Annotated[ExportFormat, Query(description="json, csv or fhir (a Claim).")] = "json",
) -> Response:
    enc = wb.get(wq, encounter_id)
    name = f"{enc.encounter_id}.{ {'json': 'json', 'csv': 'csv', 'fhir': 'claim.json'}[format] }"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return Response(export.to_csv([enc]), media_type="text/csv", headers=disposition)
    if format == "fhir":
        return JSONResponse(
            export.to_fhir_claim(enc), media_type="application/fhir+json", headers=disposition
        )
    return JSONResponse(export.to_json(enc), headers=disposition)


@router.get(
    "/admin/encounters/export",
    tags=["admin"],
    responses={
        **ERRORS,
        200: {"content": {"application/x-ndjson": {}, "text/csv": {}}},
    },
    summary="Coded encounters for a date range (admin keys)",
)
def export_coded(
    _admin: AdminKeyDep,
    wq: WorkQueueDep,
    start: Annotated[date, Query(alias="from", description="First day coded (UTC).")],
    end: Annotated[date, Query(alias="to", description="Last day coded (UTC), inclusive.")],
    format: Annotated[
        Literal["jsonl", "csv", "training"],
        Query(description="jsonl: one export per line; csv; training: text + codes + rejected."),
    ] = "jsonl",
) -> Response:
    if end < start:
        raise Refused(f"'to' ({end}) is before 'from' ({start})")
    t0 = datetime.combine(start, time.min, tzinfo=UTC)
    t1 = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    encs = wq.coded_between(t0, t1)
    name = f"clinicode-coded-{start}-{end}"
    if format == "csv":
        return Response(
            export.to_csv(encs),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    make = export.training_record if format == "training" else export.to_json
    body = "".join(json.dumps(make(e), ensure_ascii=False) + "\n" for e in encs)
    return Response(
        body,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}.jsonl"'},
    )
