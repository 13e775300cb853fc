"""Hand-built ranker output for guidelines-layer unit tests (no NLP, no ranker)."""

from __future__ import annotations

from typing import Any

from clinicode.schema import Attribute, CodeSuggestion, Evidence, Mention


def build(
    text: str,
    spec: list[tuple[Any, ...]],
    *,
    attrs: dict[str, list[tuple[str, str, str]]] | None = None,
) -> tuple[list[CodeSuggestion], list[Mention]]:
    """``spec``: ``(code, phrase, assertion, score[, section])`` rows; the phrase must be in
    ``text``. ``attrs``: phrase -> ``[(name, value, attribute_text)]`` for its mention."""
    ranked: list[CodeSuggestion] = []
    mentions: dict[tuple[int, int], Mention] = {}
    for row in spec:
        code, phrase, assertion, score = row[:4]
        section = row[4] if len(row) > 4 else None
        start = text.index(phrase)
        end = start + len(phrase)
        m = mentions.get((start, end))
        if m is None:
            attributes = []
            for name, value, atext in (attrs or {}).get(phrase, []):
                a0 = text.index(atext)
                attributes.append(
                    Attribute(name=name, value=value, start=a0, end=a0 + len(atext), text=atext)
                )
            m = Mention(
                start=start,
                end=end,
                text=phrase,
                normalized=phrase.lower(),
                kind="condition",
                section=section,
                assertion=assertion,
                attributes=attributes,
            )
            mentions[(start, end)] = m
        m.concepts.append(f"ICD-10-CM:{code}")
        ranked.append(
            CodeSuggestion(
                system="ICD-10-CM",
                code=code,
                title=code,
                score=score,
                evidence=[
                    Evidence(
                        start=start, end=end, text=phrase, section=section, assertion=assertion
                    )
                ],
            )
        )
    ranked.sort(key=lambda s: -s.score)
    return ranked, sorted(mentions.values(), key=lambda m: m.start)


def codes_of(result: Any) -> list[str]:
    return [s.code for s in result.codes]


def run(
    g: Any,
    text: str,
    spec: list[tuple[Any, ...]],
    setting: str = "outpatient",
    benchmark: bool = False,
    **kw: Any,
) -> Any:
    """The layer's result for ``text`` with the ranked codes of ``spec`` (see :func:`build`)."""
    ranked, mentions = build(text, spec, **kw)
    return g.apply(ranked, mentions, text=text, setting=setting, threshold=0.5, benchmark=benchmark)


def by_code(res: Any) -> dict[str, Any]:
    return {s.code: s for s in [*res.suppressed, *res.candidates, *res.codes]}


def run_cued(
    g: Any,
    text: str,
    spec: list[tuple[Any, ...]],
    cues: dict[str, str],
    setting: str = "outpatient",
) -> Any:
    """:func:`run` with the NLP's assertion cue set on the mentions of ``cues`` (phrase -> cue:
    "quit" for "smoker", "resolved" for "DVT")."""
    ranked, mentions = build(text, spec)
    for m in mentions:
        if m.text in cues:
            m.assertion_cue = cues[m.text]
    return g.apply(ranked, mentions, text=text, setting=setting, threshold=0.5)
