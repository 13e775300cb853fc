"""``/docs`` (Swagger UI) and ``/redoc`` served with their assets from this server, so they work
with no network: the scripts and styles ship in the ``fastapi-offline`` package, and no font,
favicon or script is fetched from elsewhere."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_URL = "/docs-assets"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}

# The pages may load nothing from elsewhere: ReDoc's footer logo points at its CDN, and the
# policy stops that (and anything else) before any request is made.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


@router.get("/docs")
def swagger(request: Request) -> HTMLResponse:
    app = request.app
    return _local_only(
        get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            swagger_ui_parameters={"validatorUrl": None},  # no call to the online validator
        )
    )


@router.get("/docs/oauth2-redirect")
def oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    app = request.app
    return _local_only(
        get_redoc_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url="/static/favicon.svg",
            with_google_fonts=False,
        )
    )


@router.get(ASSETS_URL + "/{name}")
def asset(name: str) -> FileResponse:
    path = assets_dir() / name
    media = _TYPES.get(path.suffix)
    if media is None or "/" in name or name.startswith(".") or not path.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=86400"})
