"""``/health/live``, ``/health/ready`` (no key) and ``/metrics`` (any key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from ..deps import KeyDep, ServiceDep, redact_paths
from ..schemas import ERRORS

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="The process is up")
async def live() -> dict[str, str]:
    """Async and touches nothing: it answers on the event loop however busy the engine
    threads are (``serve/admission.py``)."""
    return {"status": "live"}


@router.get(
    "/health/ready",
    summary="Ready once the model pack is loaded",
    responses={
        503: {
            "description": "Loading, the model pack could not be loaded, or a file the "
            "service reads (the knowledge base, the database) is damaged: `reason` names it."
        }
    },
)
def ready(svc: ServiceDep) -> JSONResponse:
    """No key needed, so nothing here shows a path: files are named, never located."""
    holder = svc.holder
    holder.start()  # retries a failed load after a while
    body: dict[str, Any] = {"status": holder.status}
    kb_problem = svc.kb_problem()
    if kb_problem is not None:
        body = {"status": "degraded", "reason": kb_problem, "file": svc.kb_file().name}
        return JSONResponse(body, status_code=503)
    if holder.engine is not None:
        try:
            svc.store.ping()
        except Exception as exc:
            body = {"status": "degraded", "reason": f"database: {type(exc).__name__}"}
            return JSONResponse(body, status_code=503)
        body["model"] = holder.engine.info.model_dump()
        body["code_sets"] = holder.engine.code_sets
        return JSONResponse(body)
    if holder.error:
        body["reason"] = redact_paths(holder.error)
    return JSONResponse(body, status_code=503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses=ERRORS,
    summary="Prometheus metrics",
)
def metrics(svc: ServiceDep, _key: KeyDep) -> PlainTextResponse:
    return PlainTextResponse(
        svc.metrics.render(svc.holder.engine is not None),
        media_type="text/plain; version=0.0.4",
    )
