"""Admin-key routes: ``GET /v1/feedback/export`` (reviewed notes as training JSONL; it holds
note text, so a user key gets 403), and the model packs: ``GET /v1/admin/packs``,
``POST /v1/admin/packs/promote`` and ``POST /v1/admin/packs/rollback`` (the server switches to
the new pack in the background, without a failed request)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ..deps import AdminKeyDep, ServiceDep
from ..schemas import ERRORS, Problem, PromoteRequest
from ..services import packs

router = APIRouter(prefix="/v1")


@router.get(
    "/feedback/export",
    tags=["feedback"],
    response_class=StreamingResponse,
    responses={
        **ERRORS,
        200: {
            "content": {"application/x-ndjson": {}},
            "description": 'One {"id","note_id","version","text","codes"} per reviewed '
            "note version, for `clinicode train --format jsonl`.",
        },
    },
    summary="Export reviewed notes as training JSONL (admin keys)",
)
def export_feedback(svc: ServiceDep, key: AdminKeyDep) -> StreamingResponse:
    """The reviewed notes of the key's tenant, each version with the decisions made on it."""
    store = svc.store

    def lines() -> Iterator[str]:
        for rec in store.export(key.tenant):
            yield json.dumps(rec, ensure_ascii=False) + "\n"

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="clinicode-feedback.jsonl"'},
    )


_PACK_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": Problem, "description": "No pack of that name in the data dir."},
    409: {
        "model": Problem,
        "description": "CLINICODE_MODEL_DIR pins the pack, or nothing to roll back to.",
    },
}


@router.get("/admin/packs", tags=["packs"], responses=ERRORS, summary="Model packs (admin keys)")
async def list_packs(svc: ServiceDep, _key: AdminKeyDep) -> dict[str, Any]:
    """The packs of the data dir, the promoted one, and the version this worker serves."""
    return await run_in_threadpool(packs.status, svc)


@router.post(
    "/admin/packs/promote",
    tags=["packs"],
    status_code=202,
    responses=_PACK_ERRORS,
    summary="Promote a pack: the server switches to it without downtime (admin keys)",
)
async def promote_pack(req: PromoteRequest, svc: ServiceDep, _key: AdminKeyDep) -> dict[str, Any]:
    """Checks the pack (files, signature, code sets), records it as the serving pack and loads
    it in the background; requests keep being answered by the old pack until the switch."""
    return await run_in_threadpool(packs.promote, svc, req.pack)


@router.post(
    "/admin/packs/rollback",
    tags=["packs"],
    status_code=202,
    responses=_PACK_ERRORS,
    summary="Serve the pack that served before (admin keys)",
)
async def rollback_pack(svc: ServiceDep, _key: AdminKeyDep) -> dict[str, Any]:
    return await run_in_threadpool(packs.rollback, svc)
