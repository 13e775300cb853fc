"""What the routes share, and the ``Annotated`` dependencies that hand it to them.

A route declares what it needs in its signature (``svc: ServiceDep``, ``key: KeyDep``,
``engine: EngineDep``); nothing here is resolved at import. The code sets are not a dependency:
routes call :func:`get_kb` once their input is checked (see ``routes/codes.py``).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPBearer

from clinicode.errors import ClinicodeError
from clinicode.kb import KBDamaged, KnowledgeBase
from clinicode.kb.health import kb_file_problem
from clinicode.settings import Settings

from .admission import Admission, RateLimiter
from .auth import ApiKey, KeyRing
from .engine_holder import EngineHolder, EngineLike, EngineUnavailable
from .metrics import Metrics
from .pack_watch import PackWatcher
from .store import FeedbackStore
from .workqueue import WorkQueueStore

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey")
_bearer = HTTPBearer(auto_error=False, scheme_name="Bearer")
_WQ_LOCK = threading.Lock()


@dataclass
class Service:
    """Everything the routes share, kept on ``app.state.service``."""

    settings: Settings
    keys: KeyRing
    holder: EngineHolder
    store: FeedbackStore
    metrics: Metrics
    admission: Admission = field(default_factory=lambda: Admission(1, 64, 2))
    rate_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0))
    watcher: PackWatcher | None = None  # follows the promoted pack (None: never switches)

    def kb_file(self) -> Path:
        """The knowledge-base file the routes read: the loaded engine's, else the settings'."""
        path = getattr(getattr(self.holder.engine, "kb", None), "path", None)
        return Path(path) if path is not None else self.settings.kb_path

    def kb_problem(self) -> str | None:
        """What is wrong with the knowledge-base file, naming only the file, or None."""
        path = self.kb_file()
        problem = kb_file_problem(path)
        return None if problem is None else f"the code-set knowledge base {path.name} {problem}"

    def kb(self) -> KnowledgeBase:
        """The loaded engine's knowledge base, else the one under the settings' data dir."""
        engine = self.holder.engine
        if engine is not None and getattr(engine, "kb", None) is not None:
            kb: KnowledgeBase = engine.kb
            return kb
        from clinicode.kb import open_kb

        return open_kb(self.settings.kb_path)


def service_of(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


async def get_service(request: Request) -> Service:  # async: no thread hop per request
    return service_of(request)


ServiceDep = Annotated[Service, Depends(get_service)]


async def current_key(
    request: Request,
    _key: Annotated[str | None, Security(_api_key_header)],
    _bearer_cred: Annotated[Any, Security(_bearer)],
) -> ApiKey:
    """The caller's key, verified by the auth middleware (declared here for the OpenAPI docs)."""
    key: ApiKey | None = request.scope.get("state", {}).get("api_key")
    if key is None:  # the middleware guards every /v1 route, so this is a wiring bug
        raise HTTPException(401, "missing API key")
    return key


KeyDep = Annotated[ApiKey, Depends(current_key)]


async def admin_key(key: KeyDep) -> ApiKey:
    if key.role != "admin":
        raise HTTPException(
            403,
            "this key may not export feedback (it holds note text) or manage model packs: "
            "use an admin key",
        )
    return key


AdminKeyDep = Annotated[ApiKey, Depends(admin_key)]


async def get_engine(request: Request, svc: ServiceDep) -> EngineLike:
    """The loaded engine, waiting a while (on a thread) for a load in progress; 503 with the
    reason if none. A request that waited for the load gets its deadline from then."""
    if svc.watcher is not None:
        svc.watcher.check()  # a newly promoted pack loads in the background
    if svc.holder.engine is not None:
        return svc.holder.engine
    try:
        engine = await run_in_threadpool(svc.holder.get)
        request.scope.setdefault("state", {})["arrived"] = time.monotonic()
        return engine
    except EngineUnavailable as exc:
        raise HTTPException(503, redact_paths(str(exc)), headers={"Retry-After": "10"}) from None


EngineDep = Annotated[EngineLike, Depends(get_engine)]


def get_kb(svc: ServiceDep) -> KnowledgeBase:
    """The code sets; 503 naming the file (never its path) when they cannot be opened."""
    try:
        return svc.kb()
    except KBDamaged as exc:
        raise HTTPException(503, f"code sets unavailable: {exc.short}") from None
    except ClinicodeError as exc:
        raise HTTPException(503, f"code sets unavailable: {redact_paths(str(exc))}") from None


_ABS_PATH = re.compile(r"(?<![\w.~:/])(?:/[^\s/'\"():,;]+)+/([^\s/'\"():,;]+)")


def redact_paths(message: str) -> str:
    """``message`` with every absolute path cut to its last part (``/home/u/x/kb.sqlite`` ->
    ``kb.sqlite``): what an unauthenticated caller may see of the server's files."""
    return _ABS_PATH.sub(r"\1", message)


def get_workqueue(request: Request) -> WorkQueueStore:
    """The work queue's store, opened on first use on the feedback database (its own table)."""
    wq: WorkQueueStore | None = getattr(request.app.state, "workqueue", None)
    if wq is None:
        with _WQ_LOCK:
            wq = getattr(request.app.state, "workqueue", None)
            if wq is None:
                svc = service_of(request)
                wq = WorkQueueStore(svc.settings.resolved_database_url)
                wq.init()
                request.app.state.workqueue = wq
    return wq


WorkQueueDep = Annotated[WorkQueueStore, Depends(get_workqueue)]
