"""Checking and recording a coder's decision on a suggestion, or a code the engine missed.

``accept`` / ``reject`` / ``modify`` refer to a stored suggestion (by ``suggestion_id``, or
``note_id`` + ``code``); ``add`` refers to a stored note. A code the coder typed (``add``'s code,
``modify``'s ``final_code``) must exist in its code set when that set is loaded. Each row is
stamped with the model and code-set versions the suggestion came from (for ``add``: those loaded
now).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clinicode.kb import KnowledgeBase, normalize_code

from ..engine_holder import EngineLike
from ..schemas import FeedbackRequest
from ..store import FeedbackRow, FeedbackStore, SuggestionRow
from . import NotFound, Refused

KBSource = Callable[[], KnowledgeBase]


@dataclass(frozen=True)
class Target:
    """What a feedback request is about, once resolved against the store."""

    note_id: str
    system: str
    code: str
    suggestion: SuggestionRow | None  # None for ``add``


def _norm(code: str | None, system: str | None) -> str:
    return normalize_code(code or "", system or "ICD-10-CM")


def resolve_target(req: FeedbackRequest, store: FeedbackStore) -> Target:
    """The suggestion the request refers to, or for ``add`` its note; :class:`NotFound` if absent."""
    if req.action == "add":
        note_id = str(req.note_id)
        if not store.note_exists(note_id):
            raise NotFound(f"unknown note {note_id!r}: send it to /v1/suggest first")
        system = req.system or "ICD-10-CM"
        return Target(note_id, system, _norm(req.code, system), None)
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
        raise NotFound(f"no {what}; to record a code the engine missed use action 'add'")
    return Target(sugg.note_id, sugg.system, sugg.code, sugg)


def check_typed_code(code: str, system: str, kb: KnowledgeBase) -> None:
    """Refuses a code the coder typed that its code set, when loaded, does not have."""
    if kb.system_info(system) is not None and kb.get(code, system) is None:
        raise Refused(f"{code} is not a code of {kb.versions()[system]}")


def record_feedback(
    req: FeedbackRequest,
    *,
    store: FeedbackStore,
    key_id: str,
    engine: EngineLike | None,
    kb: KBSource,
) -> FeedbackRow:
    """Checks ``req`` and appends it to the audit table; returns the row once committed.

    ``engine`` is the loaded engine, if any (for the versions an ``add`` is stamped with);
    ``kb`` opens the code sets, and is called only when a typed code must be checked or no
    engine gives the code-set versions.
    """
    target = resolve_target(req, store)
    final_code = _norm(req.final_code, target.system) if req.final_code else None
    typed = {"modify": final_code, "add": target.code}.get(req.action)
    opened: KnowledgeBase | None = None
    if typed is not None:
        opened = kb()
        check_typed_code(typed, target.system, opened)
    sugg = target.suggestion
    if sugg is not None:
        model_name, model_version = sugg.model_name, sugg.model_version
        cs_version = sugg.code_set_version
    else:
        model_name = engine.info.name if engine else "none"
        model_version = engine.info.version if engine else "none"
        versions = engine.code_sets if engine else (opened or kb()).versions()
        cs_version = versions.get(target.system, "unknown")
    return store.record_feedback(
        note_id=target.note_id,
        suggestion_id=sugg.suggestion_id if sugg else None,
        system=target.system,
        code=target.code,
        action=req.action,
        final_code=final_code,
        reason=req.reason,
        key_id=key_id,
        model_name=model_name,
        model_version=model_version,
        code_set_version=cs_version,
    )
