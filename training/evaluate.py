"""Evaluate a model pack on labeled notes (``clinicode evaluate``), through the scoring path.

Two orders of each note's codes are scored, side by side:

* ``ranker``: every candidate by the calibrated ranker's score, before the guidelines layer
  (:meth:`ScoringPath.ranker_order`). The CodiEsp figures in the README use it: CodiEsp's
  annotators also coded negated mentions and symptoms that the guidelines suppress.
* ``served``: exactly what ``Engine.suggest`` serves a coder, ``codes`` then ``candidates``
  then ``suppressed`` (:func:`clinicode.models.scoring.served_order`); its micro P/R/F1 are of
  ``codes``, the code set the engine suggests.

Training never imports ``clinicode.engine``: a pack is loaded with ``models.pack.load`` and run
through :class:`~clinicode.models.scoring.ScoringPath`, the same object the engine uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from clinicode.models.scoring import ScoringPath, served_order
from clinicode.training.data import LabeledNote, Task, task_systems
from clinicode.training.metrics import evaluate_rankings
from clinicode.training.train import progress_bar

if TYPE_CHECKING:
    from clinicode.kb import KnowledgeBase

Order = Literal["ranker", "served"]
ORDERS: tuple[Order, ...] = ("ranker", "served")

Ranked = dict[str, list[tuple[str, float]]]


def load_path(model_dir: Path | str | None = None, kb: KnowledgeBase | None = None) -> ScoringPath:
    """The scoring path of the pack in ``model_dir`` (default: the settings' default pack)."""
    from clinicode.errors import ClinicodeError
    from clinicode.kb import open_kb
    from clinicode.models import pack as pack_mod
    from clinicode.settings import get_settings

    d = Path(model_dir) if model_dir is not None else get_settings().default_pack_dir
    if not (d / pack_mod.MANIFEST).is_file():
        raise ClinicodeError(
            f"no model pack at {d}; run `clinicode setup` (or `make install`) to build the "
            "default pack, or pass --model DIR"
        )
    kb = kb or open_kb()
    return ScoringPath(pack_mod.load(d, kb=kb), kb)


def rank_notes(
    path: ScoringPath,
    notes: Sequence[LabeledNote],
    *,
    setting: str = "outpatient",
    batch: int = 32,
    progress: bool = True,
) -> tuple[Ranked, Ranked, dict[str, list[str]]]:
    """Both orders of every note's codes, and the codes the engine would suggest."""
    ranker: Ranked = {}
    served: Ranked = {}
    coded: dict[str, list[str]] = {}
    batches = range(0, len(notes), batch)
    for lo in progress_bar(batches, "scoring", len(batches), progress):
        chunk = list(notes[lo : lo + batch])
        texts = [n.text for n in chunk]
        mentions, _ = path.mentions(texts)
        scored = path.score(texts, mentions)
        results = path.suggest_many(texts, setting, scored=scored)
        for note, sc, res in zip(chunk, scored, results, strict=True):
            ranker[note.id] = sc.ranker_order()
            score_of = {
                f"{s.system}:{s.code}": s.score
                for g in (res.codes, res.candidates, res.suppressed)
                for s in g
            }
            served[note.id] = [(k, score_of[k]) for k in served_order(res)]
            coded[note.id] = [f"{s.system}:{s.code}" for s in res.codes]
    return ranker, served, coded


def evaluate_pack(
    path: ScoringPath,
    notes: Sequence[LabeledNote],
    task: Task,
    *,
    order: Order = "ranker",
    setting: str = "outpatient",
    predictions_out: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Figures of ``path``'s pack on ``notes`` for one task, in both orders.

    The top-level figures are those of ``order`` (and ``--predictions-out`` writes that order);
    ``orders`` holds both. MAP is over every gold document (no prediction = 0); ``map_official``
    drops predicted codes outside the valid list (the KB's codes plus the codes the pack was
    trained on) and averages the documents with predictions, as the CodiEsp script does.
    """
    check_order(order)
    ranked = rank_notes(path, notes, setting=setting, progress=progress)
    return evaluate_ranked(
        path, notes, task, ranked, order=order, setting=setting, predictions_out=predictions_out
    )


def check_order(order: str) -> None:
    if order not in ORDERS:
        from clinicode.errors import InputError

        raise InputError(f"--order must be ranker or served, not {order!r}")


def task_view(
    ranked: tuple[Ranked, Ranked, dict[str, list[str]]],
    task: Task,
    order: Order,
) -> tuple[Ranked, dict[str, list[str]] | None]:
    """One order's ranked ``(code, score)`` lists restricted to ``task``'s systems, and the
    coded sets its micro P/R/F1 are of (None: the codes scoring at least the threshold)."""
    systems = task_systems(task)
    ranker, served, coded = ranked
    chosen = ranker if order == "ranker" else served
    kept = {
        d: [(k, s) for k, s in pairs if k.split(":", 1)[0] in systems]
        for d, pairs in chosen.items()
    }
    if order == "ranker":
        return kept, None
    return kept, {d: [k for k in ks if k.split(":", 1)[0] in systems] for d, ks in coded.items()}


def evaluate_ranked(
    path: ScoringPath,
    notes: Sequence[LabeledNote],
    task: Task,
    ranked: tuple[Ranked, Ranked, dict[str, list[str]]],
    *,
    order: Order = "ranker",
    setting: str = "outpatient",
    predictions_out: Path | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_pack`'s figures from the output of :func:`rank_notes`."""
    check_order(order)
    systems = task_systems(task)
    gold = {n.id: n.codes_for(task) for n in notes}
    valid = _valid_codes(path, systems) or None
    figures = {}
    for o in ORDERS:
        scored, chosen = task_view(ranked, task, o)
        figures[o] = evaluate_rankings(gold, scored, path.pack.threshold, valid, chosen=chosen)
    result: dict[str, Any] = {
        "task": task,
        "model": path.info.model_dump(),
        "order": order,
        "setting": setting,
        **figures[order],
        "orders": figures,
    }
    gold_pairs = [c for codes in gold.values() for c in codes]
    if valid:
        result["gold_codes_not_in_code_set"] = sum(1 for c in gold_pairs if c not in valid)
    result["gold_codes"] = len(gold_pairs)
    result["notes_without_gold"] = sum(1 for codes in gold.values() if not codes)
    if predictions_out is not None:
        chosen_order, _ = task_view(ranked, task, order)
        write_predictions(
            predictions_out, [(n.id, [k for k, _ in chosen_order.get(n.id, [])]) for n in notes]
        )
        result["predictions_out"] = str(predictions_out)
    return result


def write_predictions(path: Path, ranked: Sequence[tuple[str, Sequence[str]]]) -> None:
    """CodiEsp's prediction format: ``doc<TAB>code`` per line, codes lower case, in order."""
    lines = [f"{doc}\t{key.split(':', 1)[1].lower()}" for doc, keys in ranked for key in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _valid_codes(path: ScoringPath, systems: Sequence[str]) -> set[str]:
    idx = path.kb.code_index()
    valid = {f"{s}:{c}" for (s, c) in idx.billable if s in systems}
    if path.pack.doc is not None:
        valid |= {k for k in path.pack.doc.classes_ if k.split(":", 1)[0] in systems}
    return valid


def compare_packs(
    model_dirs: Sequence[Path | str], notes: Sequence[LabeledNote], task: Task
) -> dict[str, dict[str, Any]]:
    """The same figures for several packs on the same notes, keyed by pack version."""
    from clinicode.kb import open_kb

    kb = open_kb()
    out: dict[str, dict[str, Any]] = {}
    for d in model_dirs:
        path = load_path(d, kb)
        out[f"{path.info.version} ({d})"] = evaluate_pack(path, notes, task, progress=False)
    return out
