"""Data contracts shared by nlp/, models/, serve/ and the CLI.

Everything the engine returns is one of these pydantic models, so the JSON printed by
``clinicode suggest`` and returned by ``POST /v1/suggest`` is the same document.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

Assertion = Literal["present", "negated", "uncertain", "historical", "family", "hypothetical"]
ASSERTIONS: tuple[str, ...] = get_args(Assertion)  # in the order above
MentionKind = Literal["condition", "finding", "procedure", "medication", "other"]
Setting = Literal["inpatient", "outpatient"]
System = Literal["ICD-10-CM", "ICD-10-PCS", "CPT", "HCPCS"]
CodeStatus = Literal["suggested", "needs_query", "candidate", "suppressed"]
DescriptionSource = Literal["official", "licensed", "clinicode-own-words"]

SYSTEMS: tuple[str, ...] = ("ICD-10-CM", "ICD-10-PCS", "CPT", "HCPCS")
DIAGNOSIS_SYSTEMS: tuple[str, ...] = ("ICD-10-CM",)
PROCEDURE_SYSTEMS: tuple[str, ...] = ("ICD-10-PCS", "CPT", "HCPCS")


class Attribute(BaseModel):
    """A clinical attribute of a mention (laterality, acuity, stage ...) with its evidence offsets."""

    name: str
    value: str
    start: int
    end: int
    text: str


class Mention(BaseModel):
    """A clinical fact found in the note. ``text == note[start:end]`` always holds."""

    start: int
    end: int
    text: str
    normalized: str
    kind: MentionKind
    section: str | None = None
    sentence_start: int = 0
    sentence_end: int = 0
    assertion: Assertion = "present"
    assertion_cue: str | None = None
    attributes: list[Attribute] = Field(default_factory=list)
    concepts: list[str] = Field(
        default_factory=list, description="KB codes whose terms matched this span (system:code)"
    )
    source: str = Field(default="terminology", description="how the mention was found")


class Evidence(BaseModel):
    """One span of the note that supports a code."""

    start: int
    end: int
    text: str
    section: str | None = None
    assertion: Assertion = "present"
    score: float | None = None


class Query(BaseModel):
    """A documentation query for the provider where the code set needs a detail the note lacks."""

    axis: str
    question: str


class CodeSuggestion(BaseModel):
    suggestion_id: str = ""
    system: str
    code: str
    title: str
    billable: bool = True
    description_source: DescriptionSource = "official"
    score: float = Field(
        ge=0.0, le=1.0, description="calibrated probability that a coder accepts it"
    )
    rank: int = 0
    status: CodeStatus = "suggested"
    evidence: list[Evidence] = Field(default_factory=list)
    explanation: list[str] = Field(default_factory=list)
    reason: str | None = Field(default=None, description="why it was suppressed, when it was")
    query: Query | None = None
    principal: bool = Field(default=False, description="inpatient principal-diagnosis candidate")
    modifiers: list[str] = Field(
        default_factory=list,
        description="CPT/HCPCS modifiers appended to the code, e.g. RT, 50, XS, 25",
    )
    units: int | None = Field(
        default=None, ge=1, description="billing units (HCPCS drug units, add-on code counts)"
    )


class ModelInfo(BaseModel):
    name: str
    version: str
    threshold: float | None = None


class SuggestResult(BaseModel):
    """What the engine returns for one note."""

    model: ModelInfo
    code_sets: dict[str, str] = Field(description="system -> version, e.g. ICD-10-CM -> FY2026")
    setting: Setting = "outpatient"
    codes: list[CodeSuggestion] = Field(default_factory=list)
    candidates: list[CodeSuggestion] = Field(default_factory=list)
    suppressed: list[CodeSuggestion] = Field(default_factory=list)
    mentions: list[Mention] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    elapsed_ms: float = 0.0
