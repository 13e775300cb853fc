"""Interfaces between the stages of the engine (chosen by name from ``models.registry``).

note text -> NLP ``Mention``s -> ``CandidateGenerator``s -> ``Candidate``s -> ``Ranker`` scores
-> ``GuidelinesLayer`` -> the final ``SuggestResult`` (see ``clinicode.schema``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from clinicode.schema import CodeSuggestion, Mention


@dataclass
class Candidate:
    """One code proposed for a note, with what supports it (before ranking)."""

    system: str
    code: str
    # indices into the note's mention list that point to this code, with per-mention scores
    mention_ids: list[int] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)  # lexical | dense | structure | doc_classifier
    score: float = 0.0
    # how a coder would reach the code (the encoder's Index and Tabular path), for explanations
    paths: list[str] = field(default_factory=list)


@runtime_checkable
class CandidateGenerator(Protocol):
    """Proposes codes for the mentions of one note.

    One signature for every generator, so a plug-in registered in ``models.registry`` fits the
    pipeline (``models.candidates.CandidatePipeline``) with no edit to it: generators with
    ``uses_seeds`` run after the others and get their merged output as ``seeds``.
    """

    name: str
    uses_seeds: bool

    def fit(
        self, kb: Any, systems: Sequence[str] = ..., *, progress: bool = False
    ) -> CandidateGenerator: ...

    def generate(
        self, text: str, mentions: list[Mention], *, seeds: Sequence[Candidate] = ()
    ) -> list[Candidate]: ...

    def save(self, directory: Path | str) -> None: ...

    @classmethod
    def load(cls, directory: Path | str, *, kb: Any = None) -> CandidateGenerator: ...


@runtime_checkable
class Ranker(Protocol):
    """scikit-learn style: hyperparameters in ``__init__``, ``fit`` returns self; saved into
    and loaded from a pack folder (``models.pack``), chosen by its ``registry_name``."""

    registry_name: str

    def fit(self, X: Any, y: Any, **kwargs: Any) -> Ranker: ...

    def predict_proba(self, X: Any) -> Any: ...

    def save(self, directory: Path | str) -> list[Path]: ...

    @classmethod
    def load(cls, directory: Path | str, *, trusted: bool = False) -> Ranker: ...


@dataclass
class GuidelineResult:
    codes: list[CodeSuggestion]  # final set: status "suggested" or "needs_query", billable only
    candidates: list[CodeSuggestion]  # ranked others, for recall and MAP
    suppressed: list[CodeSuggestion]  # negated / family / hypothetical / ruled out ..., with reason


@runtime_checkable
class GuidelinesLayer(Protocol):
    """Turns ranked, evidenced codes into a code set under the Official Guidelines."""

    def apply(
        self,
        ranked: list[CodeSuggestion],
        mentions: list[Mention],
        *,
        text: str,
        setting: str,
        threshold: float,
        benchmark: bool = False,
        copy: bool = True,
    ) -> GuidelineResult: ...


@runtime_checkable
class RuleCoder(Protocol):
    """Builds codes from what the note documents, by rule rather than by learned score: the
    ICD-10-PCS builder, the E/M level, CPT from procedure mentions (``models.registry`` kind
    ``rule_coder``).

    One constructor for every rule coder, ``cls(kb)``; the scoring path builds those whose
    ``systems`` are loaded in the KB and that the pack does not switch off
    (``config["rule_coders"]``). ``code`` returns suggestions with their evidence, the path that
    led to each code as ``explanation``, status ``suggested`` or ``needs_query`` (with the
    ``query`` naming what the note lacks), and a score in [0, 1]; the scoring path adds them to
    the code set of their system, replacing a ranker suggestion of the same code.
    """

    name: str
    systems: tuple[str, ...]

    def code(self, text: str, mentions: list[Mention], *, setting: str) -> list[CodeSuggestion]: ...
