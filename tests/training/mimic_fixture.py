"""Synthetic MIMIC-IV in the exact PhysioNet layout (no real MIMIC data exists here).

``write_small`` writes a hand-made set whose expected notes, codes and split counts are known
(ICD-9 admissions, mixed ICD-9/10 admissions, codes outside the code set, a note without codes,
codes without a note, CSV quoting of commas, quotes and newlines). ``write_large`` writes ``n``
random admissions for the memory bench (``bench/bench_mimic.py``).
"""

from __future__ import annotations

import csv
import gzip
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DISCHARGE_HEAD = ["note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime",
                  "storetime", "text"]  # fmt: skip
DIAGNOSES_HEAD = ["subject_id", "hadm_id", "seq_num", "icd_code", "icd_version"]
PROCEDURES_HEAD = ["subject_id", "hadm_id", "seq_num", "chartdate", "icd_code", "icd_version"]

# FY2026 billable ICD-10-CM codes as MIMIC stores them (no dot); checked in the tests
VALID_DX = ["E119", "I10", "J189", "N179", "E1122", "K3580", "I480", "N390", "E785", "F329",
            "J449", "I5022", "D649", "E871", "K219", "G4733", "Z794", "Z87891", "I2510", "E039"]  # fmt: skip
PCS = ["0DTJ4ZZ", "02HV33Z", "5A1945Z", "3E0G76Z", "0BH17EZ"]


def _writer(path: Path, head: Sequence[str]) -> tuple[Any, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=1)
    w = csv.writer(fh)
    w.writerow(head)
    return fh, w


def write_small(root: Path) -> dict[str, Any]:
    """The hand-made set; returns what the loader must yield."""
    notes = {  # hadm_id -> text
        "20000001": 'Discharge Diagnosis: type 2 diabetes, "poorly controlled", with CKD.\nHTN.',
        "20000002": "Pneumonia, right lower lobe; treated with ceftriaxone, azithromycin.",
        "20000003": "ICD-9 era admission: CHF exacerbation.",  # only ICD-9 rows: skipped
        "20000004": "AKI on CKD, resolved. Appendectomy.\n\nFollow-up in 2 weeks.",
        "20000005": "Observation only, no codes recorded.",  # no code rows at all: skipped
        "20000006": "Atrial fibrillation, rate controlled.",
    }
    dx = [  # hadm, seq, code, version
        ("20000001", 2, "I10", 10), ("20000001", 1, "E1122", 10), ("20000001", 3, "E11", 10),
        ("20000002", 1, "J189", 10), ("20000002", 2, "A0000", 10),
        ("20000003", 1, "4280", 9), ("20000003", 2, "4019", 9),
        ("20000004", 1, "N179", 10), ("20000004", 2, "5849", 9),
        ("20000006", 1, "I480", 10),
        ("20000099", 1, "E119", 10),  # codes, but no discharge note
    ]  # fmt: skip
    px = [
        ("20000004", 1, "0DTJ4ZZ", 10),
        ("20000004", 2, "4701", 9),
        ("20000002", 1, "5A1945Z", 10),
    ]
    split = {"20000001": "train", "20000002": "train", "20000003": "train",
             "20000004": "val", "20000006": "test", "20000099": "test"}  # fmt: skip
    fh, w = _writer(root / "note" / "discharge.csv.gz", DISCHARGE_HEAD)
    for i, (hadm, text) in enumerate(notes.items()):
        subj = str(10000000 + i)
        w.writerow([f"{subj}-DS-{i + 1}", subj, hadm, "DS", "1", "2180-01-01 00:00:00",
                    "2180-01-01 10:00:00", text])  # fmt: skip
    fh.close()
    fh, w = _writer(root / "hosp" / "diagnoses_icd.csv.gz", DIAGNOSES_HEAD)
    for hadm, seq, code, ver in dx:
        w.writerow(["10000000", hadm, seq, code, ver])
    fh.close()
    fh, w = _writer(root / "hosp" / "procedures_icd.csv.gz", PROCEDURES_HEAD)
    for hadm, seq, code, ver in px:
        w.writerow(["10000000", hadm, seq, "2180-01-01", code, ver])
    fh.close()
    with open(root / "split.csv", "w", encoding="utf-8", newline="") as f:
        sw = csv.writer(f)
        sw.writerow(["_id", "split"])
        sw.writerows(split.items())
    expected = {
        "20000001": [("ICD-10-CM", "E11.22"), ("ICD-10-CM", "I10")],
        "20000002": [("ICD-10-CM", "J18.9"), ("ICD-10-PCS", "5A1945Z")],
        "20000004": [("ICD-10-CM", "N17.9"), ("ICD-10-PCS", "0DTJ4ZZ")],
        "20000006": [("ICD-10-CM", "I48.0")],
    }
    return {
        "texts": notes,
        "codes": expected,
        "split_counts": {"train": 2, "val": 1, "test": 1},
        "icd9_rows": 4,
        "not_in_code_set": 2,  # E11 (a category, not billable) and A0000 (no such code)
        "pcs_rows": 2,
        "without_icd10": 2,
    }


_WORDS = ("patient", "admitted", "with", "history", "of", "hypertension", "diabetes", "denies",
          "chest", "pain", "fever", "cough", "creatinine", "improved", "discharged", "home",
          "follow-up", "with", "PCP", "in", "two", "weeks", "CT", "abdomen", "unremarkable",
          "metoprolol", "25", "mg", "BID", "lisinopril", "10", "mg", "daily", "stable")  # fmt: skip


def write_large(root: Path, n: int, *, chars: int = 10_000, seed: int = 0) -> None:
    """``n`` admissions, one discharge note of about ``chars`` characters each, 5 to 20
    diagnosis rows (a tenth ICD-9) and 0 to 4 procedure rows; a split file (80/10/10)."""
    rng = random.Random(seed)
    sentences = [
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 18))).capitalize() + "."
        for _ in range(400)
    ]
    per_note = max(1, chars // 70)
    dfh, dw = _writer(root / "note" / "discharge.csv.gz", DISCHARGE_HEAD)
    xfh, xw = _writer(root / "hosp" / "diagnoses_icd.csv.gz", DIAGNOSES_HEAD)
    pfh, pw = _writer(root / "hosp" / "procedures_icd.csv.gz", PROCEDURES_HEAD)
    with open(root / "split.csv", "w", encoding="utf-8", newline="") as sf:
        sw = csv.writer(sf)
        sw.writerow(["_id", "split"])
        for i in range(n):
            hadm, subj = str(20_000_000 + i), str(10_000_000 + i // 2)
            text = "\n".join(rng.choices(sentences, k=per_note))
            dw.writerow([f"{subj}-DS-{i}", subj, hadm, "DS", "1", "2180-01-01 00:00:00",
                         "2180-01-01 10:00:00", text])  # fmt: skip
            for s in range(rng.randint(5, 20)):
                nine = rng.random() < 0.1
                xw.writerow([subj, hadm, s + 1, "4019" if nine else rng.choice(VALID_DX),
                             9 if nine else 10])  # fmt: skip
            for s in range(rng.randint(0, 4)):
                pw.writerow([subj, hadm, s + 1, "2180-01-01", rng.choice(PCS), 10])
            r = rng.random()
            sw.writerow([hadm, "train" if r < 0.8 else "val" if r < 0.9 else "test"])
    for fh in (dfh, xfh, pfh):
        fh.close()
