"""Clinical NLP: sections, sentences, abbreviations, mentions, assertions and attributes.

``from clinicode.nlp import load_pipeline``; ``load_pipeline().extract(text)`` returns
:class:`clinicode.schema.Mention` objects with exact character offsets. spaCy and the
components are imported on first use, not when this package is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinicode.nlp.pipeline import ClinicalPipeline, NlpConfig, load_pipeline

__all__ = ["ClinicalPipeline", "NlpConfig", "load_pipeline"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from clinicode.nlp import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
