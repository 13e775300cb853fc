"""Suggesting codes for notes: limits, note ids, batching by options, and recording what was
returned (every code gets a ``suggestion_id`` that feedback refers to)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from clinicode.schema import SuggestResult
from clinicode.settings import Settings

from ..engine_holder import EngineLike
from ..metrics import Metrics
from ..schemas import SuggestRequest
from ..store import DEFAULT_TENANT, FeedbackStore, NoteRef
from . import Refused, TooLarge

Slot = Callable[[], AbstractContextManager[None]]


def new_note_id() -> str:
    return "n-" + uuid.uuid4().hex[:20]


def check_note(req: SuggestRequest, settings: Settings) -> None:
    """Refuses a note over ``max_text_chars`` (413) or a ``top_k`` over ``max_top_k`` (422)."""
    if len(req.text) > settings.max_text_chars:
        raise TooLarge(
            f"note text has {len(req.text)} characters; the limit is {settings.max_text_chars} "
            "(CLINICODE_MAX_TEXT_CHARS)"
        )
    if req.top_k is not None and req.top_k > settings.max_top_k:
        raise Refused(f"top_k is {req.top_k}; the most allowed is {settings.max_top_k}")


def batch_note_ids(notes: Sequence[SuggestRequest], settings: Settings) -> list[str]:
    """Checks a batch (size, each note, unique ids) and returns its note ids, generating the
    missing ones."""
    if len(notes) > settings.max_batch:
        raise TooLarge(f"{len(notes)} notes; the most per batch is {settings.max_batch}")
    for note in notes:
        check_note(note, settings)
    ids = [n.note_id or new_note_id() for n in notes]
    if len(set(ids)) != len(ids):
        raise Refused("note_id values must be unique within a batch")
    return ids


def suggest_one(engine: EngineLike, slot: Slot, req: SuggestRequest) -> SuggestResult:
    with slot():
        return engine.suggest(
            req.text,
            req.setting,
            systems=list(req.systems) if req.systems else None,
            top_k=req.top_k,
        )


def suggest_many(
    engine: EngineLike, slot: Slot, notes: Sequence[SuggestRequest]
) -> list[SuggestResult]:
    """One ``engine.suggest_many`` call per distinct set of options, results in input order."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, n in enumerate(notes):
        sig = (n.setting, tuple(n.systems) if n.systems else None, n.top_k)
        groups.setdefault(sig, []).append(i)
    results: list[SuggestResult | None] = [None] * len(notes)
    for (setting, systems, top_k), idx in groups.items():
        with slot():
            out = engine.suggest_many(
                [notes[i].text for i in idx],
                setting,
                systems=list(systems) if systems else None,
                top_k=top_k,
            )
        for i, r in zip(idx, out, strict=True):
            results[i] = r
    done = [r for r in results if r is not None]
    assert len(done) == len(notes)
    return done


def record_suggestions(
    store: FeedbackStore,
    metrics: Metrics,
    req: SuggestRequest,
    note_id: str,
    result: SuggestResult,
    key_id: str,
    tenant: str = DEFAULT_TENANT,
) -> NoteRef:
    """Give every code an id, store the note (a new version when its text changed) and the
    suggestions under ``tenant``, count them."""
    for s in [*result.codes, *result.candidates, *result.suppressed]:
        if not s.suggestion_id:
            s.suggestion_id = "s-" + uuid.uuid4().hex[:20]
        metrics.suggestions.inc(metrics.worker, s.system, s.status)
    metrics.notes.inc(metrics.worker, req.setting)
    return store.record_suggestions(
        note_id=note_id,
        text_=req.text,
        setting=req.setting,
        note_type=req.note_type,
        key_id=key_id,
        result=result,
        tenant=tenant,
    )
