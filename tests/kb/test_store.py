"""The SQLite knowledge base: term keys, search ranking, the index tree API, schema upgrades."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from clinicode.kb import KnowledgeBase, clear_cache, open_kb
from clinicode.kb.importers import run_import
from clinicode.kb.store import SCHEMA_VERSION, content_words, needs_upgrade, stem, term_key


def test_term_key_ignores_order_function_words_and_modifiers() -> None:
    assert term_key("Diabetes, type 2, with, chronic kidney disease") == term_key(
        "type 2 diabetes with chronic kidney disease"
    )
    assert term_key("Essential (primary) hypertension") == term_key("essential hypertension")
    assert term_key("Hyperlipidemia, unspecified") == term_key("hyperlipidemia")
    # "without" changes the meaning: it is kept
    assert term_key("diabetes without complications") != term_key("diabetes with complications")
    assert term_key("(NOS)") is None


def test_stem_and_content_words() -> None:
    assert stem("diabetes") == stem("diabetic")
    assert stem("hypertension") == stem("hypertensive") != stem("hypertrophy")
    assert stem("fracture") == stem("fractured") == stem("fractures")
    assert content_words("Pneumonia (acute) (double)") == ("pneumonia",)
    assert content_words("Pneumonia (acute)", drop_parens=False) == ("pneumonia", "acut")


def test_search_exact_title_first_without_index(kb: KnowledgeBase) -> None:
    assert kb.search("essential hypertension", limit=5)[0].code == "I10"
    assert kb.search("hyperlipidemia", limit=5)[0].code == "E78.5"
    assert kb.search("type 2 diabetes with chronic kidney disease", limit=5)[0].code == "E11.22"


def test_search_code_prefix_lists_the_family(kb: KnowledgeBase) -> None:
    hits = kb.search("E11.2", limit=10)
    assert hits[0].code == "E11.2" and hits[0].source == "code"
    assert {"E11.21", "E11.22", "E11.29"} <= {h.code for h in hits}
    assert all(h.code.startswith("E11.2") for h in hits)


def test_search_scores_sorted_limit_and_systems(kb: KnowledgeBase) -> None:
    hits = kb.search("office visit established patient", limit=5)
    assert len(hits) == 5
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    only_cpt = kb.search("office visit established patient", systems=["CPT"], limit=5)
    assert only_cpt and all(h.system == "CPT" for h in only_cpt)
    assert kb.search("office visit", systems=["ICD-10-PCS"], limit=5) == []
    assert kb.search("fracture of femur", limit=0) == []


def test_search_partial_match_still_finds_something(kb: KnowledgeBase) -> None:
    # no term holds all four words: relaxed queries still return the close ones
    codes = [h.code for h in kb.search("morbid obesity zzyzx qwerty", limit=10)]
    assert "E66.01" in codes


def test_lookup_spellings_and_cpt_own_words(kb: KnowledgeBase) -> None:
    rec = kb.get("99213")
    assert rec.system == "CPT" and rec.description_source == "clinicode-own-words"
    assert kb.find_systems("E11.22") == ["ICD-10-CM"]


SMALL_INDEX = (
    "RowID,Letter,Level,Term,See,SeeAlso,NonEssModif,Code\n"
    '1,D,0,"Diabetes, diabetic",,,(mellitus) (sugar),E11.9\n'
    "2,D,1,type 2,,,,E11.9\n"
    "3,D,2,with,,,,\n"
    "4,D,3,chronic kidney disease,,,,E11.22\n"
    "5,D,3,kidney complications NEC,,,,E11.29\n"
    "6,D,3,ketoacidosis,,,,E11.1-\n"
    "7,D,3,deleted thing,,,,E11.99\n"
    "8,D,0,Diabetic,Diabetes,,,\n"
    '9,H,0,"Hypertension, hypertensive",,,(accelerated) (benign) (essential),I10\n'
    "10,H,1,kidney,,,,I12\n"
)


def test_get_many_is_get_for_each_code(kb: KnowledgeBase) -> None:
    codes = ["E11.22", "e1122", "N18.32", "E11", "I10", "Z99.99X", "S72.001A", "s72001a", ""]
    codes += [f"E11.{i}" for i in range(10)] * 2  # repeats and codes the set lacks
    many = kb.get_many(codes, "ICD-10-CM")
    assert {c: kb.get(c, "ICD-10-CM") for c in codes if kb.get(c, "ICD-10-CM")} == many
    assert many["e1122"].code == "E11.22" and "Z99.99X" not in many
    big = [r.code for r in kb.iter_codes("ICD-10-CM")][:1200]  # more than one query's worth
    assert list(kb.get_many(big, "ICD-10-CM")) == big


@pytest.fixture()
def small(kb_path: Path, tmp_path: Path) -> tuple[KnowledgeBase, dict[str, Any]]:
    path = tmp_path / "kb.sqlite"
    shutil.copyfile(kb_path, path)
    src = tmp_path / "ICD10CM_2030_Index.csv"
    src.write_text(SMALL_INDEX)
    rep = run_import("index", src, path, version="2030-04", force=True)  # a 10-row excerpt
    return KnowledgeBase(path), rep


def test_small_index_report(small: tuple[KnowledgeBase, dict[str, Any]]) -> None:
    kb, rep = small
    assert rep["version"] == "2030-04 (CSV, lossy)"
    assert rep["counts"]["entries"] == 10
    assert rep["counts"]["unknown_codes"] == 1  # E11.99 does not exist
    assert rep["counts"]["not_billable"] == 1  # I12 printed as a complete code is a category
    assert rep["counts"]["see_resolved"] == 1  # "Diabetic" -> see "Diabetes" -> E11.9
    assert kb.system_info("ICD-10-CM").extra["index"] == "2030-04 (CSV, lossy)"


def test_small_index_tree_api(small: tuple[KnowledgeBase, dict[str, Any]]) -> None:
    kb, _ = small
    mains = kb.index_children(None)
    assert [m.term for m in mains] == [
        "Diabetes, diabetic",
        "Diabetic",
        "Hypertension, hypertensive",
    ]
    with_ = kb.index_lookup(["diabetes", "TYPE 2", "with"])
    kids = kb.index_children(with_.id)
    assert [(k.term, k.code, k.resolved) for k in kids] == [
        ("chronic kidney disease", "E11.22", "E11.22"),
        ("kidney complications NEC", "E11.29", "E11.29"),
        ("ketoacidosis", "E11.1-", "E11.1"),  # incomplete code -> its subcategory
        ("deleted thing", "E11.99", None),  # unknown code kept in the tree, no term
    ]
    assert [e.term for e in kb.index_path(kids[0].id)] == [
        "Diabetes, diabetic",
        "type 2",
        "with",
        "chronic kidney disease",
    ]
    assert kb.index_lookup(["Diabetes", "type 9"]) is None
    assert kb.index_find("Diabetic")[0].see == "Diabetes"


def test_small_index_terms(small: tuple[KnowledgeBase, dict[str, Any]]) -> None:
    kb, _ = small
    index_terms = {(t.code, t.text) for t in kb.iter_terms(sources=["index"])}
    assert ("E11.22", "Diabetes, type 2, with, chronic kidney disease") in index_terms
    assert ("E11.9", "Diabetes (mellitus) (sugar)") in index_terms
    assert ("E11.9", "Diabetic") in index_terms
    assert ("I10", "Hypertension (accelerated) (benign) (essential)") in index_terms
    assert not any(code == "E11.99" for code, _ in index_terms)
    assert kb.search("hypertension", limit=3)[0].code == "I10"


def test_reimport_replaces_not_duplicates(
    small: tuple[KnowledgeBase, dict[str, Any]], tmp_path: Path
) -> None:
    kb, _ = small
    n_terms = sum(1 for _ in kb.iter_terms(sources=["index"]))
    src = tmp_path / "again.csv"
    src.write_text(SMALL_INDEX)
    run_import("index", src, kb.path, version="2030-04", force=True)
    kb2 = KnowledgeBase(kb.path)
    assert sum(1 for _ in kb2.iter_terms(sources=["index"])) == n_terms
    assert kb2.index_count("index") == 10


def test_schema1_kb_is_upgraded_on_open(kb_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    shutil.copyfile(kb_path, path)
    conn = sqlite3.connect(path)
    # the schema-1 layout: no key/fid/fsys columns, an external-content FTS index
    conn.execute("DROP INDEX terms_key")
    conn.execute("DROP INDEX terms_fid")
    for col in ("key", "fid", "fsys"):
        conn.execute(f"ALTER TABLE terms DROP COLUMN {col}")
    conn.execute("DROP TABLE terms_fts")
    conn.execute(
        "CREATE VIRTUAL TABLE terms_fts USING fts5(term, content='terms', content_rowid='id',"
        " tokenize='porter unicode61 remove_diacritics 2')"
    )
    conn.execute("INSERT INTO terms_fts(terms_fts) VALUES('rebuild')")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    assert needs_upgrade(path)
    clear_cache()
    kb = open_kb(path)
    assert kb.schema_version() == SCHEMA_VERSION and not needs_upgrade(path)
    assert kb.search("essential hypertension", limit=3)[0].code == "I10"
    assert kb.search("office visit established patient", limit=3)[0].system == "CPT"
    clear_cache()


def test_readonly_kb_refuses_writes(kb: KnowledgeBase) -> None:
    from clinicode.kb import KBError

    with pytest.raises(KBError):
        kb.replace_terms("ICD-10-CM", "synonym", [])


def test_content_fingerprint_changes_with_an_imported_index(
    kb: KnowledgeBase, small: tuple[KnowledgeBase, dict[str, Any]]
) -> None:
    with_index, _ = small
    # same code-set versions, different terms: what is built from the terms must be rebuilt
    assert with_index.versions()["ICD-10-CM"] == kb.versions()["ICD-10-CM"]
    assert with_index.content_fingerprint() != kb.content_fingerprint()
    assert KnowledgeBase(kb.path).content_fingerprint() == kb.content_fingerprint()
