"""The HTTP API (``/v1``), health and metrics endpoints, and the review page.

``create_app()`` builds the app; nothing is loaded at import. The engine loads in a background
thread at start-up (``/health/ready`` turns 200 when it has), and routes get it through a
dependency. Note text is never logged: request bodies are not logged at all, validation errors
never echo the input, and unexpected errors are logged by type and code location only.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinicode import __version__
from clinicode.errors import ClinicodeError
from clinicode.schema import SuggestResult, System
from clinicode.settings import Settings, get_settings

from .auth import ApiKey, KeyRing, presented_key
from .engine_holder import EngineHolder, EngineLike, EngineUnavailable
from .metrics import Metrics
from .schemas import (
    BatchItem,
    BatchRequest,
    BatchResponse,
    FeedbackRequest,
    FeedbackResponse,
    Problem,
    SuggestRequest,
)
from .store import FeedbackStore

log = logging.getLogger("clinicode.serve")

STATIC_DIR = Path(__file__).parent / "static"
_STATIC_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
NOTE_ID_HEADER = "X-Clinicode-Note-Id"

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey")
_bearer = HTTPBearer(auto_error=False, scheme_name="Bearer")

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No API key, or an unknown one."},
    403: {"model": Problem, "description": "The key may not do this."},
    422: {"model": Problem, "description": "The request is malformed; detail says where."},
}


@dataclass
class Service:
    """Everything the routes share, kept on ``app.state.service``."""

    settings: Settings
    keys: KeyRing
    holder: EngineHolder
    store: FeedbackStore
    metrics: Metrics

    def kb(self) -> Any:
        engine = self.holder.engine
        if engine is not None and getattr(engine, "kb", None) is not None:
            return engine.kb
        from clinicode.kb import open_kb

        return open_kb(self.settings.kb_path)


def _service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def current_key(
    request: Request,
    _key: str | None = Security(_api_key_header),
    _bearer_cred: Any = Security(_bearer),
) -> ApiKey:
    """The caller's key, verified by the auth middleware (declared here for the OpenAPI docs)."""
    key: ApiKey | None = request.scope.get("state", {}).get("api_key")
    if key is None:  # the middleware guards every /v1 route, so this is a wiring bug
        raise HTTPException(401, "missing API key")
    return key


def admin_key(key: ApiKey = Depends(current_key)) -> ApiKey:
    if key.role != "admin":
        raise HTTPException(
            403, "this key may not export feedback (it holds note text): use an admin key"
        )
    return key


def get_engine(request: Request) -> EngineLike:
    try:
        return _service(request).holder.get()
    except EngineUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "10"}) from None


