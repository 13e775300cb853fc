"""MIMIC-IV discharge summaries with their ICD-10 codes (``--format mimic-iv DIR``).

MIMIC-IV is credentialed data (PhysioNet): nothing of it ships with Clinicode. ``DIR`` is the
folder holding the two MIMIC-IV modules as PhysioNet lays them out::

    DIR/note/discharge.csv.gz        note_id, subject_id, hadm_id, note_type, note_seq,
                                     charttime, storetime, text
    DIR/hosp/diagnoses_icd.csv.gz    subject_id, hadm_id, seq_num, icd_code, icd_version
    DIR/hosp/procedures_icd.csv.gz   subject_id, hadm_id, seq_num, chartdate, icd_code,
                                     icd_version

A note is one admission (``hadm_id``): its discharge summary, labeled with the admission's
ICD-10 rows only (``icd_version == 10``; admissions coded in ICD-9 only are skipped). MIMIC
stores codes without dots (``E1122``): diagnoses get their dot (``E11.22``), then each code is
checked against the knowledge base's code set (a code the loaded fiscal year lacks is dropped
and counted; a system the KB has not loaded is kept unchecked and counted).

An optional split file, as in Edin et al. 2023 (MIMIC-IV ICD-10 split): a CSV (or .csv.gz)
with an admission column (``hadm_id`` or ``_id``) and a ``split`` column (train / val / test).
Their split ships as a feather file: convert it once with pandas
(``pd.read_feather(f).to_csv("split.csv", index=False)``).

Reading streams: the code tables go into one small dict per admission (codes shared), then the
notes are read one row at a time with the ``csv`` module over ``gzip``, so the full 120k-note
set never sits in memory twice (``bench/bench_mimic.py`` measures the peak).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinicode.errors import InputError
from clinicode.training.data import LabeledNote, normalize_label

if TYPE_CHECKING:
    from clinicode.kb import KnowledgeBase

DISCHARGE = Path("note") / "discharge.csv.gz"
DIAGNOSES = Path("hosp") / "diagnoses_icd.csv.gz"
PROCEDURES = Path("hosp") / "procedures_icd.csv.gz"
DISCHARGE_COLUMNS = (
    "note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime", "storetime", "text",
)  # fmt: skip
DIAGNOSES_COLUMNS = ("subject_id", "hadm_id", "seq_num", "icd_code", "icd_version")
PROCEDURES_COLUMNS = ("subject_id", "hadm_id", "seq_num", "chartdate", "icd_code", "icd_version")
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "dev": "val", "test": "test"}

# True: in the code set; False: not in it (dropped); None: the KB has not loaded the system.
Validator = Callable[[str, str], bool | None]


@dataclass
class MimicStats:
    """What the loader read, kept and dropped (printed by the CLI; no note text)."""

    notes_read: int = 0
    notes_kept: int = 0
    notes_without_icd10: int = 0
    notes_not_in_split: int = 0
    notes_other_split: int = 0
    notes_merged: int = 0
    icd9_rows: int = 0
    code_rows_kept: int = 0
    codes_not_in_code_set: Counter[str] = field(default_factory=Counter)
    codes_unchecked: Counter[str] = field(default_factory=Counter)
    split_counts: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in self.__dict__.items()}


def kb_validator(kb: KnowledgeBase) -> Validator:
    """Billable codes of the KB's loaded code sets (its fiscal year)."""
    idx = kb.code_index()
    loaded = {s for s, _ in idx.billable}

    def valid(system: str, code: str) -> bool | None:
        if system not in loaded:
            return None
        return bool(idx.billable.get((system, code)))

    return valid


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[list[str]]:
    """Rows of a gzipped MIMIC CSV, as lists in ``columns``' order (header checked)."""
    if not path.is_file():
        raise InputError(f"MIMIC-IV file missing: {path} (see README: MIMIC-IV)")
    csv.field_size_limit(1 << 30)  # discharge summaries are longer than csv's 128 KiB default
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path} is empty")
        missing = [c for c in columns if c not in header]
        if missing:
            raise InputError(f"{path} lacks the MIMIC-IV column(s) {', '.join(missing)}")
        pos = [header.index(c) for c in columns]
        width = max(pos) + 1
        for line, row in enumerate(reader, start=2):
            if len(row) < width:
                raise InputError(f"{path.name} line {line}: {len(row)} fields, expected more")
            yield [row[i] for i in pos]


