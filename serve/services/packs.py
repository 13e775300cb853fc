"""Promoting a model pack on a running server: record it (the pointer file every worker
follows, :mod:`clinicode.models.pack_registry`) and load it in this worker at once, in the
background, while the old engine keeps serving (:meth:`EngineHolder.reload`)."""

from __future__ import annotations

from typing import Any

from clinicode.errors import InputError
from clinicode.models import pack_registry

from ..deps import Service
from . import Conflict, NotFound, Refused


def _pinned(svc: Service) -> None:
    if svc.settings.model_dir is not None:
        raise Conflict(
            "CLINICODE_MODEL_DIR pins the pack this server loads: unset it and restart for "
            "promotions to take effect"
        )


def status(svc: Service) -> dict[str, Any]:
    """Which pack serves in this worker, which one is promoted, and a reload in progress."""
    engine = svc.holder.engine
    return {
        "serving_version": engine.info.version if engine is not None else None,
        "promoted": pack_registry.current_name(svc.settings),
        "pinned_by_model_dir": svc.settings.model_dir is not None,
        "reloads": svc.holder.reloads,
        "reload_error": svc.holder.reload_error,
        "packs": [p.summary() for p in pack_registry.list_packs(svc.settings)],
    }


def promote(svc: Service, name: str) -> dict[str, Any]:
    _pinned(svc)
    try:
        row = pack_registry.promote(svc.settings, name, kb=svc.kb())
    except InputError as exc:
        raise (NotFound if "no pack named" in str(exc) else Refused)(str(exc)) from None
    return _switch(svc, row)


def rollback(svc: Service) -> dict[str, Any]:
    _pinned(svc)
    try:
        row = pack_registry.rollback(svc.settings)
    except InputError as exc:
        raise Conflict(str(exc)) from None
    return _switch(svc, row)


def _switch(svc: Service, row: dict[str, Any]) -> dict[str, Any]:
    if svc.watcher is not None:
        svc.watcher.now()
    else:
        svc.holder.reload()
    engine = svc.holder.engine
    return {
        **row,
        "serving_version": engine.info.version if engine is not None else None,
        "detail": "the new pack loads in the background; every worker switches to it within "
        "seconds, the old one serving until then",
    }
