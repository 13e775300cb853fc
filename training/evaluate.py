"""Evaluate a loaded engine's pack on labeled notes (``clinicode evaluate``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinicode.training.data import LabeledNote, Task, task_systems
from clinicode.training.metrics import evaluate_rankings


def evaluate_pack(
    engine: Any,
    notes: Sequence[LabeledNote],
    task: Task,
    *,
    predictions_out: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Figures of ``engine``'s pack on ``notes`` for one task, ranked by the calibrated ranker.

    MAP is over every gold document (no prediction = 0); ``map_official`` drops predicted codes
    outside the valid list (the KB's codes plus the codes the pack was trained on) and averages
    the documents with predictions, as the CodiEsp script (trec_eval) does.
    """
    from clinicode.training.train import score_notes

    systems = task_systems(task)
    # score every system the pack knows (as the engine does), then keep this task's codes
    scored_all = score_notes(engine.pack, notes, engine.kb, progress=progress)
    scored = {
        d: [(k, s) for k, s in pairs if k.split(":", 1)[0] in systems]
        for d, pairs in scored_all.items()
    }
    gold = {n.id: n.codes_for(task) for n in notes}
    idx_codes = _valid_codes(engine, systems)
    result: dict[str, Any] = {
        "task": task,
        "model": engine.info.model_dump(),
        **evaluate_rankings(gold, scored, engine.pack.threshold, idx_codes or None),
    }
    gold_pairs = [c for codes in gold.values() for c in codes]
    if idx_codes:
        missing = [c for c in gold_pairs if c not in idx_codes]
        result["gold_codes_not_in_code_set"] = len(missing)
    result["gold_codes"] = len(gold_pairs)
    result["notes_without_gold"] = sum(1 for codes in gold.values() if not codes)
    if predictions_out is not None:
        lines = []
        for n in notes:
            for key, _ in scored.get(n.id, []):
                lines.append(f"{n.id}\t{key.split(':', 1)[1].lower()}")
        predictions_out.parent.mkdir(parents=True, exist_ok=True)
        predictions_out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result["predictions_out"] = str(predictions_out)
    return result


def _valid_codes(engine: Any, systems: Sequence[str]) -> set[str]:
    from clinicode.engine import kb_index

    idx = kb_index(engine.kb)
    valid = {f"{s}:{c}" for (s, c) in idx.billable if s in systems}
    if engine.pack.doc is not None:
        valid |= {k for k in engine.pack.doc.classes_ if k.split(":", 1)[0] in systems}
    return valid


def compare_packs(
    model_dirs: Sequence[Path | str], notes: Sequence[LabeledNote], task: Task
) -> dict[str, dict[str, Any]]:
    """The same figures for several packs on the same notes, keyed by pack version."""
    from clinicode.engine import load

    out: dict[str, dict[str, Any]] = {}
    for d in model_dirs:
        engine = load(d)
        res = evaluate_pack(engine, notes, task, progress=False)
        out[f"{engine.info.version} ({d})"] = res
    return out
