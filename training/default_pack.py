"""The default model pack, built from public sources only (no labeled notes).

A fresh machine has no labeled notes, so the default ranker learns from synthetic notes written
from the code set itself: each one strings together a few KB terms (titles, inclusion terms,
index paths) of random billable codes in short clinical sentences, with realistic noise (lower case,
"unspecified"/"NOS" dropped, comma parts reordered, words dropped, abbreviations) and distractors
(negated and family-history terms). The ranker learns "is this code named in the note": the
distractors' codes are labels too and the ranker sees no assertion feature, since whether a
negated, family or historical mention is coded is the guidelines layer's call. The candidate
generators run on these notes exactly as on real ones; their pre-ranking weights are refitted
on the synthetic notes (the shipped ones come from labeled notes), and the GBDT ranker learns
which candidate features mean a code is named. There is no note classifier in this pack.

``ensure_default_pack(kb_path=...)`` builds it once (with progress bars) and returns at once
when a valid pack for the same code sets is already in place.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinicode.models.features import LOCAL_PREFIX as _LOCAL
from clinicode.models.features import TITLE_FEATURES as _TITLE
from clinicode.training.data import LabeledNote

DEFAULT_NAME = "clinicode-default"
# Bumped whenever the builder makes a different pack from the same KB and NLP rules (a new
# generator or feature): a pack from an older builder is rebuilt by ``clinicode setup``.
BUILDER_VERSION = 4  # 4: keeps the synthetic notes' training rows (``models.pack.TrainingRows``)
N_NOTES = 800
SEED = 13
MAX_GENERATED = 120

_TEMPLATES_PRESENT = (
    "The patient presented with {t}.",
    "Diagnosed with {t}.",
    "Assessment: {t}.",
    "{T} was confirmed.",
    "Findings were consistent with {t}.",
    "She was admitted for {t}.",
    "He has {t}.",
    "Known {t}, on treatment.",
    "Imaging showed {t}.",
    "{T}.",
)
_TEMPLATES_DISTRACTOR = (
    "No evidence of {t}.",
    "Denies {t}.",
    "Family history of {t} in his mother.",
    "{T} was ruled out.",
)
_FILLER = (
    "Vital signs were stable.",
    "Laboratory tests were requested.",
    "He was discharged home in good condition.",
    "Follow-up in the outpatient clinic was arranged.",
    "Physical examination was otherwise unremarkable.",
    "The patient gave informed consent.",
)
_ABBREV = {
    "hypertension": "HTN",
    "diabetes mellitus": "DM",
    "chronic obstructive pulmonary disease": "COPD",
    "myocardial infarction": "MI",
    "urinary tract infection": "UTI",
    "congestive heart failure": "CHF",
    "chronic kidney disease": "CKD",
}
# Features that describe how the synthetic notes were written rather than how codes are named
# in real notes (position, note length, how many codes and of what shape were sampled): the
# default ranker does not see them, so it cannot learn the generator's artifacts.
SYNTHETIC_ARTIFACTS = (
    "first_position",
    "n_candidates_log",
    "n_mentions",
    "n_mentions_log",
    "lex_n_mentions",
    "specificity",
    "code_length",
    "prior",
    "prior_log",
)
# How much of a code's title the note states (``models.features.title_features``): these raise
# trained packs (CodiEsp train out-of-fold MAP 0.417 -> 0.431) but not this one. Synthetic notes
# are short and name little else, so here title coverage separates the labels almost perfectly
# and the ranker leans on it; on CodiEsp train, R@50 rose (0.353 -> 0.374) and MAP fell
# (0.253 -> 0.249). So the default ranker does not see them.
TITLE_FEATURES = (*_TITLE, *(_LOCAL + n for n in _TITLE))
# More lexical / semantic / structural support can only raise a code's score.
MONOTONE_UP = {
    "lex_max": 1,
    "lex_mean": 1,
    "dense_max": 1,
    "exact": 1,
    "exact_as_written": 1,
    "concept_match": 1,
    "struct_score": 1,
}
# The ranker scores "is this code named in the note", not "should it be coded": whether a
# negated, family or historical mention is coded is the guidelines layer's call (and coding
# practice differs: some annotators code negated findings). So the synthetic labels include the
# distractors' codes and the ranker does not see the assertion of the best mention.
ASSERTION_FEATURES = (
    "any_present",
    "assert_present",
    "assert_negated",
    "assert_uncertain",
    "assert_historical",
    "assert_family",
    "assert_hypothetical",
)
# Features of the pre-ranking score (orders the candidates and caps them before the ranker):
# its weights are fitted on the synthetic notes too, so no weight in this pack comes from
# labeled notes (the pipeline's shipped weights were fitted on CodiEsp train).
PRE_RANK_FEATURES = (
    "lex_max",
    "lex_mean",
    "lex_rank_inv",
    "lex_src_title",
    "lex_src_inclusion",
    "lex_src_index",
    "dense_max",
    "dense_mean",
    "dense_rank_inv",
    "exact",
    "exact_as_written",
    "concept_match",
    "struct_score",
    "struct_parent",
    "struct_child",
    "struct_sibling",
    "struct_seventh",
    "struct_attr_agree",
    "struct_episode_stated",
    "src_lexical",
    "src_dense",
    "src_structure",
    "src_encoder",
    "n_sources",
    "enc_hit",
    "enc_index",
    "enc_first",
    "enc_cover",
    "enc_tabular",
    "enc_default",
    "enc_unspec",
)
# The pre-ranking score is a feature of its own in the full packs; here it would only repeat
# (as a linear sum) what the ranker sees, under a monotone constraint it does not deserve.
PRE_RANK_SCORE = ("gen_score", "gen_rank_inv")
_UNSPEC = re.compile(r",?\s*\b(unspecified|NOS|not elsewhere classified)\b", re.I)


def _noisy(term: str, rng: random.Random) -> str:
    t = _UNSPEC.sub("", term).strip(" ,")
    if "," in t and rng.random() < 0.5:
        head, *rest = [p.strip() for p in t.split(",") if p.strip()]
        t = " ".join([*rest, head]) if rng.random() < 0.5 else " ".join([head, *rest])
    words = t.split()
    if len(words) > 3 and rng.random() < 0.3:
        words.pop(rng.randrange(1, len(words)))
        t = " ".join(words)
    if rng.random() < 0.8:
        t = t.lower()
    for long, short in _ABBREV.items():
        if long in t.lower() and rng.random() < 0.3:
            t = re.sub(long, short, t, flags=re.I)
    return t or term


def synthetic_notes(kb: Any, n_notes: int = N_NOTES, seed: int = SEED) -> list[LabeledNote]:
    """Labeled pseudo-notes written from ICD-10-CM terms (deterministic for a seed)."""
    return [note for note, _ in synthetic_notes_named(kb, n_notes, seed)]


def synthetic_positives(pairs: Sequence[tuple[Any, Sequence[str]]]) -> list[set[str]]:
    """The gold codes of each synthetic note (its labels and the codes it names)."""
    return [
        {f"{s}:{c}" for s, c in note.codes} | {f"ICD-10-CM:{c}" for c in named}
        for note, named in pairs
    ]


def synthetic_rows(
    texts: Sequence[str],
    mentions: Any,
    generated: Any,
    positives: Sequence[set[str]],
    *,
    candidates: Any,
    kb: Any,
    systems: Sequence[str],
) -> Any:
    """Ranker rows of synthetic notes: no note classifier, so no priors or document tops."""
    from clinicode.training.rows import build_rows

    n = len(texts)
    return build_rows(
        texts,
        mentions,
        generated,
        positives,
        candidates=candidates,
        kb=kb,
        systems=tuple(systems),
        priors=[{}] * n,
        doc_tops=[[]] * n,
        doc_sims=[0.0] * n,
    )


def retrain_rows_source(kb: Any, n_notes: int, seed: int, max_generated: int) -> dict[str, Any]:
    """What the rows a retrain adds for the synthetic notes derive from (``TrainingRows.source``):
    a pack's kept rows are reused only when this is what they were built from (more notes are
    fine: the first ``n_notes`` are the same notes)."""
    from clinicode.schema import SYSTEMS

    return {
        "builder": BUILDER_VERSION,
        "kb_content": kb.content_fingerprint(),
        "nlp_resources": nlp_fingerprint(),
        "notes": n_notes,
        "seed": seed,
        "max_generated": max_generated,
        "systems": list(SYSTEMS),
    }


def retrain_rows(
    texts: Sequence[str],
    mentions: Any,
    generated: Any,
    positives: Sequence[set[str]],
    *,
    candidates: Any,
    kb: Any,
) -> Any:
    """The synthetic notes' rows a retrain on top of the default pack adds to the new notes'
    (``training.train.add_base_knowledge``): over every system the trained ranker scores."""
    from clinicode.schema import SYSTEMS

    return synthetic_rows(
        texts, mentions, generated, positives, candidates=candidates, kb=kb, systems=SYSTEMS
    )


def kept_rows(built: Any, source: dict[str, Any]) -> Any:
    """``built`` (``training.rows.Rows``) as the pack keeps it."""
    from clinicode.models.pack import TrainingRows

    return TrainingRows(
        feats=built.feats, keys=built.keys, y=built.y, groups=built.groups, source=source
    )


def synthetic_notes_named(
    kb: Any, n_notes: int = N_NOTES, seed: int = SEED
) -> list[tuple[LabeledNote, list[str]]]:
    """Synthetic notes with the codes of their distractors (named in the note, not asserted)."""
    rng = random.Random(seed)
    by_code: dict[str, list[str]] = {}
    for term in kb.iter_terms(["ICD-10-CM"], ["title", "inclusion", "index"]):
        if term.code[:1] in "VWXY":  # external causes read unlike clinical findings
            continue
        by_code.setdefault(term.code, []).append(term.text)
    # coders report billable codes (a category with subdivisions is never the final code), so
    # the synthetic labels are billable codes too
    billable = kb.code_index().billable
    codes = sorted(c for c in by_code if billable.get(("ICD-10-CM", c)))
    notes: list[tuple[LabeledNote, list[str]]] = []
    for i in range(n_notes):
        k = rng.randint(2, 7)
        # uniform over billable codes: drawing chapter, then category, then code (so injuries,
        # 63% of billable codes with their 7th characters, are not most labels) scored lower on
        # CodiEsp train (MAP 0.241 vs 0.253)
        chosen = rng.sample(codes, k)
        distract = rng.sample(codes, rng.randint(0, 2))
        sentences: list[tuple[str, str | None]] = []
        named: list[str] = []
        for code in chosen:
            t = _noisy(rng.choice(by_code[code]), rng)
            tpl = rng.choice(_TEMPLATES_PRESENT)
            sentences.append((tpl.format(t=t, T=t[:1].upper() + t[1:]), code))
        for code in distract:
            if code in chosen:
                continue
            named.append(code)
            t = _noisy(rng.choice(by_code[code]), rng)
            tpl = rng.choice(_TEMPLATES_DISTRACTOR)
            sentences.append((tpl.format(t=t, T=t[:1].upper() + t[1:]), None))
        sentences.extend((f, None) for f in rng.sample(_FILLER, rng.randint(0, 2)))
        rng.shuffle(sentences)
        text = " ".join(s for s, _ in sentences)
        note = LabeledNote(id=f"synthetic-{i}", text=text, codes=[("ICD-10-CM", c) for c in chosen])
        notes.append((note, named))
    return notes


def fit_pre_rank_weights(
    generated: Sequence[Sequence[Any]], positives: Sequence[set[str]], seed: int = SEED
) -> dict[str, float]:
    """Logistic-regression weights of "the code is named in the note" on merged candidate
    features of the synthetic notes (``positives``: ``system:code`` keys per note)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    seen = {f for cands in generated for c in cands for f in c.features}
    names = [n for n in PRE_RANK_FEATURES if n in seen]
    X = np.asarray(
        [[float(c.features.get(n, 0.0)) for n in names] for cands in generated for c in cands],
        dtype=np.float64,
    )
    y = np.asarray(
        [
            int(f"{c.system}:{c.code}" in pos)
            for cands, pos in zip(generated, positives, strict=True)
            for c in cands
        ]
    )
    if len(set(y.tolist())) < 2:
        raise ValueError("synthetic notes gave no positive or no negative candidate")
    lr = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(X, y)
    return {n: round(float(w), 4) for n, w in zip(names, lr.coef_[0], strict=True)}


