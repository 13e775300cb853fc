"""MAP and set metrics against small hand-computed examples (CodiEsp definitions)."""

from __future__ import annotations

import pytest

from clinicode.training.metrics import (
    average_precision,
    best_threshold,
    evaluate_rankings,
    mean_average_precision,
    micro_prf,
    official_map,
    precision_at,
    recall_at,
)


def test_average_precision_by_hand() -> None:
    # gold {a, c}; ranks: a(1, hit) b(2) c(3, hit): (1/1 + 2/3) / 2
    assert average_precision({"a", "c"}, ["a", "b", "c"]) == pytest.approx((1 + 2 / 3) / 2)


def test_unretrieved_gold_counts_as_zero() -> None:
    # gold {a, b, z}; only a at rank 2 retrieved: (1/2) / 3
    assert average_precision({"a", "b", "z"}, ["x", "a"]) == pytest.approx(0.5 / 3)


def test_duplicates_count_once() -> None:
    assert average_precision({"a", "b"}, ["a", "a", "b"]) == pytest.approx(1.0)


def test_map_over_all_gold_documents_missing_prediction_is_zero() -> None:
    gold = {"d1": ["a"], "d2": ["b"], "d3": []}
    ranked = {"d1": ["a"]}  # d2 has no predictions; d3 has no gold and is not averaged
    assert mean_average_precision(gold, ranked) == pytest.approx(0.5)
    # the official (trec_eval) variant averages only documents with predictions
    assert official_map(gold, ranked) == pytest.approx(1.0)


def test_official_map_drops_invalid_codes() -> None:
    gold = {"d1": ["a", "b"]}
    ranked = {"d1": ["junk", "a", "b"]}
    assert official_map(gold, ranked, valid_codes={"a", "b"}) == pytest.approx(1.0)
    assert mean_average_precision(gold, ranked) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_precision_recall_at_k() -> None:
    assert precision_at({"a", "b"}, ["a", "x", "b", "y", "z"], 5) == pytest.approx(2 / 5)
    assert recall_at({"a", "b", "c", "d"}, ["a", "x", "b"], 2) == pytest.approx(1 / 4)


def test_micro_prf() -> None:
    prf = micro_prf({"d1": ["a", "b"], "d2": ["c"]}, {"d1": ["a", "x"], "d2": []})
    assert prf["precision"] == pytest.approx(1 / 2)
    assert prf["recall"] == pytest.approx(1 / 3)
    assert prf["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))


def test_evaluate_rankings_and_threshold() -> None:
    gold = {"d1": ["a"], "d2": ["b"]}
    scored = {"d1": [("a", 0.9), ("x", 0.3)], "d2": [("y", 0.6), ("b", 0.5)]}
    res = evaluate_rankings(gold, scored, threshold=0.55)
    assert res["map"] == pytest.approx((1 + 0.5) / 2)
    assert res["micro_precision"] == pytest.approx(1 / 2)  # a (tp), y (fp)
    assert res["micro_recall"] == pytest.approx(1 / 2)
    t, f1 = best_threshold(gold, scored)
    assert f1 == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))  # t <= 0.5 keeps a, y, b
    assert t <= 0.5
