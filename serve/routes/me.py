"""``GET /v1/me``: the caller's key id and role (any key; tag ``auth``)."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import KeyDep
from ..schemas import ERRORS

router = APIRouter(prefix="/v1", tags=["auth"])


@router.get("/me", responses=ERRORS, summary="Who this key is")
def me(key: KeyDep) -> dict[str, str]:
    return {"key_id": key.id, "role": key.role}