def build_default_pack(
    kb: Any,
    out: Path,
    *,
    n_notes: int = N_NOTES,
    generators: Sequence[str] = ("lexical", "structure", "encoder"),
    progress: bool = True,
) -> dict[str, Any]:
    """Fit the candidate index on the KB and the ranker on synthetic notes; save to ``out``."""
    import time

    import numpy as np

    from clinicode.models import pack as pack_mod
    from clinicode.models.features import feature_names, vectorize
    from clinicode.models.ranker import GBDTRanker, expected_calibration_error, reliability
    from clinicode.training.data import fingerprint
    from clinicode.training.metrics import best_threshold, evaluate_rankings
    from clinicode.training.train import ensure_candidates, extract_mentions, generate_all

    t0 = time.perf_counter()
    generators = with_procedure_generators(kb, generators)
    candidates = ensure_candidates(kb, generators, progress)
    pairs = synthetic_notes_named(kb, n_notes)
    notes = [note for note, _ in pairs]
    texts = [n.text for n in notes]
    mentions = extract_mentions(texts, kb, progress)
    positives = synthetic_positives(pairs)
    # the shipped pre-ranking weights were fitted on labeled notes: refit them on these notes
    candidates.weights = None
    first = generate_all(candidates, texts, mentions, MAX_GENERATED, progress)
    # fitted on the diagnosis candidates: those of a procedure generator are merged apart
    dx_first = [[c for c in cands if c.system == "ICD-10-CM"] for cands in first]
    candidates.weights = fit_pre_rank_weights(dx_first, positives)
    generated = generate_all(candidates, texts, mentions, MAX_GENERATED, progress)
    built = synthetic_rows(
        texts, mentions, generated, positives, candidates=candidates, kb=kb, systems=("ICD-10-CM",)
    )
    # kept in the pack for `train --base`, which would otherwise write and read these notes again
    for_retrain = kept_rows(
        retrain_rows(texts, mentions, generated, positives, candidates=candidates, kb=kb),
        retrain_rows_source(kb, n_notes, SEED, MAX_GENERATED),
    )
    rows, y, groups = built.feats, built.y, built.groups
    names = [
        n
        for n in feature_names(rows)
        if n not in SYNTHETIC_ARTIFACTS
        and n not in TITLE_FEATURES
        and n not in ASSERTION_FEATURES
        and n not in PRE_RANK_SCORE
        and not n.startswith(("section_", "doc_", "has_doc"))
    ]
    ranker = GBDTRanker(random_state=SEED, feature_names=names, monotonic=MONOTONE_UP).fit(
        vectorize(rows, names), np.asarray(y), groups=np.asarray(groups)
    )
    systems, pack_names, pack_ranker = procedure_route(generators, names, ranker)
    scored = built.rankings([n.id for n in notes], ranker.oof_calibrated_)
    gold_all = {n.id: sorted(pos) for n, pos in zip(notes, positives, strict=True)}
    threshold, _ = best_threshold(gold_all, scored)
    yarr = np.asarray(y)
    metrics = {
        "synthetic_oof": evaluate_rankings(gold_all, scored, threshold),
        "threshold_source": "synthetic-note out-of-fold micro F1 (no labeled notes used)",
    }
    fp = fingerprint(notes)
    pack = pack_mod.ModelPack(
        name=DEFAULT_NAME,
        version=f"{DEFAULT_NAME}-{fp[7:19]}",
        config={
            "feature_names": pack_names,
            "systems": systems,
            "doc_top_n": 0,
            "max_generated": MAX_GENERATED,
            "generators": list(generators),
            "synthetic_notes": n_notes,
            "seed": SEED,
            "pre_rank_weights": "fitted on the synthetic notes",
            "builder": BUILDER_VERSION,
            "kb_content": kb.content_fingerprint(),
            "nlp_resources": nlp_fingerprint(),
        },
        ranker=pack_ranker,
        prior={},
        threshold=threshold,
        doc=None,
        candidates=candidates,
        code_sets=kb.versions(),
        data_fingerprint="synthetic:" + fp,
        training_rows=for_retrain,
        metrics=metrics,
        report={
            "source": "KB terms only (titles, inclusion and index terms); no labeled notes",
            "notes": len(notes),
            "rows": len(y),
            "calibration": {
                "source": "out-of-fold on synthetic notes",
                "ece": expected_calibration_error(ranker.oof_calibrated_, yarr),
                "reliability": reliability(ranker.oof_calibrated_, yarr),
            },
            "build_s": time.perf_counter() - t0,
        },
    )
    pack_mod.save(pack, out)
    return pack.report


