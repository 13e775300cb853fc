"""The data scientist's loop, end to end through the service's HTTP API.

1. :func:`review_notes`: send labeled notes to ``POST /v1/suggest`` and act as the coder with
   their gold codes through ``POST /v1/feedback``: accept a proposed code that is right, reject
   one that is wrong, accept a lower-ranked candidate that is right, add a gold code the engine
   did not return at all (the service refuses codes its code sets do not hold or that are not
   billable there: counted by reason, not recorded; a partial ICD-10-PCS code, as the engine
   lists it and CodiEsp codes about half its procedures, is recorded as one: ``partial``);
2. :func:`export_feedback`: ``GET /v1/feedback/export`` (admin key) to a JSONL file;
3. :func:`retrain`: ``train_pack`` on the export with ``base`` (the serving pack);
4. :func:`promote`: ``POST /v1/admin/packs/promote`` and wait until the server serves it;
5. :func:`evaluate_dirs`: MAP of packs on held-out labeled notes (``training.evaluate``).

``client`` is anything with httpx's ``get`` / ``post`` (a FastAPI ``TestClient`` or an
``httpx.Client`` on a running server): training never imports the service.
``bench/bench_feedback_loop.py`` and ``notebooks/feedback_loop.ipynb`` call these functions.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clinicode.kb.validate import is_partial
from clinicode.training.data import LabeledNote, Task

# a code in a refusal's words (E11.2, 0DTJ, 3E0T3CZ, 99213), kept apart from words and FY2026
_CODE_WORD = re.compile(r"\b(?!FY\d)(?=[A-Z0-9.]*\d)[A-Z0-9][A-Z0-9.]{2,7}\b")


class HttpClient(Protocol):
    def get(self, url: str, **kw: Any) -> Any: ...

    def post(self, url: str, **kw: Any) -> Any: ...


@dataclass
class ReviewStats:
    """What the simulated coder did."""

    notes: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # HTTP status of refused decisions
    refused_reasons: Counter[str] = field(default_factory=Counter)  # the service's reason
    partial: int = 0  # recorded decisions on partial ICD-10-PCS codes
    failed_suggest: int = 0
    model_versions: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "notes": self.notes,
            "actions": dict(self.actions),
            "refused": {str(k): v for k, v in self.refused.items()},
            "refused_reasons": dict(self.refused_reasons.most_common()),
            "partial": self.partial,
            "failed_suggest": self.failed_suggest,
            "model_versions": dict(self.model_versions),
        }


def _key(s: dict[str, Any]) -> tuple[str, str]:
    return (str(s["system"]), str(s["code"]))


def review_note(
    client: HttpClient,
    note: LabeledNote,
    *,
    key: str,
    stats: ReviewStats,
    setting: str = "outpatient",
) -> None:
    """Suggest one note, then decide on it as a coder whose final code set is ``note.codes``."""
    h = {"X-API-Key": key}
    r = client.post(
        "/v1/suggest", json={"text": note.text, "setting": setting, "note_id": note.id}, headers=h
    )
    if r.status_code != 200:
        stats.failed_suggest += 1
        return
    result = r.json()
    stats.notes += 1
    stats.model_versions[result["model"]["version"]] += 1
    gold = set(note.codes)
    proposed = {_key(s): s for s in result.get("codes", [])}
    others = {_key(s): s for g in ("candidates", "suppressed") for s in result.get(g, [])}
    decisions: list[tuple[tuple[str, str], dict[str, Any]]] = []
    for k, s in proposed.items():
        action = "accept" if k in gold else "reject"
        decisions.append((k, {"suggestion_id": s["suggestion_id"], "action": action}))
    for k in sorted(gold - proposed.keys()):
        if k in others:
            decisions.append((k, {"suggestion_id": others[k]["suggestion_id"], "action": "accept"}))
        else:
            decisions.append(
                (k, {"note_id": note.id, "system": k[0], "code": k[1], "action": "add"})
            )
    for k, body in decisions:
        resp = client.post("/v1/feedback", json=body, headers=h)
        if resp.status_code == 201:
            stats.actions[body["action"]] += 1
            stats.partial += int(body["action"] != "reject" and is_partial(*k))
        else:
            stats.refused[resp.status_code] += 1
            stats.refused_reasons[_reason(resp)] += 1


def _reason(resp: Any) -> str:
    """A refusal's reason without its codes: ``<code> is a subcategory of ICD-10-CM FY2026``."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not body.get("detail"):
        return f"HTTP {resp.status_code}"
    detail = str(body["detail"])
    return _CODE_WORD.sub("<code>", detail.split(" (", 1)[0])[:120]


