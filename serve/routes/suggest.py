"""``POST /v1/suggest`` and ``POST /v1/suggest/batch``."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

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
        429: {"model": Problem, "description": "This key is over its rate limit."},
        503: {
            "model": Problem,
            "description": "Model not loaded (yet), the service is busy, or the request ran "
            "past its deadline; retry after the Retry-After delay.",
        },
    },
    summary="Suggest codes for one note",
)
async def suggest(
    req: SuggestRequest,
    request: Request,
    svc: ServiceDep,
    key: KeyDep,
    engine: EngineDep,
    compact: Compact = False,
) -> Response:
    """Ranked codes with evidence (the same JSON as `clinicode suggest`). The note id (yours,
    or a generated one) comes back in the `X-Clinicode-Note-Id` header; feedback refers to
    it or to each code's `suggestion_id`."""
    check_note(req, svc.settings)
    note_id = req.note_id or new_note_id()
    result = await svc.admission.run(
        request,
        lambda: suggest_one(engine, svc.holder.slot, req),
        svc.settings.request_deadline_s,
    )
    await run_in_threadpool(
        record_suggestions, svc.store, svc.metrics, req, note_id, result, key.id, key.tenant
    )

    def render() -> bytes:
        body = result.model_dump(mode="json")
        return _json_bytes(compact_result(body) if compact else body)

    content = await run_in_threadpool(render)
    return Response(content, media_type="application/json", headers={NOTE_ID_HEADER: note_id})


@router.post(
    "/suggest/batch",
    response_model=BatchResponse,
    responses={
        **ERRORS,
        413: {"model": Problem},
        429: {"model": Problem},
        503: {"model": Problem},
    },
    summary="Suggest codes for up to 100 notes",
)
async def suggest_batch(
    req: BatchRequest,
    request: Request,
    svc: ServiceDep,
    key: KeyDep,
    engine: EngineDep,
    compact: Compact = False,
) -> Response:
    """One engine call per distinct set of options, under `CLINICODE_BATCH_DEADLINE_S`."""
    ids = batch_note_ids(req.notes, svc.settings)
    results = await svc.admission.run(
        request,
        lambda: suggest_many(engine, svc.holder.slot, req.notes),
        svc.settings.batch_deadline_s,
        units=len(req.notes),
    )

    def record() -> bytes:
        items = []
        for note, note_id, result in zip(req.notes, ids, results, strict=True):
            record_suggestions(svc.store, svc.metrics, note, note_id, result, key.id, key.tenant)
            item = BatchItem(note_id=note_id, result=result).model_dump(mode="json")
            if compact:
                item["result"] = compact_result(item["result"])
            items.append(item)
        return _json_bytes({"results": items})

    return Response(await run_in_threadpool(record), media_type="application/json")


def _json_bytes(content: object) -> bytes:
    """The body as ``JSONResponse`` renders it, rendered off the event loop (a large result
    takes tens of milliseconds)."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")