def with_procedure_generators(kb: Any, generators: Sequence[str]) -> tuple[str, ...]:
    """``generators`` plus the ICD-10-PCS generator when the KB holds ICD-10-PCS: the pack's
    systems follow what the KB has loaded."""
    gens = tuple(generators)
    if "ICD-10-PCS" in kb.versions() and "pcs" not in gens:
        gens += ("pcs",)
    return gens


def procedure_route(
    generators: Sequence[str], names: list[str], ranker: Any
) -> tuple[list[str], list[str], Any]:
    """The pack's systems, feature names and ranker: with the PCS generator, its rows take the
    generator's own confidence (``models.ranker.RoutedRanker``; this pack has no labeled
    procedure notes to learn from) and the diagnosis rows the learned ranker, unchanged."""
    if "pcs" not in generators:
        return ["ICD-10-CM"], names, ranker
    from clinicode.models.ranker import RoutedRanker

    n = len(names)
    routed = RoutedRanker(ranker, n_base=n, route=n, score=n + 1)
    return ["ICD-10-CM", "ICD-10-PCS"], [*names, "pcs_hit", "pcs_score"], routed


# The NLP data files the mentions read: the synthetic notes' mentions, and so the default pack,
# depend on them (``demographics.json`` only informs the guidelines layer's edits).
NLP_RESOURCE_FILES = (
    "sections.json",
    "abbreviations.json",
    "synonyms.json",
    "context_rules.json",
    "cues.json",
    "attributes.json",
    "words.json",
)


