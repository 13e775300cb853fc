"""``GET /v1/codes/search`` and ``GET /v1/codes/{system}/{code}``: the JSON of
`clinicode codes search --json` (each hit) and `clinicode codes lookup --json`, built by
:mod:`clinicode.kb.views` for both."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam

from clinicode.kb.views import record_json
from clinicode.schema import System

from ..deps import KeyDep, ServiceDep, get_kb
from ..schemas import ERRORS, Problem
from ..services import code_search

router = APIRouter(prefix="/v1/codes", tags=["codes"])

# The code sets are opened in the body (``get_kb``), not as a dependency: dependencies run before
# FastAPI validates query and path parameters, so a malformed request would get 503 instead of
# 422 whenever the code sets cannot be opened.


@router.get(
    "/search",
    responses=ERRORS,
    summary="Search the code sets (words, lay and clinical synonyms, abbreviations, codes)",
)
def search_codes(
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words or a code.")],
    _key: KeyDep,
    svc: ServiceDep,
    system: Annotated[list[System] | None, Query(description="Restrict to these systems.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    billable: Annotated[bool, Query(description="Only billable codes.")] = False,
) -> dict[str, Any]:
    if not q.strip():
        raise HTTPException(422, "q is empty")
    kb = get_kb(svc)
    versions = kb.versions()
    systems = [s for s in system or [] if s in versions] if system else None
    if system and not systems:
        raise HTTPException(
            404, f"none of {', '.join(system)} is loaded; loaded: {', '.join(versions)}"
        )
    return {
        "query": q,
        "results": code_search.search(kb, q, systems=systems, limit=limit, billable_only=billable),
    }


@router.get(
    "/{system}/{code}",
    responses={**ERRORS, 404: {"model": Problem}},
    summary="Look up one code",
)
def lookup_code(
    system: System,
    code: Annotated[str, PathParam(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.\-]+$")],
    _key: KeyDep,
    svc: ServiceDep,
) -> dict[str, Any]:
    """Title, notes, parents and children: the JSON of `clinicode codes lookup --json`."""
    kb = get_kb(svc)
    if kb.system_info(system) is None:
        raise HTTPException(404, f"{system} is not loaded; import it with `clinicode codes import`")
    rec = kb.get(code, system)
    if rec is None:
        raise HTTPException(404, f"code {code!r} not found in {kb.versions()[system]}")
    return record_json(kb, rec)
