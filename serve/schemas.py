"""Request and response bodies of the HTTP API (the suggest response is ``SuggestResult``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clinicode.schema import Setting, SuggestResult, System

NOTE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,31}$"

NoteId = Annotated[
    str,
    Field(
        pattern=NOTE_ID_PATTERN,
        description="Your id for the note (letters, digits, . _ : -); generated when absent.",
        examples=["enc-2024-0001"],
    ),
]
Code = Annotated[str, Field(pattern=CODE_PATTERN, examples=["E11.9"])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuggestRequest(_Strict):
    text: str = Field(
        min_length=1,
        description="The note, plain text. Limit: CLINICODE_MAX_TEXT_CHARS (413 above it).",
        examples=["Assessment: type 2 diabetes mellitus without complications. No pneumonia."],
    )
    setting: Setting = Field(description="inpatient or outpatient: the coding rules differ.")
    note_type: str | None = Field(
        default=None,
        max_length=64,
        description="e.g. discharge_summary, progress_note: stored with the note (the coder's "
        "queue shows it); it does not change the suggested codes",
    )
    systems: list[System] | None = Field(
        default=None, min_length=1, max_length=4, description="Code systems to suggest from."
    )
    top_k: int | None = Field(
        default=None, ge=1, description="At most this many suggested codes (limit: max_top_k)."
    )
    note_id: NoteId | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("note text is empty (only whitespace)")
        if "\x00" in v:
            raise ValueError("note text contains NUL characters; send plain text")
        return v

    @field_validator("systems")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(v)) if v is not None else None


class BatchRequest(_Strict):
    notes: list[SuggestRequest] = Field(
        min_length=1, description="Up to CLINICODE_MAX_BATCH notes (default 100)."
    )


class BatchItem(BaseModel):
    note_id: str
    result: SuggestResult


class BatchResponse(BaseModel):
    results: list[BatchItem]


Action = Literal["accept", "reject", "modify", "add"]


class FeedbackRequest(_Strict):
    """Either ``suggestion_id``, or ``note_id`` + ``code`` (``add`` always uses the latter)."""

    suggestion_id: str | None = Field(default=None, min_length=1, max_length=128)
    note_id: NoteId | None = None
    code: Code | None = None
    system: System | None = Field(
        default=None,
        description="System of ``code`` (default: that of the suggestion, or ICD-10-CM).",
    )
    action: Action
    final_code: Code | None = Field(default=None, description="The corrected code, for modify.")
    reason: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _target(self) -> FeedbackRequest:
        if self.action == "add":
            if self.note_id is None or self.code is None:
                raise ValueError("action 'add' needs note_id and code")
        elif self.suggestion_id is None and (self.note_id is None or self.code is None):
            raise ValueError("give suggestion_id, or note_id and code")
        if self.action == "modify" and not self.final_code:
            raise ValueError("action 'modify' needs final_code")
        if self.action != "modify" and self.final_code is not None:
            raise ValueError("final_code is only for action 'modify'")
        return self


class FeedbackResponse(BaseModel):
    feedback_id: int
    recorded_at: datetime
    note_id: str
    suggestion_id: str | None
    system: str
    code: str
    action: Action
    final_code: str | None
    model_version: str
    code_set_version: str


class PromoteRequest(_Strict):
    """The pack to serve: its folder name under the data dir's packs folder."""

    pack: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class Problem(BaseModel):
    """Every error response: ``detail`` says what was wrong and what to do."""

    detail: str | list[dict[str, object]]


# The error responses every /v1 route documents in the OpenAPI schema.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No API key, or an unknown one."},
    403: {"model": Problem, "description": "The key may not do this."},
    422: {"model": Problem, "description": "The request is malformed; detail says where."},
}
