"""Train a model pack from labeled notes, and score labeled notes with a pack.

Training (seeded, deterministic for a given machine):

1. mentions of every note (``clinicode.nlp``), candidates from the KB index (``models.candidates``);
2. note classifier scores *out of fold* on the training notes (cross-fitting: the classifier that
   scores a note never saw it), so the ranker learns how much to trust them on unseen notes;
3. the GBDT ranker on (note, candidate) rows, calibrated on out-of-fold scores;
4. the final note classifier on all training notes; the decision threshold on ``dev`` notes when
   given (best micro F1; say "tuned on dev" when reporting dev), else on the out-of-fold scores.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clinicode.models.candidate_rows import doc_top_lists, evidence_mentions
from clinicode.models.scoring import ScoringPath
from clinicode.schema import SYSTEMS, Mention
from clinicode.training.data import LabeledNote, Task, fingerprint, task_systems
from clinicode.training.metrics import best_threshold, evaluate_rankings
from clinicode.training.rows import Rows, build_rows

if TYPE_CHECKING:
    from clinicode.kb import KnowledgeBase
    from clinicode.models.pack import ModelPack

DEFAULT_GENERATORS: tuple[str, ...] = ("lexical", "structure", "encoder")


@dataclass
class TrainConfig:
    """Training settings. The defaults were chosen by out-of-fold MAP on CodiEsp *train*
    (5-fold cross-fitting), not on dev: top-150 classifier codes, ridge alpha 0.03, 300 trees."""

    seed: int = 0
    n_folds: int = 5
    doc_top_n: int = 150
    max_generated: int = 120
    generators: tuple[str, ...] = DEFAULT_GENERATORS
    doc_alpha: float = 0.03
    doc_k: int = 30
    doc_power: float = 3.0
    ranker_max_iter: int = 300
    ranker_learning_rate: float = 0.05
    ranker_folds: int = 3
    name: str = "clinicode-trained"
    # ranker features left out (e.g. ``models.features.TITLE_FEATURES``, to measure what they add)
    drop_features: tuple[str, ...] = ()
    # with a base pack built from synthetic notes: the rows of how many of them to add next to
    # the new notes (None: as many as the base was built with)
    base_notes: int | None = None
    # with the PCS generator: the procedure positives below which procedure rows keep the
    # generator's confidence instead of a ranker of their own (``models.ranker.TaskRanker``;
    # about 10 per out-of-fold split: fewer gives the isotonic map next to nothing to fit)
    procedure_min_positives: int = 30
    # with a base pack's training rows: how much each of them counts next to a new note's row
    base_weight: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


def progress_bar(iterable: Any, desc: str, total: int | None = None, enabled: bool = True) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=not enabled, leave=False)


# -- inputs shared by every stage ------------------------------------------------------------
def extract_mentions(
    texts: Sequence[str], kb: KnowledgeBase, progress: bool = True
) -> list[list[Mention]]:
    """The mentions candidates are generated from (the scoring path's NLP stage; the note's
    phrases where it finds none or the NLP pipeline is absent)."""
    try:
        from clinicode.nlp import load_pipeline

        nlp: Any = load_pipeline(kb)
    except ImportError:
        nlp = None
    found = [
        nlp.extract(t) if nlp is not None else []
        for t in progress_bar(texts, "mentions", len(texts), progress)
    ]
    return evidence_mentions(texts, found)


def candidate_cache_dir(kb: Any, generators: Sequence[str]) -> Path:
    from clinicode.settings import get_settings

    # keyed by the KB's content, not only its versions: importing the Alphabetic Index keeps
    # the versions but adds terms the index must contain
    content = kb.content_fingerprint()
    key = hashlib.sha256(f"{content}|{','.join(generators)}".encode()).hexdigest()[:12]
    return get_settings().data_dir / "cache" / "candidates" / key


def ensure_candidates(kb: Any, generators: Sequence[str], progress: bool = True) -> Any:
    """The candidate pipeline over the KB, fitted once and cached under the data dir."""
    from clinicode.models.candidates import CandidatePipeline

    cache = candidate_cache_dir(kb, generators)
    if (cache / "candidates.json").is_file():
        try:
            return CandidatePipeline.load(cache, kb=kb)
        except Exception:  # a damaged cache is rebuilt
            pass
    pipe = CandidatePipeline(tuple(generators)).fit(kb, progress=progress)
    pipe.save(cache)
    return CandidatePipeline.load(cache, kb=kb)


def generate_all(
    candidates: Any,
    texts: Sequence[str],
    mentions: Sequence[list[Mention]],
    max_generated: int,
    progress: bool = True,
) -> list[list[Any]]:
    if candidates is None:
        return [[] for _ in texts]
    return [
        candidates.generate(t, list(m), max_candidates=max_generated)
        for t, m in progress_bar(
            list(zip(texts, mentions, strict=True)), "candidates", len(texts), progress
        )
    ]


def code_prior(labels: Sequence[Sequence[str]]) -> dict[str, float]:
    n = max(len(labels), 1)
    counts = Counter(c for codes in labels for c in set(codes))
    return {c: k / n for c, k in counts.items()}


# -- training -------------------------------------------------------------------------------
@dataclass
class Prepared:
    notes: list[LabeledNote]
    mentions: list[list[Mention]]
    generated: list[list[Any]]


def prepare(
    notes: Sequence[LabeledNote], kb: Any, candidates: Any, cfg: TrainConfig, progress: bool
) -> Prepared:
    texts = [n.text for n in notes]
    mentions = extract_mentions(texts, kb, progress)
    generated = generate_all(candidates, texts, mentions, cfg.max_generated, progress)
    return Prepared(list(notes), mentions, generated)


def labels_of(note: LabeledNote) -> list[str]:
    return [f"{s}:{c}" for s, c in note.codes]


def train_pack(
    train_notes: Sequence[LabeledNote],
    *,
    kb: Any,
    out: Path | str,
    dev_notes: Sequence[LabeledNote] | None = None,
    base: Path | str | None = None,
    cfg: TrainConfig | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """Train, save a pack to ``out`` and return the training report."""
    from sklearn.model_selection import KFold

    from clinicode.models import pack as pack_mod
    from clinicode.models.doc_classifier import DocClassifier
    from clinicode.models.features import feature_names, vectorize
    from clinicode.models.ranker import expected_calibration_error, reliability

    cfg = cfg or TrainConfig()
    t_start = time.perf_counter()
    np.random.seed(cfg.seed)
    notes = [n for n in train_notes if n.codes]
    if len(notes) < max(cfg.n_folds, 2):
        from clinicode.errors import InputError

        raise InputError(f"need at least {max(cfg.n_folds, 2)} labeled notes, got {len(notes)}")
    timings: dict[str, float] = {}

    t = time.perf_counter()
    base_pack = None
    if base is not None:
        base_pack = pack_mod.load(base, kb=kb, training_rows=True)
        check_code_sets(train_notes, base_pack.code_sets, str(base))
        candidates = base_pack.candidates
        log(f"candidate index from base pack {base}")
    elif cfg.generators:
        candidates = ensure_candidates(kb, cfg.generators, progress)
    else:
        candidates = None
    timings["candidate_index_s"] = time.perf_counter() - t

    t = time.perf_counter()
    prep = prepare(notes, kb, candidates, cfg, progress)
    timings["mentions_candidates_s"] = time.perf_counter() - t

    # out-of-fold note-classifier scores and priors
    t = time.perf_counter()
    labels = [labels_of(n) for n in notes]
    texts = [n.text for n in notes]
    oof_top: list[Any] = [None] * len(notes)
    oof_sim: list[float] = [0.0] * len(notes)
    oof_prior: list[dict[str, float]] = [{}] * len(notes)
    folds = KFold(n_splits=cfg.n_folds, shuffle=True, random_state=cfg.seed)
    for tr, te in progress_bar(
        list(folds.split(texts)), "note classifier folds", cfg.n_folds, progress
    ):
        doc = DocClassifier(alpha=cfg.doc_alpha, k=cfg.doc_k, power=cfg.doc_power)
        doc.fit([texts[i] for i in tr], [labels[i] for i in tr])
        tops, sims = doc_top_lists(doc, [texts[i] for i in te], cfg.doc_top_n)
        prior = code_prior([labels[i] for i in tr])
        for j, i in enumerate(te):
            oof_top[i], oof_sim[i], oof_prior[i] = tops[j], sims[j], prior
    timings["doc_oof_s"] = time.perf_counter() - t

    t = time.perf_counter()
    built = build_rows(
        texts,
        prep.mentions,
        prep.generated,
        [set(ls) for ls in labels],
        candidates=candidates,
        kb=kb,
        systems=SYSTEMS,
        priors=oof_prior,
        doc_tops=oof_top,
        doc_sims=oof_sim,
        rejected=[{f"{s}:{c}" for s, c in n.rejected} for n in notes],
        unreviewed=[{f"{s}:{c}" for s, c in n.unreviewed} for n in notes],
    )
    if base_pack is not None:
        built = add_base_knowledge(built, base_pack, kb, candidates, cfg, progress, log)
    rows, y, groups = built.feats, built.y, built.groups
    names = [n for n in feature_names(rows) if n not in cfg.drop_features]
    X = vectorize(rows, names)
    weights = None
    if built.base_rows and cfg.base_weight != 1.0:  # the base pack's rows come last
        weights = np.ones(len(y))
        weights[len(y) - built.base_rows :] = cfg.base_weight
    ranker = make_ranker(cfg, names, generators_of(base_pack, cfg, candidates)).fit(
        X, np.asarray(y), groups=np.asarray(groups), sample_weight=weights
    )
    timings["ranker_s"] = time.perf_counter() - t
    yarr = np.asarray(y)
    calib = {
        "source": "out-of-fold on the training notes: the data the isotonic map was fitted on, "
        "so this table is optimistic; see 'dev' for held-out reliability",
        "ece": expected_calibration_error(ranker.oof_calibrated_, yarr),
        "reliability": reliability(ranker.oof_calibrated_, yarr),
    }
    n_new = len(y) - built.base_rows  # the new notes' rows come first
    cand_recall = sum(y[:n_new]) / max(sum(len(set(ls)) for ls in labels), 1)

    t = time.perf_counter()
    doc_final = DocClassifier(alpha=cfg.doc_alpha, k=cfg.doc_k, power=cfg.doc_power).fit(
        texts, labels
    )
    prior_final = code_prior(labels)
    timings["doc_final_s"] = time.perf_counter() - t

    # threshold: dev when given (tuned on dev), else out-of-fold on train
    report_metrics: dict[str, Any] = {}
    threshold_source = "train out-of-fold micro F1"
    oof_scored = built.rankings([n.id for n in notes], ranker.oof_calibrated_)
    gold_train = {n.id: labels_of(n) for n in notes}
    threshold, _ = best_threshold(gold_train, oof_scored)
    report_metrics["train_oof"] = evaluate_rankings(gold_train, oof_scored, threshold)

    pack = pack_mod.ModelPack(
        name=cfg.name,
        version="",
        config={
            "feature_names": names,
            "systems": list(SYSTEMS),
            "doc_top_n": cfg.doc_top_n,
            "max_generated": cfg.max_generated,
            "generators": generators_of(base_pack, cfg, candidates),
            "train_config": {k: v for k, v in cfg.__dict__.items() if k != "extra"},
        },
        ranker=ranker,
        prior=prior_final,
        threshold=threshold,
        doc=doc_final,
        candidates=candidates,
        code_sets=dict(base_pack.code_sets) if base_pack is not None else kb.versions(),
        data_fingerprint=fingerprint(list(train_notes)),
        lineage=lineage(base_pack, Path(base) if base is not None else None, notes, built),
    )
    if dev_notes:
        dev_scored = score_notes(pack, dev_notes, kb, progress=progress)
        gold_dev = {n.id: labels_of(n) for n in dev_notes}
        threshold, _ = best_threshold(gold_dev, dev_scored)
        pack.threshold = threshold
        threshold_source = "dev micro F1 (dev figures are tuned on dev)"
        for task in ("D", "P"):
            report_metrics[f"dev_{task}"] = task_metrics(dev_notes, dev_scored, task, threshold)
        dev_p = np.asarray([s for d in dev_scored.values() for _, s in d])
        dev_y = np.asarray(
            [int(k in set(gold_dev[n])) for n, d in dev_scored.items() for k, _ in d]
        )
        calib["dev"] = {
            "source": "dev notes (held out from training; the threshold, not the map, is tuned there)",
            "ece": expected_calibration_error(dev_p, dev_y),
            "reliability": reliability(dev_p, dev_y),
        }
    report_metrics["threshold_source"] = threshold_source
    fp = fingerprint(list(train_notes))
    pack.version = f"{cfg.name}-{fp[7:19]}-s{cfg.seed}"
    pack.metrics = report_metrics
    timings["total_s"] = time.perf_counter() - t_start
    pack.report = {
        "notes": len(notes),
        "labels": len(doc_final.classes_),
        "rows": len(y),
        "explicit_negative_rows": built.explicit_negatives,
        "base_knowledge_rows": built.base_rows,
        "unreviewed_rows_dropped": built.unlabeled_dropped,
        "candidate_recall_train": cand_recall,
        "calibration": calib,
        "timings": timings,
        "metrics": report_metrics,
    }
    pack_mod.save(pack, out)
    return pack.report


def make_ranker(cfg: TrainConfig, names: list[str], generators: Sequence[str]) -> Any:
    """The GBDT ranker; with the ICD-10-PCS generator in the candidate index (a pack retrained
    on a default pack that codes procedures), a :class:`~clinicode.models.ranker.TaskRanker`:
    its own trees for procedure rows, with the generator's confidence as a feature, and that
    confidence itself where the notes hold too few procedure labels to learn from."""
    from clinicode.models.ranker import GBDTRanker, TaskRanker

    def gbdt() -> GBDTRanker:
        return GBDTRanker(
            max_iter=cfg.ranker_max_iter,
            learning_rate=cfg.ranker_learning_rate,
            n_folds=cfg.ranker_folds,
            random_state=cfg.seed,
            feature_names=names,
        )

    if "pcs" not in generators or "is_dx" not in names:
        return gbdt()
    pcs = {n: names.index(n) for n in ("pcs_hit", "pcs_score") if n in names}
    return TaskRanker(
        gbdt(),
        gbdt(),
        route=names.index("is_dx"),
        hit=pcs.get("pcs_hit"),
        score=pcs.get("pcs_score"),
        min_positives=cfg.procedure_min_positives,
    )


def add_base_knowledge(
    built: Any,
    base: ModelPack,
    kb: Any,
    candidates: Any,
    cfg: TrainConfig,
    progress: bool,
    log: Callable[[str], None],
) -> Any:
    """The base pack's own training rows next to the new notes' so the refitted ranker keeps
    what the base knew. A default pack's training data are synthetic notes written from the
    code set (``training.default_pack``), labeled as that builder labels them, with no
    note-classifier or prior support (codes the new notes never show still score by how the
    note names them): the pack keeps their rows (``ModelPack.training_rows``), which are used
    when they were built from what the notes would be built from now (same KB content, NLP
    rules, builder, seed and candidate cap), else the notes are written and read again. A pack
    trained on labeled notes does not carry them: only its candidate index and code sets are
    kept."""
    n_synth = base.config.get("synthetic_notes")
    if n_synth and cfg.base_notes is not None:
        n_synth = min(int(n_synth), cfg.base_notes)
    if not str(base.data_fingerprint or "").startswith("synthetic:") or not n_synth:
        return built
    synth, how = synthetic_base_rows(base, kb, candidates, int(n_synth), cfg, progress)
    n = len(set(synth.groups))
    offset = max(built.groups, default=-1) + 1
    built.feats.extend(synth.feats)
    built.keys.extend(synth.keys)
    built.y.extend(synth.y)
    built.groups.extend(g + offset for g in synth.groups)
    built.base_rows = len(synth.y)
    log(f"base pack knowledge: {n} synthetic notes, {len(synth.y)} rows ({how})")
    return built


def synthetic_base_rows(
    base: ModelPack, kb: Any, candidates: Any, n_notes: int, cfg: TrainConfig, progress: bool
) -> tuple[Any, str]:
    """The rows of the first ``n_notes`` synthetic notes of a default pack, and where they came
    from: the pack's kept rows when their source matches, else built again."""
    from clinicode.training import default_pack

    seed = int(base.config.get("seed", default_pack.SEED))
    want = default_pack.retrain_rows_source(kb, n_notes, seed, cfg.max_generated)
    kept = base.training_rows
    if kept is not None and kept.source == {**want, "notes": kept.source.get("notes")}:
        if int(kept.source["notes"]) >= n_notes:
            return first_notes(kept, n_notes), "kept in the base pack"
    pairs = default_pack.synthetic_notes_named(kb, n_notes, seed)
    texts = [note.text for note, _ in pairs]
    mentions = extract_mentions(texts, kb, progress)
    generated = generate_all(candidates, texts, mentions, cfg.max_generated, progress)
    positives = default_pack.synthetic_positives(pairs)
    rows = default_pack.retrain_rows(
        texts, mentions, generated, positives, candidates=candidates, kb=kb
    )
    return rows, "written and read again: the base pack keeps none built from this KB and NLP"