def review_notes(
    client: HttpClient,
    notes: Sequence[LabeledNote],
    *,
    key: str,
    setting: str = "outpatient",
    progress: Callable[[int], None] | None = None,
) -> ReviewStats:
    stats = ReviewStats()
    for i, note in enumerate(notes):
        review_note(client, note, key=key, stats=stats, setting=setting)
        if progress is not None:
            progress(i + 1)
    return stats


def export_feedback(client: HttpClient, *, admin_key: str, out: Path) -> int:
    """The reviewed notes of the admin key's tenant, written to ``out``; returns how many."""
    r = client.get("/v1/feedback/export", headers={"X-API-Key": admin_key})
    if r.status_code != 200:
        raise RuntimeError(f"export failed: HTTP {r.status_code} {r.text[:200]}")
    lines = [ln for ln in r.text.splitlines() if ln.strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return len(lines)


def retrain(
    export: Path,
    *,
    base: Path,
    out: Path,
    kb: Any,
    name: str = "clinicode-feedback",
    seed: int = 0,
    base_notes: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``clinicode train --base BASE --data EXPORT --format jsonl --out OUT`` (``base_notes``:
    at most this many of a synthetic base's notes, for a quick run)."""
    from clinicode.training.data import load_jsonl
    from clinicode.training.train import TrainConfig, train_pack

    notes = load_jsonl(export)
    return train_pack(
        notes,
        kb=kb,
        out=out,
        base=base,
        cfg=TrainConfig(seed=seed, name=name, generators=(), base_notes=base_notes),
        progress=progress,
    )


def promote(
    client: HttpClient, name: str, *, admin_key: str, timeout_s: float = 300.0
) -> dict[str, Any]:
    """Promote pack ``name`` on the server and wait until this worker serves it."""
    h = {"X-API-Key": admin_key}
    r = client.post("/v1/admin/packs/promote", json={"pack": name}, headers=h)
    if r.status_code != 202:
        raise RuntimeError(f"promotion refused: HTTP {r.status_code} {r.text[:300]}")
    row: dict[str, Any] = r.json()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = client.get("/v1/admin/packs", headers=h).json()
        if st.get("serving_version") == row["version"]:
            return {**row, "switched_after_s": timeout_s - (deadline - time.monotonic())}
        if st.get("reload_error"):
            raise RuntimeError(f"the server could not load {name}: {st['reload_error']}")
        time.sleep(0.2)
    raise RuntimeError(f"the server did not switch to {name} within {timeout_s:.0f} s")


def evaluate_dirs(
    packs: dict[str, Path], notes: Sequence[LabeledNote], tasks: Sequence[Task] = ("D", "P")
) -> dict[str, dict[str, float]]:
    """``{label: {"D": MAP, "P": MAP, "D_micro_f1": ...}}`` of each pack on ``notes``."""
    from clinicode.kb import open_kb
    from clinicode.training.evaluate import evaluate_pack, load_path

    kb = open_kb()
    out: dict[str, dict[str, float]] = {}
    for label, d in packs.items():
        path = load_path(d, kb)
        figures: dict[str, float] = {}
        loaded = kb.versions()
        for task in tasks:
            gold_systems = {k.split(":", 1)[0] for n in notes for k in n.codes_for(task)}
            if not gold_systems & loaded.keys():
                continue  # the KB holds no code set of the gold codes: nothing to measure
            res = evaluate_pack(path, notes, task, progress=False)
            figures[task] = float(res["map"])
            figures[f"{task}_micro_f1"] = float(res["micro_f1"])
        out[label] = figures
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text("utf-8").splitlines() if ln.strip()]
