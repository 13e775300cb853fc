"""What batch coding reads and writes, one note at a time, the same for every engine.

An input row is checked by :func:`check_note` (empty, oversized, not UTF-8, no id); a good one
is coded and becomes an output row (:func:`result_row`): the note's id, its codes with scores and
evidence offsets, the model and code-set versions, and ``error`` when the engine failed on that
note (:func:`error_row`). :func:`dumps_row` is the one JSON form of a row, so the one-machine and
Spark paths write the same bytes. Note text never appears in a row or an error message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clinicode.schema import CodeSuggestion, ModelInfo, SuggestResult

DEFAULT_MAX_CHARS = 200_000  # the service's CLINICODE_MAX_TEXT_CHARS default


@dataclass(frozen=True)
class Note:
    """A good input row: its id, its text, and where it was read (1-based line or row)."""

    id: str
    text: str
    line: int


@dataclass(frozen=True)
class BadRow:
    """An input row that is skipped and reported in the errors file."""

    id: str | None
    line: int | None
    error: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "line": self.line, "error": self.error}


def note_id(value: Any) -> str | None:
    """An id as text (``12`` and ``"12"`` are the same note), or None when missing."""
    if value is None or isinstance(value, bool) or isinstance(value, float | dict | list):
        return None
    out = str(value).strip()
    return out or None


def check_note(raw_id: Any, text: Any, line: int | None, max_chars: int) -> Note | BadRow:
    """The note, or why it is skipped. ``text`` holding lone surrogates is text that was
    decoded with ``surrogateescape``: its bytes were not UTF-8."""
    nid = note_id(raw_id)
    if nid is None:
        return BadRow(None, line, "missing id")
    if _has_surrogates(nid):
        return BadRow(None, line, "id is not valid UTF-8")
    if text is None:
        return BadRow(nid, line, "missing text")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return BadRow(nid, line, "text is not valid UTF-8")
    if not isinstance(text, str):
        return BadRow(nid, line, f"text is a {type(text).__name__}, not a string")
    if _has_surrogates(text):
        return BadRow(nid, line, "text is not valid UTF-8")
    if not text.strip():
        return BadRow(nid, line, "empty text")
    if len(text) > max_chars:
        return BadRow(nid, line, f"text has {len(text)} characters, more than {max_chars}")
    return Note(nid, text, line or 0)


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _code_json(s: CodeSuggestion) -> dict[str, Any]:
    return {
        "system": s.system,
        "code": s.code,
        "title": s.title,
        "description_source": s.description_source,
        "score": s.score,
        "rank": s.rank,
        "status": s.status,
        "billable": s.billable,
        "principal": s.principal,
        "modifiers": list(s.modifiers),
        "units": s.units,
        "query": s.query.question if s.query is not None else None,
        "evidence": [
            {"start": e.start, "end": e.end, "section": e.section, "assertion": e.assertion}
            for e in s.evidence
        ],
    }


def result_row(nid: str, result: SuggestResult) -> dict[str, Any]:
    """The output row of a coded note: its code set (``result.codes``), nothing of its text."""
    return {
        "id": nid,
        "ok": True,
        "error": None,
        "model": result.model.name,
        "model_version": result.model.version,
        "code_sets": dict(sorted(result.code_sets.items())),
        "codes": [_code_json(s) for s in result.codes],
        "warnings": list(result.warnings),
    }


def error_row(
    nid: str, info: ModelInfo, code_sets: Mapping[str, str], error: str
) -> dict[str, Any]:
    """The output row of a note the engine failed on: no codes, and why."""
    return {
        "id": nid,
        "ok": False,
        "error": error,
        "model": info.name,
        "model_version": info.version,
        "code_sets": dict(sorted(code_sets.items())),
        "codes": [],
        "warnings": [],
    }


def dumps_row(row: Mapping[str, Any]) -> str:
    """One JSON line (no newline): the bytes both engines write for a row."""
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def normalize_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row read back from Parquet (maps come back as key-value pairs) as its JSON form."""
    out = dict(row)
    cs = out.get("code_sets")
    if isinstance(cs, list):
        out["code_sets"] = dict(sorted(cs))
    return out


# The Parquet schema of an output row (pyarrow), and the same as a Spark DDL string.
SPARK_DDL = (
    "id STRING, ok BOOLEAN, error STRING, model STRING, model_version STRING, "
    "code_sets MAP<STRING, STRING>, codes ARRAY<STRUCT<system: STRING, code: STRING, "
    "title: STRING, description_source: STRING, score: DOUBLE, rank: BIGINT, status: STRING, "
    "billable: BOOLEAN, principal: BOOLEAN, modifiers: ARRAY<STRING>, units: BIGINT, "
    "query: STRING, evidence: ARRAY<STRUCT<start: BIGINT, end: BIGINT, section: STRING, "
    "assertion: STRING>>>>, warnings ARRAY<STRING>"
)


def arrow_schema() -> Any:
    """The pyarrow schema of output rows (pyarrow is imported here, not at module import)."""
    import pyarrow as pa

    evidence = pa.struct(
        [
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("section", pa.string()),
            ("assertion", pa.string()),
        ]
    )
    code = pa.struct(
        [
            ("system", pa.string()),
            ("code", pa.string()),
            ("title", pa.string()),
            ("description_source", pa.string()),
            ("score", pa.float64()),
            ("rank", pa.int64()),
            ("status", pa.string()),
            ("billable", pa.bool_()),
            ("principal", pa.bool_()),
            ("modifiers", pa.list_(pa.string())),
            ("units", pa.int64()),
            ("query", pa.string()),
            ("evidence", pa.list_(evidence)),
        ]
    )
    return pa.schema(
        [
            ("id", pa.string()),
            ("ok", pa.bool_()),
            ("error", pa.string()),
            ("model", pa.string()),
            ("model_version", pa.string()),
            ("code_sets", pa.map_(pa.string(), pa.string())),
            ("codes", pa.list_(code)),
            ("warnings", pa.list_(pa.string())),
        ]
    )