def first_notes(kept: Any, n_notes: int) -> Rows:
    """The rows of the first ``n_notes`` notes (groups 0..n_notes-1) of kept training rows."""
    end = int(np.searchsorted(np.asarray(kept.groups), n_notes, side="left"))
    return Rows(
        feats=kept.feats[:end], keys=kept.keys[:end], y=kept.y[:end], groups=kept.groups[:end]
    )


def generators_of(base: ModelPack | None, cfg: TrainConfig, candidates: Any) -> list[str]:
    """The candidate generators the pack's index holds (the base pack's when it gave it)."""
    if base is not None:
        return list(base.config.get("generators") or [])
    return list(cfg.generators) if candidates is not None else []


def check_code_sets(
    notes: Sequence[LabeledNote], pack_code_sets: dict[str, str], where: str
) -> None:
    """Refuse notes coded with another code-set version than the base pack's (an export made
    on another release): their codes and the pack's code sets would not agree."""
    from clinicode.errors import InputError

    for note in notes:
        for system, version in note.code_sets.items():
            have = pack_code_sets.get(system)
            if have is not None and version != have:
                raise InputError(
                    f"note {note.id!r} was coded with {system} {version} but the base pack "
                    f"{where} is built on {system} {have}: export the decisions made on "
                    f"{have}, or retrain from a base pack built on {version}"
                )


