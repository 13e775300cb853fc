"""``POST /v1/suggest`` and ``POST /v1/suggest/batch``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from clinicode.schema import SuggestResult

from ..deps import EngineDep, KeyDep, ServiceDep
from ..schemas import ERRORS, BatchItem, BatchRequest, BatchResponse, Problem, SuggestRequest
from ..services.shape import compact as compact_result
from ..services.suggest import (
    batch_note_ids,
    check_note,
    new_note_id,
    record_suggestions,
    suggest_many,
    suggest_one,
)

NOTE_ID_HEADER = "X-Clinicode-Note-Id"
Compact = Annotated[
    bool,
    Query(description="Only the suggested codes: no mentions, candidates or suppressed codes."),
]

router = APIRouter(prefix="/v1", tags=["suggest"])


@router.post(
    "/suggest",
    response_model=SuggestResult,
    responses={
        **ERRORS,
        413: {"model": Problem, "description": "Note text over the limit."},
        503: {"model": Problem, "description": "Model not loaded (yet)."},
    },
    summary="Suggest codes for one note",
)
def suggest(
    req: SuggestRequest,
    svc: ServiceDep,
    key: KeyDep,
    engine: EngineDep,
    compact: Compact = False,
) -> JSONResponse:
    """Ranked codes with evidence (the same JSON as `clinicode suggest`). The note id (yours,
    or a generated one) comes back in the `X-Clinicode-Note-Id` header; feedback refers to
    it or to each code's `suggestion_id`."""
    check_note(req, svc.settings)
    note_id = req.note_id or new_note_id()
    result = suggest_one(engine, svc.holder.slot, req)
    record_suggestions(svc.store, svc.metrics, req, note_id, result, key.id)
    body = result.model_dump(mode="json")
    return JSONResponse(
        compact_result(body) if compact else body, headers={NOTE_ID_HEADER: note_id}
    )


@router.post(
    "/suggest/batch",
    response_model=BatchResponse,
    responses={**ERRORS, 413: {"model": Problem}, 503: {"model": Problem}},
    summary="Suggest codes for up to 100 notes",
)
def suggest_batch(
    req: BatchRequest,
    svc: ServiceDep,
    key: KeyDep,
    engine: EngineDep,
    compact: Compact = False,
) -> JSONResponse:
    ids = batch_note_ids(req.notes, svc.settings)
    results = suggest_many(engine, svc.holder.slot, req.notes)
    items = []
    for note, note_id, result in zip(req.notes, ids, results, strict=True):
        record_suggestions(svc.store, svc.metrics, note, note_id, result, key.id)
        item = BatchItem(note_id=note_id, result=result).model_dump(mode="json")
        if compact:
            item["result"] = compact_result(item["result"])
        items.append(item)
    return JSONResponse({"results": items})
