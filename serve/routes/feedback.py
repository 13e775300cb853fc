"""``POST /v1/feedback``: a coder's decision, checked and recorded by
:mod:`clinicode.serve.services.feedback`. The export of reviewed notes is admin-only:
:mod:`clinicode.serve.routes.admin`."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from ..deps import KeyDep, ServiceDep, get_kb
from ..schemas import ERRORS, FeedbackRequest, FeedbackResponse, Problem
from ..services.feedback import record_feedback

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackResponse,
    responses={
        **ERRORS,
        404: {"model": Problem},
        409: {"model": Problem, "description": "The ids disagree, or the code set changed."},
    },
    summary="Record a coder's decision",
)
def feedback(req: FeedbackRequest, svc: ServiceDep, key: KeyDep) -> FeedbackResponse:
    """accept / reject / modify a suggestion (by `suggestion_id`, or `note_id` + `code`), or
    add a code the engine missed (`note_id` + `code`). A kept code must be a billable code of
    a loaded code set at the note's version (422 names the reason); ids that disagree get 409.
    Answered only once committed."""
    row = record_feedback(
        req,
        store=svc.store,
        key_id=key.id,
        engine=svc.holder.engine,
        kb=partial(get_kb, svc),
        tenant=key.tenant,
    )
    svc.metrics.feedback.inc(svc.metrics.worker, req.action)
    return FeedbackResponse(
        feedback_id=row.id,
        recorded_at=row.at,
        note_id=row.note_id,
        suggestion_id=row.suggestion_id,
        system=row.system,
        code=row.code,
        action=req.action,
        final_code=row.final_code,
        model_version=row.model_version,
        code_set_version=row.code_set_version,
    )
