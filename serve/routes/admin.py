"""Admin-key routes: ``GET /v1/feedback/export`` (reviewed notes as training JSONL; it holds
note text, so a user key gets 403)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ..deps import AdminKeyDep, ServiceDep
from ..schemas import ERRORS

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
