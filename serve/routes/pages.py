"""The review page (``/``) and its static files (``/static/{name}``), outside the OpenAPI
schema and needing no key; ``MetricsMiddleware`` adds their security headers."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).parent.parent / "static"
_STATIC_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    path = STATIC_DIR / name
    media = _STATIC_TYPES.get(path.suffix)
    if media is None or "/" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(path, media_type=media)