def lineage(
    base: ModelPack | None, base_dir: Path | None, notes: Sequence[LabeledNote], rows: Any
) -> dict[str, Any]:
    """The manifest's record of where a pack comes from: its parent pack (name, version, the
    hash of its manifest, its own training data) and a summary of the notes added."""
    from clinicode.hashing import sha256_file

    summary = {
        "notes": len(notes),
        "codes": sum(len(n.codes) for n in notes),
        "rejected": sum(len(n.rejected) for n in notes),
        "unreviewed": sum(len(n.unreviewed) for n in notes),
        "reviewed_notes": sum(1 for n in notes if n.code_sets or n.rejected or n.unreviewed),
        "explicit_negative_rows": int(rows.explicit_negatives),
        "unreviewed_rows_dropped": int(rows.unlabeled_dropped),
        "fingerprint": fingerprint(list(notes)),
    }
    out: dict[str, Any] = {"training_data": summary, "parent": None}
    if base is not None and base_dir is not None:
        out["parent"] = {
            "name": base.name,
            "version": base.version,
            "manifest_sha256": sha256_file(base_dir / "manifest.json"),
            "training_data": base.data_fingerprint,
            "lineage": base.manifest.get("lineage"),
        }
    return out


def score_notes(
    pack: ModelPack,
    notes: Sequence[LabeledNote],
    kb: KnowledgeBase,
    *,
    progress: bool = True,
    batch: int = 32,
) -> dict[str, list[tuple[str, float]]]:
    """``{note id: [(system:code, calibrated score), ...]}`` in the ranker's order, through the
    scoring path (:meth:`ScoringPath.ranker_order`)."""
    path = ScoringPath(pack, kb)
    out: dict[str, list[tuple[str, float]]] = {}
    for lo in progress_bar(
        range(0, len(notes), batch), "scoring", (len(notes) + batch - 1) // batch, progress
    ):
        chunk = notes[lo : lo + batch]
        for note, ranked in zip(chunk, path.ranker_order([n.text for n in chunk]), strict=True):
            out[note.id] = ranked
    return out


def task_metrics(
    notes: Sequence[LabeledNote],
    scored: dict[str, list[tuple[str, float]]],
    task: Task,
    threshold: float,
) -> dict[str, float]:
    systems = task_systems(task)
    gold = {n.id: n.codes_for(task) for n in notes}
    per_task = {
        d: [(k, s) for k, s in pairs if k.split(":", 1)[0] in systems]
        for d, pairs in scored.items()
    }
    return evaluate_rankings(gold, per_task, threshold)