def read_codes(
    folder: Path, valid: Validator | None = None, stats: MimicStats | None = None
) -> dict[str, list[tuple[str, str]]]:
    """``{hadm_id: [(system, code), ...]}`` of the ICD-10 rows, diagnoses then procedures, each
    in ``seq_num`` order; codes dotted and checked with ``valid``."""
    stats = stats if stats is not None else MimicStats()
    shared: dict[tuple[str, str], tuple[str, str]] = {}
    seq: dict[str, list[tuple[int, int, tuple[str, str]]]] = {}
    for table, system, columns, rank in (
        (DIAGNOSES, "ICD-10-CM", DIAGNOSES_COLUMNS, 0),
        (PROCEDURES, "ICD-10-PCS", PROCEDURES_COLUMNS, 1),
    ):
        i_hadm, i_seq = columns.index("hadm_id"), columns.index("seq_num")
        i_code, i_ver = columns.index("icd_code"), columns.index("icd_version")
        for row in _rows(folder / table, columns):
            if row[i_ver].strip() != "10":
                stats.icd9_rows += 1
                continue
            code = normalize_label(row[i_code], system)
            ok = valid(system, code) if valid is not None else True
            if ok is False:
                stats.codes_not_in_code_set[system] += 1
                continue
            if ok is None:
                stats.codes_unchecked[system] += 1
            pair = shared.setdefault((system, code), (system, code))
            n = int(row[i_seq]) if row[i_seq].strip().isdigit() else 0
            seq.setdefault(row[i_hadm].strip(), []).append((rank, n, pair))
            stats.code_rows_kept += 1
    out: dict[str, list[tuple[str, str]]] = {}
    for hadm in list(seq):
        items = seq.pop(hadm)  # freed as it goes: the peak is one copy of the codes
        items.sort(key=lambda t: (t[0], t[1]))
        out[hadm] = list(dict.fromkeys(p for _, _, p in items))
    return out


def read_split(path: Path) -> dict[str, str]:
    """``{hadm_id: split}`` from an Edin et al. style split CSV (``hadm_id`` or ``_id``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no split file at {path}")
    if path.suffix in (".feather", ".parquet"):
        raise InputError(
            f"{path.name}: convert the split to CSV first "
            "(pd.read_feather(f).to_csv('split.csv', index=False))"
        )
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode("utf-8") if path.suffix == ".gz" else raw.decode("utf-8")
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    id_col = next((c for c in ("hadm_id", "_id") if c in header), None)
    if id_col is None or "split" not in header:
        raise InputError(f"{path.name} needs a 'hadm_id' (or '_id') and a 'split' column")
    i_id, i_split = header.index(id_col), header.index("split")
    out: dict[str, str] = {}
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        name = SPLIT_NAMES.get(row[i_split].strip().lower())
        if name is None:
            raise InputError(f"{path.name} line {line}: split must be train, val or test")
        out[row[i_id].strip()] = name
    return out


def iter_mimic_iv(
    folder: Path | str,
    *,
    split_file: Path | None = None,
    split: str | None = None,
    valid: Validator | None = None,
    stats: MimicStats | None = None,
) -> Iterator[LabeledNote]:
    """Discharge summaries with ICD-10 codes, one at a time, in file order (``split``: only the
    admissions of that split in ``split_file``)."""
    folder = Path(folder)
    stats = stats if stats is not None else MimicStats()
    if split is not None:
        if split_file is None:
            raise InputError("--split needs --split-file")
        if split not in SPLIT_NAMES:
            raise InputError(f"--split must be train, val or test, not {split!r}")
        split = SPLIT_NAMES[split]
    discharge = folder / DISCHARGE
    if not discharge.is_file():
        raise InputError(f"{folder} is not a MIMIC-IV folder: no {DISCHARGE} inside")
    codes = read_codes(folder, valid, stats)
    splits = read_split(split_file) if split_file is not None else None
    i_hadm, i_text = DISCHARGE_COLUMNS.index("hadm_id"), DISCHARGE_COLUMNS.index("text")
    for row in _rows(discharge, DISCHARGE_COLUMNS):
        stats.notes_read += 1
        hadm = row[i_hadm].strip()
        note_codes = codes.get(hadm)
        if not note_codes:
            stats.notes_without_icd10 += 1
            continue
        which = None
        if splits is not None:
            which = splits.get(hadm)
            if which is None:
                stats.notes_not_in_split += 1
                continue
            if split is not None and which != split:
                stats.notes_other_split += 1
                continue
        stats.notes_kept += 1
        stats.split_counts[which or "all"] += 1
        yield LabeledNote(id=hadm, text=row[i_text], codes=list(note_codes))


def load_mimic_iv(
    folder: Path | str,
    *,
    split_file: Path | None = None,
    split: str | None = None,
    kb: KnowledgeBase | None = None,
    stats: MimicStats | None = None,
) -> list[LabeledNote]:
    """All the notes of :func:`iter_mimic_iv` in a list; an admission with several discharge
    notes becomes one note (texts joined in file order), codes checked against ``kb``."""
    stats = stats if stats is not None else MimicStats()
    valid = kb_validator(kb) if kb is not None else None
    notes: list[LabeledNote] = []
    where: dict[str, int] = {}
    for note in iter_mimic_iv(folder, split_file=split_file, split=split, valid=valid, stats=stats):
        at = where.get(note.id)
        if at is None:
            where[note.id] = len(notes)
            notes.append(note)
        else:
            notes[at].text += "\n\n" + note.text
            stats.notes_merged += 1
    if not notes:
        raise InputError(
            f"{folder}: no discharge note with ICD-10 codes"
            + (f" in split {split!r}" if split else "")
        )
    return notes