# -- middleware (pure ASGI) --------------------------------------------------------------------
def _json_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class GuardMiddleware:
    """Authentication, body size limits and UTF-8 check, before any body is parsed."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.svc = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/v1/") or path == "/metrics":
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            presented = presented_key(headers.get("authorization"), headers.get("x-api-key"))
            if presented is None:
                await _json_response(
                    401,
                    "missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                    {"WWW-Authenticate": "Bearer"},
                )(scope, receive, send)
                return
            key = self.svc.keys.verify(presented)
            if key is None:
                detail = "unknown API key"
                if len(self.svc.keys) == 0:
                    detail += (
                        " (no keys are configured: set CLINICODE_API_KEYS or run `clinicode serve`)"
                    )
                await _json_response(401, detail, {"WWW-Authenticate": "Bearer"})(
                    scope, receive, send
                )
                return
            scope.setdefault("state", {})["api_key"] = key
        if scope["method"] in ("POST", "PUT", "PATCH"):
            limit = (
                self.svc.settings.max_batch_body_bytes
                if path == "/v1/suggest/batch"
                else self.svc.settings.max_body_bytes
            )
            body = await self._read_body(scope, receive, limit)
            if body is None:
                await _json_response(
                    413,
                    f"request body is larger than {limit} bytes "
                    "(CLINICODE_MAX_BODY_BYTES / CLINICODE_MAX_BATCH_BODY_BYTES)",
                )(scope, receive, send)
                return
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                await _json_response(
                    400, f"request body is not valid UTF-8 (byte {exc.start}); send UTF-8 JSON"
                )(scope, receive, send)
                return
            await self.app(scope, _replay(body), send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    if int(v) > limit:
                        return None
                except ValueError:
                    pass
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class MetricsMiddleware:
    """Request counts and latency by route template (never by raw path or query)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        status_sent = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                if scope["path"] == "/" or scope["path"].startswith("/static/"):
                    message.setdefault("headers", [])
                    message["headers"] = list(message["headers"]) + [
                        (k.lower().encode(), v.encode()) for k, v in _PAGE_HEADERS.items()
                    ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if status_sent:
                raise
            status = 500
            await _unexpected(scope, exc)(scope, receive, send)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            m = self.metrics
            m.requests.inc(m.worker, scope["method"], label, str(status))
            m.latency.observe(time.perf_counter() - t0, m.worker, scope["method"], label)


# -- the app -----------------------------------------------------------------------------------
def create_app(
    settings: Settings | None = None,
    engine_factory: Callable[[], EngineLike] | None = None,
) -> FastAPI:
    """The service. ``engine_factory`` defaults to ``clinicode.load()`` of the settings' pack."""
    settings = settings or get_settings()

    def default_factory() -> EngineLike:
        import clinicode

        engine: EngineLike = clinicode.load(settings.default_pack_dir, kb_path=settings.kb_path)
        warm_up = getattr(engine, "warm_up", None)
        if callable(warm_up):  # ready means ready: no slow first note
            warm_up()
        return engine

    svc = Service(
        settings=settings,
        keys=KeyRing.from_settings(settings),
        holder=EngineHolder(
            engine_factory or default_factory,
            wait_s=settings.model_load_timeout_s,
            concurrency=settings.engine_concurrency,
        ),
        store=FeedbackStore(settings.resolved_database_url),
        metrics=Metrics(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        svc.holder.start()
        svc.store.init()
        if len(svc.keys) == 0:
            log.warning("no API keys configured: every /v1 request will get 401")
        yield
        svc.store.close()

    app = FastAPI(
        title="Clinicode",
        version=__version__,
        summary="Computer-assisted coding: ICD-10-CM, ICD-10-PCS, CPT and HCPCS suggestions "
        "with evidence.",
        description="Send `Authorization: Bearer KEY` or `X-API-Key: KEY` on every `/v1` route "
        "and `/metrics`. Note text is never logged.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = svc
    app.add_middleware(GuardMiddleware, service=svc)
    app.add_middleware(MetricsMiddleware, metrics=svc.metrics)
    _add_error_handlers(app)
    _add_api_routes(app)
    _add_ops_routes(app)
    _add_page_routes(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            msg = str(err.get("msg", "invalid"))
            if err.get("type") == "json_invalid":
                msg = f"body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})"
            errors.append({"loc": loc, "msg": msg, "type": err.get("type", "invalid")})
        summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        # Never echo the input: it may be a note.
        return JSONResponse({"detail": errors, "message": summary}, status_code=422)

    @app.exception_handler(ClinicodeError)
    async def _clinicode_error(_request: Request, exc: ClinicodeError) -> JSONResponse:
        return _json_response(422, str(exc))


def _unexpected(scope: Scope, exc: Exception) -> JSONResponse:
    """500 for an unexpected error. Logs the type and code location only: an exception message
    could quote the note."""
    ref = uuid.uuid4().hex[:12]
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    log.error(
        "unexpected %s on %s %s (ref %s)\n%s",
        type(exc).__name__,
        scope.get("method"),
        getattr(scope.get("route"), "path", "?"),
        ref,
        frames,
    )
    return _json_response(500, f"internal error (ref {ref}); see the server log")


def _new_note_id() -> str:
    return "n-" + uuid.uuid4().hex[:20]


def _check_note(req: SuggestRequest, settings: Settings) -> None:
    if len(req.text) > settings.max_text_chars:
        raise HTTPException(
            413,
            f"note text has {len(req.text)} characters; the limit is {settings.max_text_chars} "
            "(CLINICODE_MAX_TEXT_CHARS)",
        )
    if req.top_k is not None and req.top_k > settings.max_top_k:
        raise HTTPException(422, f"top_k is {req.top_k}; the most allowed is {settings.max_top_k}")


def _finish(
    svc: Service, req: SuggestRequest, note_id: str, result: SuggestResult, key: ApiKey
) -> None:
    """Give every code an id, store the note and the suggestions, count them."""
    for s in [*result.codes, *result.candidates, *result.suppressed]:
        if not s.suggestion_id:
            s.suggestion_id = "s-" + uuid.uuid4().hex[:20]
        svc.metrics.suggestions.inc(svc.metrics.worker, s.system, s.status)
    svc.metrics.notes.inc(svc.metrics.worker, req.setting)
    svc.store.record_suggestions(
        note_id=note_id,
        text_=req.text,
        setting=req.setting,
        note_type=req.note_type,
        key_id=key.id,
        result=result,
    )


def _add_api_routes(app: FastAPI) -> None:
    @app.post(
        "/v1/suggest",
        tags=["suggest"],
        response_model=SuggestResult,
        responses={
            **_ERRORS,
            413: {"model": Problem, "description": "Note text over the limit."},
            503: {"model": Problem, "description": "Model not loaded (yet)."},
        },
        summary="Suggest codes for one note",
    )
    def suggest(
        req: SuggestRequest,
        request: Request,
        key: ApiKey = Depends(current_key),
        engine: EngineLike = Depends(get_engine),
    ) -> JSONResponse:
        """Ranked codes with evidence (the same JSON as `clinicode suggest`). The note id (yours,
        or a generated one) comes back in the `X-Clinicode-Note-Id` header; feedback refers to
        it or to each code's `suggestion_id`."""
        svc = _service(request)
        _check_note(req, svc.settings)
        note_id = req.note_id or _new_note_id()
        with svc.holder.slot():
            result = engine.suggest(
                req.text,
                req.setting,
                systems=list(req.systems) if req.systems else None,
                top_k=req.top_k,
                note_type=req.note_type,
            )
        _finish(svc, req, note_id, result, key)
        return JSONResponse(result.model_dump(mode="json"), headers={NOTE_ID_HEADER: note_id})

    @app.post(
        "/v1/suggest/batch",
        tags=["suggest"],
        response_model=BatchResponse,
        responses={**_ERRORS, 413: {"model": Problem}, 503: {"model": Problem}},
        summary="Suggest codes for up to 100 notes",
    )
    def suggest_batch(
        req: BatchRequest,
        request: Request,
        key: ApiKey = Depends(current_key),
        engine: EngineLike = Depends(get_engine),
    ) -> JSONResponse:
        svc = _service(request)
        if len(req.notes) > svc.settings.max_batch:
            raise HTTPException(
                413, f"{len(req.notes)} notes; the most per batch is {svc.settings.max_batch}"
            )
        for note in req.notes:
            _check_note(note, svc.settings)
        ids = [n.note_id or _new_note_id() for n in req.notes]
        if len(set(ids)) != len(ids):
            raise HTTPException(422, "note_id values must be unique within a batch")
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, n in enumerate(req.notes):
            sig = (n.setting, tuple(n.systems) if n.systems else None, n.top_k, n.note_type)
            groups.setdefault(sig, []).append(i)
        results: list[SuggestResult | None] = [None] * len(req.notes)
        for (setting, systems, top_k, note_type), idx in groups.items():
            with svc.holder.slot():
                out = engine.suggest_many(
                    [req.notes[i].text for i in idx],
                    setting,
                    systems=list(systems) if systems else None,
                    top_k=top_k,
                    note_type=note_type,
                )
            for i, r in zip(idx, out, strict=True):
                results[i] = r
        items = []
        for note, note_id, result in zip(req.notes, ids, results, strict=True):
            assert result is not None
            _finish(svc, note, note_id, result, key)
            items.append(BatchItem(note_id=note_id, result=result).model_dump(mode="json"))
        return JSONResponse({"results": items})

    @app.get("/v1/codes/search", tags=["codes"], responses=_ERRORS, summary="Search the code sets")
    def search_codes(
        request: Request,
        q: str = Query(min_length=1, max_length=200, description="Words or a code."),
        system: list[System] | None = Query(None, description="Restrict to these systems."),
        limit: int = Query(20, ge=1, le=100),
        billable: bool = Query(False, description="Only billable codes."),
        _key: ApiKey = Depends(current_key),
    ) -> dict[str, Any]:
        if not q.strip():
            raise HTTPException(422, "q is empty")
        kb = _kb_or_503(request)
        versions = kb.versions()
        systems = [s for s in system or [] if s in versions] if system else None
        if system and not systems:
            raise HTTPException(
                404, f"none of {', '.join(system)} is loaded; loaded: {', '.join(versions)}"
            )
        hits = kb.search(q, systems=systems, limit=limit, billable_only=billable)
        return {
            "query": q,
            "results": [
                {
                    "system": h.system,
                    "version": versions.get(h.system),
                    "code": h.code,
                    "title": h.title,
                    "billable": h.billable,
                    "score": round(h.score, 4),
                    "matched": h.matched,
                    "matched_source": h.source,
                }
                for h in hits
            ],
        }

    @app.get(
        "/v1/codes/{system}/{code}",
        tags=["codes"],
        responses={**_ERRORS, 404: {"model": Problem}},
        summary="Look up one code",
    )
    def lookup_code(
        request: Request,
        system: System,
        code: str = PathParam(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.\-]+$"),
        _key: ApiKey = Depends(current_key),
    ) -> dict[str, Any]:
        """Title, notes, parents and children: the JSON of `clinicode codes lookup --json`."""
        from clinicode.kb.views import record_json

        kb = _kb_or_503(request)
        if kb.system_info(system) is None:
            raise HTTPException(
                404, f"{system} is not loaded; import it with `clinicode codes import`"
            )
        rec = kb.get(code, system)
        if rec is None:
            raise HTTPException(404, f"code {code!r} not found in {kb.versions()[system]}")
        data: dict[str, Any] = record_json(kb, rec)
        return data

    @app.post(
        "/v1/feedback",
        tags=["feedback"],
        status_code=201,
        response_model=FeedbackResponse,
        responses={**_ERRORS, 404: {"model": Problem}},
        summary="Record a coder's decision",
    )
    def feedback(
        req: FeedbackRequest, request: Request, key: ApiKey = Depends(current_key)
    ) -> FeedbackResponse:
        """accept / reject / modify a suggestion (by `suggestion_id`, or `note_id` + `code`), or
        add a code the engine missed (`note_id` + `code`). Answered only once committed."""
        svc = _service(request)
        store = svc.store
        sugg = None
        if req.action != "add":
            sugg = store.find_suggestion(
                suggestion_id=req.suggestion_id,
                note_id=req.note_id,
                code=_norm(req.code, req.system) if req.code else None,
                system=req.system,
            )
            if sugg is None:
                what = (
                    f"suggestion {req.suggestion_id!r}"
                    if req.suggestion_id
                    else f"a suggestion of {req.code} for note {req.note_id!r}"
                )
                raise HTTPException(
                    404, f"no {what}; to record a code the engine missed use action 'add'"
                )
        assert req.note_id is not None or sugg is not None
        note_id = sugg.note_id if sugg is not None else str(req.note_id)
        if sugg is None and not store.note_exists(note_id):
            raise HTTPException(404, f"unknown note {note_id!r}: send it to /v1/suggest first")
        system = sugg.system if sugg is not None else (req.system or "ICD-10-CM")
        code = sugg.code if sugg is not None else _norm(str(req.code), system)
        final_code = _norm(req.final_code, system) if req.final_code else None
        kb = None
        new_code = final_code if req.action == "modify" else code if req.action == "add" else None
        if new_code is not None:  # a code the coder typed: it must exist where we can check
            kb = _kb_or_503(request)
            if kb.system_info(system) is not None and kb.get(new_code, system) is None:
                raise HTTPException(422, f"{new_code} is not a code of {kb.versions()[system]}")
        if sugg is not None:
            model_name, model_version, cs_version = (
                sugg.model_name,
                sugg.model_version,
                sugg.code_set_version,
            )
        else:
            engine = svc.holder.engine
            model_name = engine.info.name if engine else "none"
            model_version = engine.info.version if engine else "none"
            versions = engine.code_sets if engine else (kb or _kb_or_503(request)).versions()
            cs_version = versions.get(system, "unknown")
        row = store.record_feedback(
            note_id=note_id,
            suggestion_id=sugg.suggestion_id if sugg else None,
            system=system,
            code=code,
            action=req.action,
            final_code=final_code,
            reason=req.reason,
            key_id=key.id,
            model_name=model_name,
            model_version=model_version,
            code_set_version=cs_version,
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

    @app.get(
        "/v1/feedback/export",
        tags=["feedback"],
        response_class=StreamingResponse,
        responses={
            **_ERRORS,
            200: {
                "content": {"application/x-ndjson": {}},
                "description": 'One {"id","text","codes"} per reviewed note, for '
                "`clinicode train --format jsonl`.",
            },
        },
        summary="Export reviewed notes as training JSONL (admin keys)",
    )
    def export_feedback(request: Request, _key: ApiKey = Depends(admin_key)) -> StreamingResponse:
        store = _service(request).store

        def lines() -> Iterator[str]:
            for rec in store.export():
                yield json.dumps(rec, ensure_ascii=False) + "\n"

        return StreamingResponse(
            lines(),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": 'attachment; filename="clinicode-feedback.jsonl"'},
        )

    @app.get("/v1/me", tags=["auth"], responses=_ERRORS, summary="Who this key is")
    def me(key: ApiKey = Depends(current_key)) -> dict[str, str]:
        return {"key_id": key.id, "role": key.role}


def _norm(code: str | None, system: str | None) -> str:
    from clinicode.kb import normalize_code

    return normalize_code(code or "", system or "ICD-10-CM")


def _kb_or_503(request: Request) -> Any:
    try:
        return _service(request).kb()
    except ClinicodeError as exc:
        raise HTTPException(503, f"code sets unavailable: {exc}") from None


def _add_ops_routes(app: FastAPI) -> None:
    @app.get("/health/live", tags=["health"], summary="The process is up")
    def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get(
        "/health/ready",
        tags=["health"],
        summary="Ready once the model pack is loaded",
        responses={503: {"description": "Loading, or the model pack could not be loaded."}},
    )
    def ready(request: Request) -> JSONResponse:
        svc = _service(request)
        holder = svc.holder
        holder.start()  # retries a failed load after a while
        body: dict[str, Any] = {"status": holder.status}
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
            body["reason"] = holder.error
        return JSONResponse(body, status_code=503)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=PlainTextResponse,
        responses=_ERRORS,
        summary="Prometheus metrics",
    )
    def metrics(request: Request, _key: ApiKey = Depends(current_key)) -> PlainTextResponse:
        svc = _service(request)
        return PlainTextResponse(
            svc.metrics.render(svc.holder.engine is not None),
            media_type="text/plain; version=0.0.4",
        )


def _add_page_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        path = STATIC_DIR / name
        media = _STATIC_TYPES.get(path.suffix)
        if media is None or "/" in name or name.startswith(".") or not path.is_file():
            raise HTTPException(404, "not found")
        return FileResponse(path, media_type=media)
