from __future__ import annotations


def test_search_finds_combination_code(kb) -> None:
    hits = kb.search("type 2 diabetes with chronic kidney disease", limit=5)
    assert hits[0].code == "E11.22"


def test_search_by_code(kb) -> None:
    hits = kb.search("E11.22", limit=3)
    assert hits[0].code == "E11.22" and hits[0].source == "code"


def test_search_inclusion_term(kb) -> None:
    codes = [h.code for h in kb.search("decompensated COPD", limit=10)]
    assert "J44.1" in codes


def test_search_empty_and_nonsense(kb) -> None:
    assert kb.search("   ") == []
    assert kb.search("qwxzv") == []


def test_search_restricted_to_billable(kb) -> None:
    hits = kb.search("heart failure", limit=20, billable_only=True)
    assert hits and all(h.billable for h in hits)
