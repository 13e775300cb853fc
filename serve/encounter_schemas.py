"""Bodies of the work-queue API (``/v1/encounters``): encounters, the coder's worksheet and the
final code lines that are exported."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clinicode.schema import Setting, SuggestResult, System

from .schemas import CODE_PATTERN, NoteId

Status = Literal["new", "in_progress", "queried", "coded"]
POA = Literal["Y", "N", "U", "W", "1"]
RejectReason = Literal[
    "not_documented", "wrong_specificity", "negated", "integral_symptom", "other"
]
REJECT_REASONS: dict[str, str] = {
    "not_documented": "Not documented",
    "wrong_specificity": "Wrong specificity",
    "negated": "Negated",
    "integral_symptom": "Integral symptom",
    "other": "Other",
}
QueryStatus = Literal["draft", "sent", "answered"]
Modifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{2}$", examples=["25"])]
Code = Annotated[str, Field(pattern=CODE_PATTERN, examples=["E11.9"])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DocumentIn(_Strict):
    text: str = Field(min_length=1, description="The document, plain text.")
    note_type: str | None = Field(default=None, max_length=64, examples=["discharge_summary"])
    title: str | None = Field(default=None, max_length=120, examples=["Discharge summary"])

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("document text is empty (only whitespace)")
        if "\x00" in v:
            raise ValueError("document text contains NUL characters; send plain text")
        return v


class EncounterIn(_Strict):
    encounter_id: NoteId | None = Field(
        default=None, description="Your id for the encounter; generated when absent."
    )
    label: str = Field(
        default="", max_length=200, description="What the queue shows, e.g. an account number."
    )
    setting: Setting
    encounter_date: date = Field(description="Date of service (admission date for inpatient).")
    documents: list[DocumentIn] = Field(min_length=1, max_length=20)


class Decision(BaseModel):
    action: Literal["accept", "reject", "modify"]
    final_code: str | None = None
    final_title: str | None = None
    reason: RejectReason | None = None
    reason_text: str | None = None
    feedback_id: int
    at: datetime


class Added(BaseModel):
    system: str
    code: str
    title: str
    feedback_id: int
    at: datetime


class QueryState(BaseModel):
    axis: str = ""
    text: str
    status: QueryStatus = "draft"
    answer: str | None = None
    at: datetime | None = None


class Worksheet(BaseModel):
    """The coder's state of one encounter, exactly as left."""

    decisions: dict[str, Decision] = Field(default_factory=dict)  # by suggestion_id
    added: list[Added] = Field(default_factory=list)
    sequence: list[str] = Field(default_factory=list)  # line keys "SYSTEM|CODE", in order
    poa: dict[str, POA] = Field(default_factory=dict)  # by line key
    modifiers: dict[str, list[str]] = Field(default_factory=dict)
    units: dict[str, int] = Field(default_factory=dict)
    queries: dict[str, QueryState] = Field(default_factory=dict)  # by suggestion_id
    cursor: int = 0  # the row the coder had selected
    view: dict[str, Any] = Field(default_factory=dict)  # page state (open panels)


class DecisionIn(_Strict):
    """``accept`` / ``reject`` / ``modify`` a suggestion, ``add`` a code, or ``undo`` one."""

    action: Literal["accept", "reject", "modify", "add", "undo"]
    suggestion_id: str | None = Field(default=None, min_length=1, max_length=128)
    system: System | None = None
    code: Code | None = Field(default=None, description="For add (and undo of an added code).")
    final_code: Code | None = Field(default=None, description="The corrected code, for modify.")
    reason: RejectReason | None = Field(default=None, description="Why, for reject.")
    reason_text: str | None = Field(default=None, max_length=500)
    version: int | None = Field(default=None, description="The version you read (optional).")

    @model_validator(mode="after")
    def _shape(self) -> DecisionIn:
        if self.action in ("accept", "reject", "modify") and not self.suggestion_id:
            raise ValueError(f"action '{self.action}' needs suggestion_id")
        if self.action == "add" and not self.code:
            raise ValueError("action 'add' needs code (and system; default ICD-10-CM)")
        if self.action == "undo" and not (self.suggestion_id or self.code):
            raise ValueError("action 'undo' needs suggestion_id, or code for an added code")
        if self.action == "modify" and not self.final_code:
            raise ValueError("action 'modify' needs final_code")
        if self.action == "reject" and self.reason is None:
            raise ValueError("action 'reject' needs reason: one of " + ", ".join(REJECT_REASONS))
        if self.reason == "other" and not (self.reason_text or "").strip():
            raise ValueError("reason 'other' needs reason_text")
        return self


class WorksheetPatch(_Strict):
    """Sequence, POA, modifiers, units and the page's position; absent fields are kept."""

    version: int | None = None
    sequence: list[str] | None = Field(default=None, max_length=500)
    poa: dict[str, POA] | None = None
    modifiers: dict[str, list[Modifier]] | None = None
    units: dict[str, Annotated[int, Field(ge=1, le=999)]] | None = None
    cursor: int | None = Field(default=None, ge=0)
    view: dict[str, Any] | None = None


class QueryIn(_Strict):
    text: str = Field(
        min_length=1, max_length=4000, description="The query as the provider reads it."
    )
    status: QueryStatus
    answer: str | None = Field(default=None, max_length=4000)
    version: int | None = None

    @model_validator(mode="after")
    def _answered(self) -> QueryIn:
        if self.status == "answered" and not (self.answer or "").strip():
            raise ValueError("status 'answered' needs answer: what the provider documented")
        return self


class VersionIn(_Strict):
    version: int | None = None


class FinalLine(BaseModel):
    key: str
    kind: Literal["diagnosis", "procedure", "item"]
    sequence: int
    system: str
    code: str
    title: str
    source: Literal["accepted", "modified", "added"]
    original_code: str | None = None
    principal: bool = False
    poa: POA | None = None
    poa_source: Literal["coder", "note"] | None = Field(
        default=None, description="note: documented in the note (the coder may change it)"
    )
    modifiers: list[str] = Field(default_factory=list)
    units: int = 1


class EncounterOut(BaseModel):
    encounter_id: str
    note_id: str
    label: str
    setting: Setting
    encounter_date: date
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    coded_at: datetime | None
    text: str
    documents: list[dict[str, Any]]
    result: SuggestResult
    worksheet: Worksheet
    final: list[FinalLine]
    problems: list[str] = Field(description="What stops the encounter from being coded.")
    reject_reasons: dict[str, str] = Field(default_factory=lambda: dict(REJECT_REASONS))


class QueueItem(BaseModel):
    encounter_id: str
    label: str
    setting: str
    encounter_date: str
    status: Status
    updated_at: datetime
    coded_at: datetime | None
    codes: list[str]
    documents: int


class QueueOut(BaseModel):
    counts: dict[str, int]
    items: list[QueueItem]