def nlp_fingerprint() -> str:
    """A hash of :data:`NLP_RESOURCE_FILES`."""
    from clinicode.nlp.resources import resources_hash

    return resources_hash(NLP_RESOURCE_FILES)


def stale_reason(config: dict[str, Any], kb: Any) -> str | None:
    """Why a default pack built with ``config`` must be rebuilt for ``kb`` (None: it is current)."""
    if config.get("builder") != BUILDER_VERSION:
        return "the default pack builder changed (a new clinicode release) since it was built"
    if config.get("kb_content") != kb.content_fingerprint():
        return "the KB's terms changed (an imported index or table) since it was built"
    if config.get("nlp_resources") != nlp_fingerprint():
        return "the NLP rules changed (a new clinicode release) since it was built"
    return None


def ensure_default_pack(
    kb_path: Path | None = None,
    *,
    out: Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Build the default pack unless a valid one for these code sets is already in place."""
    from rich.console import Console

    from clinicode.kb import open_kb
    from clinicode.models import pack as pack_mod
    from clinicode.settings import get_settings

    console = Console(stderr=True)
    kb = open_kb(kb_path)
    target = out or get_settings().default_pack_dir
    if not force and (target / pack_mod.MANIFEST).is_file():
        try:
            manifest = pack_mod.verify(target, code_sets=kb.versions())
            config = json.loads((target / pack_mod.CONFIG).read_text("utf-8"))
            stale = stale_reason(config, kb)
            if stale is None:
                console.print(f"default model pack {manifest['version']} is up to date ({target})")
                return target
            console.print(f"[yellow]rebuilding the default model pack:[/] {stale}")
        except pack_mod.PackError as exc:
            console.print(f"[yellow]rebuilding the default model pack:[/] {exc}")
    console.print("building the default model pack from the code set (first run only) ...")
    report = build_default_pack(kb, target, progress=progress)
    console.print(f"default model pack ready in {report['build_s']:.0f} s ({target})")
    return target
