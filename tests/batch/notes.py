"""Short synthetic notes for the batch tests, written as US physicians write them, and the
helpers that write them as JSONL, CSV or Parquet input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

_LINES = [
    "HPI: 58 yo M w/ type 2 diabetes mellitus, A1c 9.1, poor glycemic control.",
    "PMH: HTN, well controlled on amlodipine 10 mg daily.",
    "CC: fever x 3 days. CXR: RLL infiltrate c/w community acquired pneumonia.",
    "A/P: acute appendicitis. Lap appendectomy performed, pt tolerated well.",
    "Asthma exacerbation, wheezing on exam, albuterol neb given in ED.",
    "Denies chest pain, SOB. No evidence of pneumonia on CXR.",
    "Mild persistent asthma, controlled on inhaled steroids.",
    "Essential hypertension, BP 162/94 today; continue lisinopril.",
    "FHx: mother w/ breast cancer. SHx: quit smoking 2010.",
    "Fever of unknown origin, blood cultures pending.",
]


def clinical_notes(n: int) -> list[tuple[str, str]]:
    """``n`` distinct (id, text) notes: two to four lines of the list above each."""
    out = []
    k = len(_LINES)
    for i in range(n):
        picked = [_LINES[i % k], _LINES[(i * 3 + 1) % k]]
        if i % 3 == 0:
            picked.append(_LINES[(i * 7 + 2) % k])
        if i % 4 == 1:
            picked.append(_LINES[(i + 5) % k])
        text = f"Visit {i}.\n" + "\n".join(dict.fromkeys(picked))
        out.append((f"note-{i:04d}", text))
    return out


def write_jsonl(path: Path, notes: list[tuple[str, str]], extra: bytes = b"") -> Path:
    with path.open("wb") as fh:
        for nid, text in notes:
            fh.write(json.dumps({"id": nid, "text": text}).encode() + b"\n")
        fh.write(extra)
    return path


def write_csv(path: Path, notes: list[tuple[str, str]], id_col: str, text_col: str) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([id_col, "other", text_col])
        for nid, text in notes:
            w.writerow([nid, "x", text])
    return path


def write_parquet(path: Path, notes: list[tuple[str, str]], id_col: str, text_col: str) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({id_col: [n for n, _ in notes], text_col: [t for _, t in notes]})
    pq.write_table(table, path)
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
