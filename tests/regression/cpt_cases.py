"""The hand-written procedure notes (``cpt_notes.yaml``, ``cpt_notes_heldout.yaml``) and how the
CPT/HCPCS rule coders are measured on them: shared by the tests and ``bench/bench_cpt.py``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
DEV = HERE / "cpt_notes.yaml"
HELDOUT = HERE / "cpt_notes_heldout.yaml"


@dataclass
class CptCase:
    id: str
    setting: str
    text: str
    must: list[str]
    hcpcs: dict[str, int] = field(default_factory=dict)
    heldout: bool = False


def load_cases(path: Path) -> list[CptCase]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        CptCase(
            id=r["id"],
            setting=r["setting"],
            text=r["text"],
            must=list(r.get("must", [])),
            hcpcs={h["code"]: int(h["units"]) for h in r.get("hcpcs", [])},
            heldout=bool(r.get("heldout", False)),
        )
        for r in raw
    ]


def key(code: str, modifiers: Sequence[str]) -> str:
    """``20610-RT``: the code with its modifiers, as the notes write them."""
    return "-".join([code, *modifiers])


@dataclass
class Score:
    tp: int = 0
    n_must: int = 0
    n_pred: int = 0
    tp_code: int = 0  # ignoring modifiers
    misses: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.tp / self.n_must if self.n_must else 1.0

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else 1.0

    @property
    def recall_code(self) -> float:
        return self.tp_code / self.n_must if self.n_must else 1.0


def score_cpt(cases: Sequence[CptCase], coder: Callable[[str, str], list[Any]]) -> Score:
    """Recall of must keys and precision of every CPT key the coder gives (``coder(text,
    setting)`` returns CodeSuggestions)."""
    sc = Score()
    for c in cases:
        pred = {key(s.code, s.modifiers) for s in coder(c.text, c.setting)}
        must = set(c.must)
        sc.tp += len(pred & must)
        sc.tp_code += len({p.split("-")[0] for p in pred} & {m.split("-")[0] for m in must})
        sc.n_must += len(must)
        sc.n_pred += len(pred)
        sc.misses += [f"{c.id}:{m}" for m in sorted(must - pred)]
        sc.extras += [f"{c.id}:{p}" for p in sorted(pred - must)]
    return sc


def score_hcpcs(cases: Sequence[CptCase], coder: Callable[[str, str], list[Any]]) -> Score:
    """HCPCS codes with their units: a hit needs the code and the units right."""
    sc = Score()
    for c in cases:
        pred = {f"{s.code}x{s.units}" for s in coder(c.text, c.setting)}
        must = {f"{k}x{u}" for k, u in c.hcpcs.items()}
        sc.tp += len(pred & must)
        sc.tp_code += len({p.split("x")[0] for p in pred} & set(c.hcpcs))
        sc.n_must += len(must)
        sc.n_pred += len(pred)
        sc.misses += [f"{c.id}:{m}" for m in sorted(must - pred)]
        sc.extras += [f"{c.id}:{p}" for p in sorted(pred - must)]
    return sc
