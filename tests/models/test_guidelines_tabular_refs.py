"""Use-additional codes the Tabular List chooses (``models.guidelines.tabular_refs``): an
ulcer's site, laterality and severity beside E11.621 and I83.01-, from the ulcer's sentence."""

from __future__ import annotations

from typing import Any

from clinicode.models.guidelines import Guidelines
from tests.models.guidelines_helpers import build, by_code, codes_of


def _apply(g: Guidelines, text: str, spec: list[tuple[Any, ...]], **kw: Any) -> Any:
    """The layer's result, each mention given the bounds of its sentence ('.'-delimited)."""
    ranked, mentions = build(text, spec, **kw)
    placed = []
    for m in mentions:
        lo = text.rfind(".", 0, m.start) + 1
        hi = text.find(".", m.end)
        placed.append(
            m.model_copy(
                update={"sentence_start": lo, "sentence_end": hi + 1 if hi >= 0 else len(text)}
            )
        )
    return g.apply(ranked, placed, text=text, setting="outpatient", threshold=0.5)


def test_the_ulcer_sentence_chooses_site_side_and_severity(g: Guidelines) -> None:
    text = (
        "DM2 with diabetic foot ulcer plantar L great toe, limited to breakdown of skin. Insulin."
    )
    spec = [
        ("E11.621", "diabetic foot ulcer", "present", 0.9),
        ("I10", "great toe", "present", 0.01),  # a mention of the toe, with its laterality
    ]
    res = _apply(g, text, spec, attrs={"great toe": [("laterality", "left", "L great")]})
    assert codes_of(res)[:2] == ["E11.621", "L97.521"]
    why = " ".join(by_code(res)["L97.521"].explanation)
    assert "L97.5 (states foot) -> L97.52 (states left) -> L97.521" in why


def test_heel_is_its_own_subcategory_and_an_unstated_severity_is_unspecified(
    g: Guidelines,
) -> None:
    text = "Type 2 DM with ulcer of right heel. Offloading."
    res = _apply(g, text, [("E11.621", "ulcer of right heel", "present", 0.9)])
    assert "L97.419" in codes_of(res)  # heel and midfoot, right, severity unspecified


def test_a_less_specific_ulcer_code_gives_way(g: Guidelines) -> None:
    text = "Varicose veins of R leg with ulcer of the R calf, fat layer exposed. Compression."
    spec = [
        ("I83.012", "Varicose veins of R leg with ulcer", "present", 0.9),
        ("L97.219", "ulcer of the R calf", "present", 0.8),
    ]
    calf = [("laterality", "right", "R calf")]
    res = _apply(g, text, spec, attrs={"ulcer of the R calf": calf})
    codes = codes_of(res)
    assert "L97.212" in codes and "L97.219" not in codes
    assert any("L97.212 states what L97.219" in e for e in by_code(res)["L97.219"].explanation)


def test_no_ulcer_code_without_an_ulcer_stated(g: Guidelines) -> None:
    text = "DM2 with foot ulcer, healed; no ulcer today. Foot exam normal."
    res = _apply(g, text, [("E11.621", "foot ulcer", "negated", 0.9)])
    assert not [c for c in codes_of(res) if c.startswith("L97")]


def test_attributes_of_the_sentence_count_but_not_other_sentences(g: Guidelines) -> None:
    text = "DM2 with foot ulcer. Left knee OA."
    spec = [("E11.621", "foot ulcer", "present", 0.9), ("M17.12", "knee OA", "present", 0.9)]
    res = _apply(g, text, spec, attrs={"knee OA": [("laterality", "left", "Left")]})
    assert "L97.509" in codes_of(res)  # the left of the knee is not the ulcer's side


def test_the_index_walk_of_the_ulcer_words_is_taken_over_a_descent_from_the_category(
    g: Guidelines,
) -> None:
    # a retrained ranker scores the encoder's L97.212 under the threshold; a descent from L97
    # with the words of "leg with an ulcer" alone would say "unspecified part of lower leg"
    text = "Varicose veins of the R leg with an ulcer of the posterior R calf, fat layer exposed."
    phrase = "leg with an ulcer"
    spec = [
        ("I83.012", "Varicose veins", "present", 0.9),
        ("L97.212", phrase, "present", 0.2),
    ]
    ranked, mentions = build(text, spec)
    path = "Index: Ulcer, leg, [lower limb], calf, right, with, exposed fat layer -> L97.212"
    next(s for s in ranked if s.code == "L97.212").explanation = [path]
    placed = [
        m.model_copy(update={"sentence_start": 0, "sentence_end": len(text)}) for m in mentions
    ]
    res = g.apply(ranked, placed, text=text, setting="outpatient", threshold=0.5)
    assert "L97.212" in codes_of(res) and "L97.912" not in codes_of(res)
    assert any(path in e for e in by_code(res)["L97.212"].explanation)
