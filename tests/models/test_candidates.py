"""Candidate generation: phrases, lexical / dense / structure generators, merge, persistence."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clinicode.kb.records import CodeRecord, Term
from clinicode.models.candidates import (
    CandidatePipeline,
    CandidatesError,
    TermTable,
    get_generator,
    merge,
    normalize_term,
    phrase_mentions,
    term_variants,
)
from clinicode.models.candidates_structure import (
    StructureGenerator,
    mention_attributes,
    title_agreement,
)
from clinicode.models.types import Candidate, CandidateGenerator
from clinicode.schema import Attribute, Mention

CM = "ICD-10-CM"


# -- a tiny in-memory code set ------------------------------------------------------------
def _rec(
    code: str, title: str, parent: str | None, billable: bool, kind: str = "code"
) -> CodeRecord:
    return CodeRecord(
        system=CM, code=code, title=title, kind=kind, billable=billable, parent=parent
    )


_RECORDS = [
    _rec("N20-N23", "Urolithiasis", None, False, "block"),
    _rec("N23", "Unspecified renal colic", "N20-N23", True, "category"),
    _rec("N20", "Calculus of kidney and ureter", "N20-N23", False, "category"),
    _rec("N20.0", "Calculus of kidney", "N20", True),
    _rec("N20.1", "Calculus of ureter", "N20", True),
    _rec("I10", "Essential (primary) hypertension", None, True, "category"),
    _rec("S72", "Fracture of femur", None, False, "category"),
    _rec("S72.0", "Fracture of head and neck of femur", "S72", False, "subcategory"),
    _rec("S72.00", "Fracture of unspecified part of neck of femur", "S72.0", False, "subcategory"),
    _rec("S72.001", "Fracture of unspecified part of neck of right femur", "S72.00", False),
    _rec("S72.002", "Fracture of unspecified part of neck of left femur", "S72.00", False),
    _rec("S72.009", "Fracture of unspecified part of neck of unspecified femur", "S72.00", False),
]
for _base in ("S72.001", "S72.002", "S72.009"):
    _title = next(r.title for r in _RECORDS if r.code == _base)
    _RECORDS += [
        _rec(_base + "A", _title + ", initial encounter for closed fracture", _base, True),
        _rec(
            _base + "D",
            _title + ", subsequent encounter for closed fracture with routine healing",
            _base,
            True,
        ),
        _rec(_base + "S", _title + ", sequela", _base, True),
    ]
_TERMS = [Term(CM, r.code, r.title, "title") for r in _RECORDS if r.kind != "block"] + [
    Term(CM, "N20.0", "Nephrolithiasis NOS", "inclusion"),
    Term(CM, "N20.0", "Renal calculus", "inclusion"),
    Term(CM, "I10", "High blood pressure", "inclusion"),
    Term(
        CM,
        "I10",
        "Hypertension (arterial) (benign) (essential) (malignant) (primary) (systemic)",
        "inclusion",
    ),
]


class FakeKB:
    """The part of ``KnowledgeBase`` the generators read."""

    def __init__(self, version: str = "FY2026") -> None:
        self.version = version

    def versions(self) -> dict[str, str]:
        return {CM: self.version}

    def iter_codes(self, system: str, *, billable_only: bool = False) -> Iterator[CodeRecord]:
        return (r for r in _RECORDS if r.system == system and (r.billable or not billable_only))

    def iter_terms(
        self, systems: Iterable[str] | None = None, sources: Iterable[str] | None = None
    ) -> Iterator[Term]:
        sy = set(systems) if systems is not None else None
        so = set(sources) if sources is not None else None
        return (
            t for t in _TERMS if (sy is None or t.system in sy) and (so is None or t.source in so)
        )


def _mention(text: str, note: str, **kw: Any) -> Mention:
    start = note.index(text)
    return Mention(
        start=start,
        end=start + len(text),
        text=text,
        normalized=text.lower(),
        kind="condition",
        sentence_start=0,
        sentence_end=len(note),
        **kw,
    )


# -- text ---------------------------------------------------------------------------------
def test_normalize_and_variants() -> None:
    assert normalize_term("Diabetes, type 2, with: CKD") == "diabetes type 2 with ckd"
    assert term_variants("Hypertension (arterial) (essential), unspecified") == [
        "hypertension arterial essential unspecified",
        "hypertension unspecified",
        "hypertension",
    ]
    assert term_variants("Unspecified renal colic") == ["unspecified renal colic", "renal colic"]


def test_phrase_mentions_have_exact_offsets_and_are_deterministic() -> None:
    note = (
        "A 29-year-old woman with a history of duodenal ulcer and constipation.\n"
        "She complained of pain in the right renal fossa; no hematuria was seen."
    )
    ms = phrase_mentions(note)
    assert ms == phrase_mentions(note)
    assert all(note[m.start : m.end] == m.text for m in ms)
    texts = {m.text for m in ms}
    assert {"duodenal ulcer", "constipation", "hematuria", "right renal fossa"} <= texts
    assert "pain in the right renal fossa" in texts  # neighbours joined over function words
    assert not any(t.lower() in {"the", "was", "of"} for t in texts)
    assert all(m.sentence_start <= m.start and m.end <= m.sentence_end for m in ms)
    assert phrase_mentions("") == []


# -- term table, registry -----------------------------------------------------------------
def test_term_table_collapses_seventh_character_titles() -> None:
    table = TermTable.from_kb(FakeKB(), [CM])
    codes = {c for i in range(len(table.texts)) for c, _, _ in table.entries(i)}
    assert f"{CM}|S72.001" in codes and f"{CM}|S72.001A" not in codes
    raw = TermTable.from_kb(FakeKB(), [CM], collapse_seventh=False)
    assert f"{CM}|S72.001A" in {c for i in range(len(raw.texts)) for c, _, _ in raw.entries(i)}
    assert "renal colic" in table.texts  # "Unspecified" dropped as a variant


def test_registry_and_unfitted_errors() -> None:
    gen = get_generator("lexical", top_k=5)
    assert gen.top_k == 5 and isinstance(gen, CandidateGenerator)
    with pytest.raises(CandidatesError, match="unknown candidate generator"):
        get_generator("nope")
    with pytest.raises(CandidatesError, match="before fit"):
        gen.generate("renal colic", [])


# -- lexical ------------------------------------------------------------------------------
def test_lexical_small_kb_uses_inclusion_terms_and_mentions() -> None:
    gen = get_generator("lexical").fit(FakeKB())
    note = "Known high blood pressure. Renal calculus on the left."
    ms = [_mention("high blood pressure", note), _mention("Renal calculus", note)]
    cands = gen.generate(note, ms)
    by_code = {c.code: c for c in cands}
    assert gen.search(["renal calculus", "é"])[1] == []  # no known n-gram: no neighbours
    assert by_code["I10"].mention_ids == [0]
    assert by_code["I10"].features["exact"] == 1.0
    assert by_code["N20.0"].mention_ids == [1]
    assert by_code["N20.0"].features["lex_max"] == pytest.approx(1.0, abs=1e-5)
    assert by_code["N20.0"].features["lex_src_inclusion"] > 0.99


def test_lexical_remembered_searches_give_the_same_candidates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import clinicode.models.candidates_lexical as lexical

    gen = get_generator("lexical").fit(FakeKB())
    note = "Known high blood pressure. Renal calculus on the left. High blood pressure again."
    ms = [_mention("high blood pressure", note), _mention("Renal calculus", note)]
    searched: list[list[str]] = []
    search = gen.search
    monkeypatch.setattr(gen, "search", lambda qs, *a: searched.append(list(qs)) or search(qs, *a))
    first = gen.generate(note, ms)
    second = gen.generate(note, ms)  # every phrase known: nothing searched again
    assert len(searched) == 1 and searched[0]
    assert [(c.code, c.features, c.mention_ids) for c in first] == [
        (c.code, c.features, c.mention_ids) for c in second
    ]
    monkeypatch.setattr(lexical, "_MAX_CACHED_QUERIES", 1)  # full: emptied, still right
    gen._hits.clear()
    third = gen.generate(note, ms)
    assert len(gen._hits) <= 1
    assert [c.code for c in third] == [c.code for c in first]


def test_lexical_query_matrix_is_the_vectorizers_transform(tmp_path: Path) -> None:
    gen = get_generator("lexical").fit(FakeKB())
    gen.save(tmp_path)
    loaded = type(gen).load(tmp_path)  # the vectorizer's query side, without scikit-learn
    assert type(loaded.vectorizer_).__name__ == "NgramVocabulary"
    rng = random.Random(7)
    words = ["renal", "calculus", "left", "hypertension", "é", "a", "ab", "type 2", "colic,"]
    queries = ["high blood pressure", "renal calculus left", "é", "", "Renal  colic, acute"]
    queries += [" ".join(rng.choices(words, k=rng.randint(1, 40))) for _ in range(200)]
    want = gen.vectorizer_.transform(queries).tocsr()
    want.sort_indices()
    for g in (gen, loaded):
        got = g._query_matrix(queries)
        assert got.dtype == want.dtype
        assert np.array_equal(got.indptr, want.indptr)
        assert np.array_equal(got.indices, want.indices)
        assert np.array_equal(got.data, want.data)  # bit for bit, not approximately


@pytest.fixture(scope="module")
def lexical_full(kb: Any) -> Any:
    return get_generator("lexical").fit(kb)


@pytest.mark.slow
def test_lexical_full_kb_diabetes_with_ckd(lexical_full: Any) -> None:
    note = "Type 2 diabetes with chronic kidney disease."
    ms = [_mention("Type 2 diabetes with chronic kidney disease", note)]
    top = [c.code for c in lexical_full.generate(note, ms)[:3]]
    assert "E11.22" in top
    # "Essential (primary) hypertension" matches without its parenthesised modifier
    hyp = lexical_full.generate("essential hypertension", [])
    assert hyp[0].code == "I10" and hyp[0].features["exact"] == 1.0


# -- structure ----------------------------------------------------------------------------
def test_mention_attributes_from_nlp_and_text() -> None:
    note = "Closed fracture of the neck of the right femur, subsequent encounter."
    m = _mention("fracture of the neck of the right femur", note)
    assert mention_attributes(m, note) == {"laterality": "right", "episode": "subsequent"}
    m2 = _mention(
        "fracture of the neck of the right femur",
        note,
        attributes=[Attribute(name="laterality", value="left", start=0, end=4, text="left")],
    )
    assert mention_attributes(m2, note)["laterality"] == "left"  # the NLP's value wins


def test_attribute_tables_of_the_data_read_names_spellings_and_titles() -> None:
    # models/resources/structure.yaml: NLP names and spellings, a title's own way of writing
    note = "Osteoarthritis of both knees, sequelae of an old injury. Type II diabetes."
    side = Attribute(name="side", value="both", start=18, end=22, text="both")
    m = _mention("Osteoarthritis of both knees", note, attributes=[side])
    assert mention_attributes(m, note) == {"laterality": "bilateral", "episode": "sequela"}
    dm = mention_attributes(_mention("Type II diabetes", note), note)
    assert dm["diabetes_type"] == "2"
    assert title_agreement("Type 2 diabetes mellitus without complications", dm) == 1.0
    assert title_agreement("Type 1 diabetes mellitus without complications", dm) == -1.0
    right = {"laterality": "right"}
    assert title_agreement("Pain in right knee", right) == 1.0
    assert title_agreement("Pain in left knee", right) == -1.0
    assert title_agreement("Pain in unspecified knee", right) == -0.5
    assert title_agreement("Chronic kidney disease, stage 3b", {"stage": "3b"}) == 1.0


def test_structure_laterality_picks_the_right_side_child_and_7th_character() -> None:
    gen = StructureGenerator().fit(FakeKB())
    note = "X-ray: fracture of the neck of the right femur."
    ms = [_mention("fracture of the neck of the right femur", note)]
    seed = Candidate(CM, "S72.00", mention_ids=[0], features={"lex_max": 0.8}, score=0.8)
    out = {c.code: c for c in gen.generate(note, ms, seeds=[seed])}
    assert "S72.001" in out and "S72.002" not in out
    assert out["S72.001"].features["struct_attr_agree"] >= 1
    # 7th character from the episode: initial when the note does not say
    assert "S72.001A" in out and out["S72.001A"].features["struct_episode_stated"] == 0.0
    assert "S72.0" in out and out["S72.0"].features["struct_parent"] == 1.0

    note2 = "Fracture of the neck of the left femur, subsequent encounter."
    ms2 = [_mention("Fracture of the neck of the left femur", note2)]
    seed2 = Candidate(CM, "S72.009", mention_ids=[0], features={"lex_max": 0.9}, score=0.9)
    out2 = {c.code for c in gen.generate(note2, ms2, seeds=[seed2])}
    assert "S72.002" in out2  # a sibling that states the side the seed leaves unspecified
    assert "S72.009D" in out2 and "S72.002D" in out2 and "S72.002A" not in out2


def test_structure_uses_nlp_concepts() -> None:
    gen = StructureGenerator().fit(FakeKB())
    note = "Renal colic."
    ms = [_mention("Renal colic", note, concepts=[f"{CM}:N23", f"{CM}:ZZZ"])]
    out = gen.generate(note, ms, seeds=[])
    assert [(c.code, c.features["concept_match"]) for c in out] == [("N23", 1.0)]


# -- merge and pipeline -------------------------------------------------------------------
def test_merge_unions_mentions_sources_and_features() -> None:
    note = "renal colic. renal colic again, denied hematuria"
    ms = [
        _mention("renal colic", note),
        Mention(
            start=13,
            end=24,
            text=note[13:24],
            normalized="renal colic",
            kind="condition",
            assertion="negated",
        ),
    ]
    a = Candidate(CM, "N23", [0], {"lex_max": 0.9}, {"lexical"}, 0.9)
    b = Candidate(CM, "N23", [1], {"lex_max": 0.5, "dense_max": 0.7}, {"dense"}, 0.7)
    c = Candidate(CM, "N20.0", [1], {"dense_max": 0.6}, {"dense"}, 0.6)
    out = merge({"lexical": [a], "dense": [b, c]}, ms, text_length=len(note))
    assert sorted(x.code for x in out) == ["N20.0", "N23"]
    assert out[0].score >= out[1].score
    simple = merge({"lexical": [a], "dense": [b, c]}, ms, weights={"lex_max": 1, "dense_max": 1})
    assert [(x.code, x.score) for x in simple] == [
        ("N23", pytest.approx(1.6)),
        ("N20.0", pytest.approx(0.6)),
    ]
    n23 = next(x for x in out if x.code == "N23")
    assert n23.mention_ids == [0, 1] and n23.sources == {"lexical", "dense"}
    assert n23.features["lex_max"] == 0.9 and n23.features["dense_max"] == 0.7
    assert n23.features["n_mentions"] == 2 and n23.features["assert_present"] == 1.0
    assert next(x for x in out if x.code == "N20.0").features["assert_negated"] == 1.0
    assert len(merge({"lexical": [a], "dense": [b, c]}, ms, max_candidates=1)) == 1


@pytest.mark.slow
def test_pipeline_save_load_round_trip(tmp_path: Path) -> None:
    kb = FakeKB()
    pipe = CandidatePipeline(
        ("lexical", "dense", "structure"), config={"dense": {"min_score": 0.3}}
    ).fit(kb)
    note = "Fracture of the neck of the right femur. Kidney stone with renal colic."
    before = pipe.generate(note, [])
    files = pipe.save(tmp_path)
    assert {p.suffix for p in files} <= {".json", ".npy", ".npz"}
    assert (tmp_path / "dense_embeddings.npy").is_file()
    loaded = CandidatePipeline.load(tmp_path, kb=kb)
    after = loaded.generate(note, [])
    # same codes, same scores up to the float16 storage of the term embeddings
    assert sorted(c.code for c in after) == sorted(c.code for c in before)
    score_before = {c.code: c.score for c in before}
    assert all(c.score == pytest.approx(score_before[c.code], abs=5e-3) for c in after)
    codes = {c.code for c in after}
    assert {"N23", "S72.001"} <= codes
    dense = loaded.generators_["dense"]
    assert dense.embeddings_.dtype == np.float32
    assert np.allclose(np.linalg.norm(dense.embeddings_, axis=1), 1.0, atol=1e-2)
    # "kidney stone" has no shared words with "Renal calculus": only the encoder links them
    ks = dense.generate(note, [_mention("Kidney stone", note)])
    assert "N20.0" in [c.code for c in ks[:3]]

    with pytest.raises(CandidatesError, match="FY2099"):
        CandidatePipeline.load(tmp_path, kb=FakeKB(version="FY2099"))
    (tmp_path / "lexical_matrix.npz").unlink()
    with pytest.raises(CandidatesError, match="missing"):
        CandidatePipeline.load(tmp_path, kb=kb)


def test_pipeline_mentions_for_adds_phrases_only_when_asked() -> None:
    note = "Renal calculus. Also high blood pressure."
    ms = [_mention("Renal calculus", note)]
    fallback = CandidatePipeline(("lexical",)).fit(FakeKB())
    assert fallback.mentions_for(note, ms) == ms
    assert fallback.mentions_for(note, []) == phrase_mentions(note)
    always = CandidatePipeline(("lexical",), phrases="always").fit(FakeKB())
    full = always.mentions_for(note, ms)
    assert full[0] == ms[0] and len({(m.start, m.end) for m in full}) == len(full)
    cands = {c.code: c for c in always.generate(note, ms)}
    assert cands["N20.0"].mention_ids[0] == 0
    assert "high blood pressure" in {full[i].text for i in cands["I10"].mention_ids}
    with pytest.raises(CandidatesError, match="phrases"):
        CandidatePipeline(phrases="sometimes")


def test_generator_config_round_trip_and_refusal(tmp_path: Path) -> None:
    from clinicode.models.candidates import load_config, save_config

    class Gen:
        PARAMS = ("top_k", "ngram_range")

        def __init__(self, top_k: int = 10, ngram_range: tuple[int, int] = (3, 3)) -> None:
            self.top_k = top_k
            self.ngram_range = tuple(ngram_range)

    g = Gen(top_k=7, ngram_range=(2, 4))
    g.systems_, g.versions_ = ["ICD-10-CM"], {"ICD-10-CM": "FY2026"}  # type: ignore[attr-defined]
    save_config(g, tmp_path, "toy", encoder="enc-a")
    back, cfg = load_config(Gen, tmp_path, "toy", encoder="enc-a")
    assert (back.top_k, back.ngram_range, back.versions_) == (7, (2, 4), g.versions_)  # type: ignore[attr-defined]
    assert cfg["encoder"] == "enc-a"
    with pytest.raises(CandidatesError, match=r"enc-a.*rebuild it"):
        load_config(Gen, tmp_path, "toy", encoder="enc-b")
