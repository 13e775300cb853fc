"""Checking and recording a coder's decision on a suggestion, or a code the engine missed.

``accept`` / ``reject`` / ``modify`` refer to a stored suggestion (by ``suggestion_id``, or
``note_id`` + ``code``); ``add`` refers to a stored note (its latest version). Everything is
looked up within the caller's tenant. A request whose ids disagree (a ``note_id``, ``code`` or
``system`` other than the suggestion's) is refused with 409.

Every code a decision keeps (``accept``'s code, ``modify``'s ``final_code``, ``add``'s code) is
checked against the knowledge base at the note's code-set version
(:func:`clinicode.kb.validate.billable_problem`): only billable codes of a loaded system pass;
anything else gets 422 naming the reason. One exception: ``accept`` and ``add`` may confirm a
*partial* ICD-10-PCS code (its first four characters, as the engine lists a procedure the note
documents only that far; :func:`clinicode.kb.validate.partial_problem`): a training label, kept
apart from the final code set in the export (``partial_codes``). (An accepted suggestion of a system the KB does not
hold, which the engine drew from the code sets it had, is the one code not checked again.) When the loaded code set is another version than the
one the note was coded with, the decision is refused with 409 (suggest the note again). Each row
is stamped with the model and code-set versions the suggestion came from (for ``add``: the
note's, else those loaded now) and the note version it was made on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clinicode.kb import KnowledgeBase, normalize_code
from clinicode.kb.validate import billable_problem, is_partial, partial_problem

from ..engine_holder import EngineLike
from ..schemas import FeedbackRequest
from ..store import DEFAULT_TENANT, FeedbackRow, FeedbackStore, SuggestionRow
from . import Conflict, NotFound, Refused

KBSource = Callable[[], KnowledgeBase]


@dataclass(frozen=True)
class Target:
    """What a feedback request is about, once resolved against the store."""

    note_id: str
    system: str
    code: str
    suggestion: SuggestionRow | None  # None for ``add``
    note_version: int = 1
    code_set_version: str | None = None  # the version the note was coded with, when known


def _norm(code: str | None, system: str | None) -> str:
    return normalize_code(code or "", system or "ICD-10-CM")


def resolve_target(
    req: FeedbackRequest, store: FeedbackStore, tenant: str = DEFAULT_TENANT
) -> Target:
    """The suggestion the request refers to, or for ``add`` its note; :class:`NotFound` if
    absent from ``tenant``, :class:`Conflict` when the request's ids disagree with it."""
    if req.action == "add":
        note_id = str(req.note_id)
        note = store.get_note(tenant, note_id)
        if note is None:
            raise NotFound(f"unknown note {note_id!r}: send it to /v1/suggest first")
        system = req.system or "ICD-10-CM"
        return Target(
            note_id, system, _norm(req.code, system), None, note.version, note.code_sets.get(system)
        )
    sugg = store.find_suggestion(
        suggestion_id=req.suggestion_id,
        note_id=req.note_id,
        code=_norm(req.code, req.system) if req.code else None,
        system=req.system,
        tenant=tenant,
    )
    if sugg is None:
        what = (
            f"suggestion {req.suggestion_id!r}"
            if req.suggestion_id
            else f"suggestion of {req.code} for note {req.note_id!r}"
        )
        raise NotFound(f"no {what}; to record a code the engine missed use action 'add'")
    if req.suggestion_id is not None:
        _check_agrees(req, sugg)
    return Target(
        sugg.note_id, sugg.system, sugg.code, sugg, sugg.note_version, sugg.code_set_version
    )


def _check_agrees(req: FeedbackRequest, sugg: SuggestionRow) -> None:
    """With a ``suggestion_id``, any ``note_id``, ``system`` or ``code`` sent must be its own."""
    sid = req.suggestion_id
    if req.note_id is not None and req.note_id != sugg.note_id:
        raise Conflict(
            f"suggestion {sid!r} belongs to note {sugg.note_id!r}, not {req.note_id!r}: "
            "send the suggestion_id alone, or the note_id and code it refers to"
        )
    if req.system is not None and req.system != sugg.system:
        raise Conflict(f"suggestion {sid!r} is a {sugg.system} code, not {req.system}")
    if req.code is not None and _norm(req.code, sugg.system) != sugg.code:
        raise Conflict(
            f"suggestion {sid!r} is {sugg.code}, not {_norm(req.code, sugg.system)}; to code "
            "something else use action 'modify' with final_code"
        )


def check_typed_code(
    code: str,
    system: str,
    kb: KnowledgeBase,
    coded_with: str | None = None,
    *,
    partial_ok: bool = False,
) -> None:
    """Refuses (422) a code that is not a billable code of a loaded ``system`` (with
    ``partial_ok``: nor a partial ICD-10-PCS code), and (409) a decision on a note coded with
    another version of the code set than the one loaded."""
    loaded = kb.versions().get(system)
    if coded_with is not None and loaded is not None and coded_with != loaded:
        raise Conflict(
            f"the note was coded with {system} {coded_with} but {loaded} is loaded now; send "
            "the note to /v1/suggest again to review it against the loaded code set"
        )
    if partial_ok and is_partial(system, code):
        problem = partial_problem(kb, system, code)
    else:
        problem = billable_problem(kb, system, code)
    if problem is not None:
        raise Refused(problem)


def record_feedback(
    req: FeedbackRequest,
    *,
    store: FeedbackStore,
    key_id: str,
    engine: EngineLike | None,
    kb: KBSource,
    tenant: str = DEFAULT_TENANT,
) -> FeedbackRow:
    """Checks ``req`` and appends it to the audit table; returns the row once committed.

    ``engine`` is the loaded engine, if any (for the versions an ``add`` is stamped with);
    ``kb`` opens the code sets, called only when a decision keeps a code (not for ``reject``)
    or no engine gives the code-set versions.
    """
    target = resolve_target(req, store, tenant)
    final_code = _norm(req.final_code, target.system) if req.final_code else None
    kept = {"modify": final_code, "add": target.code, "accept": target.code}.get(req.action)
    opened: KnowledgeBase | None = None
    if kept is not None:
        opened = kb()
        # An accepted suggestion was drawn from the code sets when the note was coded; only a
        # system the KB no longer holds cannot be checked again (typed codes always are).
        if req.action != "accept" or opened.system_info(target.system) is not None:
            check_typed_code(
                kept,
                target.system,
                opened,
                target.code_set_version,
                partial_ok=req.action in ("accept", "add"),
            )
    sugg = target.suggestion
    if sugg is not None:
        model_name, model_version = sugg.model_name, sugg.model_version
        cs_version = sugg.code_set_version
    else:
        model_name = engine.info.name if engine else "none"
        model_version = engine.info.version if engine else "none"
        versions = engine.code_sets if engine else (opened or kb()).versions()
        cs_version = target.code_set_version or versions.get(target.system, "unknown")
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
        tenant=tenant,
        note_version=target.note_version,
    )
