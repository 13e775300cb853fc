"""The per-note engine both batch paths run: checked notes in, output rows out.

A failure on one note becomes that note's error row; the others of its chunk are coded anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clinicode.batch.rows import Note, error_row, result_row
from clinicode.errors import ClinicodeError

if TYPE_CHECKING:
    from clinicode.engine import Engine


def _error_message(exc: BaseException) -> str:
    """What a row says about a failure: our own messages, else only the exception's type (an
    internal message may quote the note)."""
    if isinstance(exc, ClinicodeError):
        return str(exc)
    return f"engine error: {type(exc).__name__}"


def code_notes(
    engine: Engine,
    notes: Sequence[Note],
    setting: str,
    systems: Sequence[str] | None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """The output rows of ``notes``, in order (``Engine.suggest_many``, ``workers`` processes)."""
    if not notes:
        return []
    texts = [n.text for n in notes]
    try:
        results = engine.suggest_many(texts, setting, systems=systems, workers=workers)
    except Exception:  # one note broke the chunk: code them one by one to find it
        return [_code_one(engine, n, setting, systems) for n in notes]
    return [result_row(n.id, r) for n, r in zip(notes, results, strict=True)]


def _code_one(
    engine: Engine, note: Note, setting: str, systems: Sequence[str] | None
) -> dict[str, Any]:
    try:
        return result_row(note.id, engine.suggest(note.text, setting, systems=systems))
    except Exception as exc:
        return error_row(note.id, engine.info, engine.code_sets, _error_message(exc))
