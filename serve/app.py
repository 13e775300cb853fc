"""The HTTP API (``/v1``), health and metrics endpoints, and the review page.

``create_app()`` builds the app: the shared :class:`~.deps.Service`, the middleware, the error
handlers and one router per resource (``routes/``). Nothing is loaded at import. The engine loads
in a background thread at start-up (``/health/ready`` turns 200 when it has), and routes get it
through a dependency (``deps.EngineDep``). Note text is never logged: request bodies are not
logged at all, validation errors never echo the input, and unexpected errors are logged by type
and code location only.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from clinicode import __version__
from clinicode.errors import ClinicodeError
from clinicode.kb import KBDamaged
from clinicode.settings import Settings, get_settings

from . import access_log
from .admission import Admission, RateLimiter, RateLimitMiddleware
from .auth import KeyRing
from .deps import Service, redact_paths
from .engine_holder import EngineHolder, EngineLike, EngineUnavailable
from .errors import describe
from .metrics import Metrics
from .middleware import GuardMiddleware, MetricsMiddleware, json_response
from .pack_watch import PackWatcher
from .routes import admin, codes, docs, encounters, feedback, health, me, pages, suggest
from .services import Refused
from .services.retention import purge_forever
from .store import FeedbackStore

log = logging.getLogger("clinicode.serve")

_ROUTERS = (suggest, codes, feedback, admin, encounters, me, health, pages, docs)


def create_app(
    settings: Settings | None = None,
    engine_factory: Callable[[], EngineLike] | None = None,
) -> FastAPI:
    """The service. ``engine_factory`` defaults to ``clinicode.load()`` of the settings' pack."""
    settings = settings or get_settings()
    access_log.install()  # no query text (searches) in uvicorn's access log
    svc = Service(
        settings=settings,
        keys=KeyRing.from_settings(settings),
        holder=EngineHolder(
            engine_factory or _default_factory(settings),
            wait_s=settings.model_load_timeout_s,
            concurrency=settings.engine_concurrency,
        ),
        store=FeedbackStore(settings.resolved_database_url),
        metrics=Metrics(),
        admission=Admission(
            settings.engine_concurrency,
            settings.max_queue,
            settings.retry_after_s,
            max_wait_s=settings.max_wait_s,
        ),
        rate_limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
    )
    svc.watcher = PackWatcher(settings, svc.holder)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
        svc.holder.start()
        svc.store.init()
        if len(svc.keys) == 0:
            log.warning("no API keys configured: every /v1 request will get 401")
        days = settings.note_retention_days
        purger = asyncio.create_task(purge_forever(svc.store, days)) if days is not None else None
        yield
        if purger is not None:
            purger.cancel()
        svc.admission.close()
        close = getattr(svc.holder.engine, "close", None)
        if callable(close):  # engine processes (or an offline batch pool) end with the worker
            close()
        svc.store.close()

    app = FastAPI(
        title="Clinicode",
        version=__version__,
        summary="Computer-assisted coding: ICD-10-CM, ICD-10-PCS, CPT and HCPCS suggestions "
        "with evidence.",
        description="Send `Authorization: Bearer KEY` or `X-API-Key: KEY` on every `/v1` route "
        "and `/metrics`. Note text is never logged.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: routes/docs.py, with local assets
        redoc_url=None,
    )
    app.state.service = svc
    app.add_middleware(RateLimitMiddleware, service=svc)  # inside the guard: after the key check
    app.add_middleware(GuardMiddleware, service=svc)
    app.add_middleware(MetricsMiddleware, metrics=svc.metrics)
    _add_error_handlers(app)
    for module in _ROUTERS:
        app.include_router(module.router)
    return app


def _default_factory(settings: Settings) -> Callable[[], EngineLike]:
    """The serving pack (``CLINICODE_MODEL_DIR``, else the promoted one, read again on each
    load: a promotion reloads through here), in child processes of each worker
    (``engine_isolation`` "process", the default; ``serve/engine_process.py``) or on its threads
    ("thread")."""

    def load() -> EngineLike:
        from clinicode.models.pack_registry import serving_pack_dir

        from .engine_process import PackFactory, ProcessEngineFactory

        pack = PackFactory(serving_pack_dir(settings), settings.kb_path)
        if settings.engine_isolation == "thread":
            return pack()
        return ProcessEngineFactory(
            pack,
            processes=settings.engine_concurrency,
            kb_path=settings.kb_path,
            kill_grace_s=settings.engine_kill_grace_s,
            nice=settings.engine_nice,
        )()

    return load


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Plain words, never the input (it may be a note): see serve/errors.py.
        body = describe(list(exc.errors()), request.headers.get("content-type", ""), exc.body)
        return JSONResponse(body, status_code=422)

    @app.exception_handler(ClinicodeError)
    async def _clinicode_error(_request: Request, exc: ClinicodeError) -> JSONResponse:
        return json_response(422, str(exc))

    @app.exception_handler(Refused)
    async def _refused(_request: Request, exc: Refused) -> JSONResponse:
        return json_response(exc.status, exc.detail)

    @app.exception_handler(EngineUnavailable)
    async def _engine_unavailable(_request: Request, exc: EngineUnavailable) -> JSONResponse:
        # An engine process died or was killed during the call; a replacement is loading.
        return json_response(503, redact_paths(str(exc)), {"Retry-After": "10"})

    @app.exception_handler(KBDamaged)
    async def _kb_damaged(_request: Request, exc: KBDamaged) -> JSONResponse:
        return json_response(503, f"code sets unavailable: {exc.short}")

    @app.exception_handler(sqlite3.DatabaseError)
    async def _kb_unreadable(request: Request, exc: sqlite3.DatabaseError) -> JSONResponse:
        # Raw sqlite3 errors come from the knowledge base (the feedback store goes through
        # SQLAlchemy, whose errors are its own): name the file, never its path or the query.
        svc: Service = request.app.state.service
        problem = svc.kb_problem() or (
            f"the code-set knowledge base {svc.kb_file().name} cannot be read "
            f"({type(exc).__name__})"
        )
        log.error("knowledge base unreadable: %s", problem)
        return json_response(
            503,
            f"code sets unavailable: {problem}; the administrator restores it or rebuilds it "
            "with `clinicode setup --force`",
        )
