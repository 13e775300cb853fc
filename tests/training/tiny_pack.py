"""A tiny trained pack for model tests: hand-written notes, note classifier only (fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clinicode.training.data import LabeledNote

_NOTES = [
    ("Patient with type 2 diabetes mellitus and poor glycemic control.", ["E11.9"]),
    ("Known type 2 diabetes, on metformin; hypertension well controlled.", ["E11.9", "I10"]),
    ("Essential hypertension, blood pressure 160/95.", ["I10"]),
    ("Hypertension follow-up, amlodipine continued.", ["I10"]),
    ("Acute appendicitis; laparoscopic appendectomy performed.", ["K35.80", "ICD-10-PCS:0DTJ4ZZ"]),
    (
        "Right lower quadrant pain, appendicitis confirmed, appendix removed.",
        ["K35.80", "ICD-10-PCS:0DTJ4ZZ"],
    ),
    ("Community acquired pneumonia with fever and cough.", ["J18.9", "R50.9"]),
    ("Pneumonia of the right lower lobe, treated with antibiotics.", ["J18.9"]),
    ("Fever of unknown origin for two weeks.", ["R50.9"]),
    ("Diabetes mellitus type 2 with hypertension, stable.", ["E11.9", "I10"]),
    ("Asthma exacerbation, wheezing, salbutamol given.", ["J45.901"]),
    ("Mild persistent asthma, controlled on inhaled steroids.", ["J45.901"]),
]


def tiny_notes() -> list[LabeledNote]:
    out = []
    for i, (text, codes) in enumerate(_NOTES):
        parsed = []
        for c in codes:
            if ":" in c:
                system, code = c.split(":", 1)
            else:
                system, code = "ICD-10-CM", c
            parsed.append((system, code))
        out.append(LabeledNote(id=f"n{i}", text=text, codes=parsed))
    return out


def build_tiny_pack(kb: Any, out: Path) -> dict[str, Any]:
    from clinicode.training.train import TrainConfig, train_pack

    cfg = TrainConfig(
        n_folds=3, generators=(), ranker_max_iter=20, ranker_folds=2, doc_k=5, name="tiny"
    )
    return train_pack(tiny_notes(), kb=kb, out=out, cfg=cfg, progress=False)
