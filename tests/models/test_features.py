"""Ranker feature rows: title coverage by the note and by the text around the mentions."""

from __future__ import annotations

from clinicode.models.features import NoteCandidates, collect, note_stems, title_features
from clinicode.models.types import Candidate


def test_title_coverage_ignores_filler_words_and_reads_without() -> None:
    stems = note_stems("Gross hematuria and a fistula. Lymph nodes were enlarged.")
    assert title_features("Hematuria, unspecified", stems)["title_cover"] == 1.0
    assert title_features("Enlarged lymph nodes, unspecified", stems)["title_missing"] == 0.0
    lateral = title_features("Fistula, left hand", stems)
    assert lateral["title_cover"] == 1 / 3 and lateral["title_missing"] == 2.0
    # the note states what the title excludes: a contradiction, whatever else matches
    contra = title_features("Cystitis, unspecified without hematuria", stems)
    assert contra["title_excluded_stated"] == 1.0 and contra["title_cover"] == 0.0
    fine = title_features("Umbilical hernia without obstruction or gangrene", note_stems("hernia"))
    assert fine["title_excluded_stated"] == 0.0 and fine["title_missing"] == 1.0


def _collect(
    cands: list[Candidate],
    text: str,
    titles: dict[str, str],
    spans: list[tuple[int, int]],
    needed: list[str] | None = None,
) -> NoteCandidates:
    """``collect`` of generated candidates only, every code known and billable."""
    return collect(
        [],
        {},
        0.0,
        cands,
        prior={},
        kb_info=lambda s, c: (True, True),
        systems=("ICD-10-CM",),
        note_text=text,
        title_of=lambda s, c: titles.get(c),
        mention_spans=spans,
        needed=needed,
    )


def test_collect_adds_note_and_local_title_features() -> None:
    text = "Hematuria since May. " + "Unrelated words here. " * 10 + "Old fistula of the hand."
    spans = [(0, 9), (len(text) - 21, len(text) - 14)]
    cands = [
        Candidate(system="ICD-10-CM", code="R31.9", mention_ids=[0], features={"lex_max": 1.0}),
        Candidate(system="ICD-10-CM", code="N30.90", mention_ids=[0], features={"lex_max": 0.5}),
    ]
    titles = {"R31.9": "Hematuria, unspecified", "N30.90": "Cystitis without hematuria"}
    nc = _collect(cands, text, titles, spans)
    rows = dict(zip(nc.keys, nc.feats, strict=True))
    assert rows["ICD-10-CM:R31.9"]["local_title_cover"] == 1.0
    assert rows["ICD-10-CM:N30.90"]["title_excluded_stated"] == 1.0
    assert rows["ICD-10-CM:N30.90"]["local_title_cover"] == 0.0
    # without the note text nothing is added (old callers, packs without these features)
    bare = collect([], {}, 0.0, cands, prior={}, kb_info=lambda s, c: None, systems=("ICD-10-CM",))
    assert not any(k.startswith(("title_", "local_")) for f in bare.feats for k in f)


def test_collect_limited_to_the_rankers_features_gives_the_same_ranker_input() -> None:
    """At inference the rows hold only what the pack's ranker reads (plus the base features
    that explain a code): the ranker's matrix is the same, the rest is never computed."""
    from clinicode.models.features import BASE_FEATURES, vectorize

    text = "Hematuria since May. Old fistula of the hand."
    cands = [
        Candidate(
            system="ICD-10-CM",
            code="R31.9",
            mention_ids=[0],
            features={"lex_max": 1.0, "struct_score": 0.4, "first_position": 0.0},
        ),
        Candidate(system="ICD-10-CM", code="L98.8", mention_ids=[1], features={"lex_max": 0.5}),
    ]
    titles = {"R31.9": "Hematuria, unspecified", "L98.8": "Other disorders of skin"}

    def rows(needed: list[str] | None) -> list[dict[str, float]]:
        return _collect(cands, text, titles, [(0, 9), (25, 32)], needed).feats

    for needed in (["lex_max", "in_kb"], ["lex_max", "title_cover"], ["local_title_cover"]):
        full, limited = rows(None), rows(needed)
        assert (vectorize(full, needed) == vectorize(limited, needed)).all()
        extra = {k for f in limited for k in f} - set(needed) - set(BASE_FEATURES)
        # a title feature comes with its two siblings (one computation)
        siblings = {"title_missing", "title_excluded_stated"}
        assert extra <= siblings | {"local_" + n for n in siblings}
    assert all("title_cover" not in f and "struct_score" not in f for f in rows(["lex_max"]))
    assert all("has_gen" in f for f in rows(["lex_max"]))  # explanations read it
