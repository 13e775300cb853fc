"""``--format mimic-iv``: the loader on synthetic files in the exact MIMIC-IV layout."""

from __future__ import annotations

import csv
import gzip
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from clinicode.errors import InputError
from clinicode.kb import KnowledgeBase
from clinicode.training.data import load_notes
from clinicode.training.mimic import MimicStats, iter_mimic_iv, kb_validator, load_mimic_iv
from tests.training.mimic_fixture import PCS, VALID_DX, write_large, write_small


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return tmp_path, write_small(tmp_path)


def test_fixture_codes_are_valid_fy_codes(kb: KnowledgeBase) -> None:
    idx = kb.code_index()
    for code in VALID_DX:
        dotted = code[:3] + "." + code[3:] if len(code) > 3 else code
        assert idx.billable.get(("ICD-10-CM", dotted)) is True, dotted
    assert all(len(c) == 7 for c in PCS)


def test_loader_yields_the_right_notes_codes_and_splits(
    small: tuple[Path, dict[str, Any]], kb: KnowledgeBase
) -> None:
    root, want = small
    stats = MimicStats()
    notes = load_mimic_iv(root, split_file=root / "split.csv", kb=kb, stats=stats)
    assert {n.id: n.codes for n in notes} == want["codes"]
    for n in notes:
        assert n.text == want["texts"][n.id]  # quotes, commas and newlines survive
    assert dict(stats.split_counts) == want["split_counts"]
    assert stats.icd9_rows == want["icd9_rows"]
    assert stats.codes_not_in_code_set["ICD-10-CM"] == want["not_in_code_set"]
    # this KB has no ICD-10-PCS loaded: procedure codes are kept, unchecked, and counted
    assert stats.codes_unchecked["ICD-10-PCS"] == want["pcs_rows"]
    assert stats.notes_without_icd10 == want["without_icd10"]
    assert stats.notes_read == 6 and stats.notes_kept == 4
    for n in notes:
        for system, code in n.codes:
            if system == "ICD-10-CM":
                assert kb.code_index().billable[(system, code)] is True


def test_one_split_only(small: tuple[Path, dict[str, Any]], kb: KnowledgeBase) -> None:
    root, _ = small
    for split, ids in (("train", {"20000001", "20000002"}), ("val", {"20000004"}),
                       ("test", {"20000006"})):  # fmt: skip
        stats = MimicStats()
        notes = load_mimic_iv(root, split_file=root / "split.csv", split=split, kb=kb, stats=stats)
        assert {n.id for n in notes} == ids
        assert stats.notes_other_split == 4 - len(ids)
    # "dev" / "valid" are read as Edin et al.'s "val"
    assert [n.id for n in load_mimic_iv(root, split_file=root / "split.csv", split="dev")] == [
        "20000004"
    ]


def test_without_a_kb_codes_are_kept_unchecked(small: tuple[Path, dict[str, Any]]) -> None:
    root, _ = small
    notes = {n.id: n.codes for n in load_notes(root, "mimic-iv")}
    assert ("ICD-10-CM", "E11") in notes["20000001"]  # not billable, but nothing to check with
    assert ("ICD-10-CM", "A00.00") in notes["20000002"]


def test_bad_inputs_are_clear_errors(tmp_path: Path, small: tuple[Path, dict[str, Any]]) -> None:
    root, _ = small
    with pytest.raises(InputError, match="not a MIMIC-IV folder"):
        load_mimic_iv(tmp_path / "nowhere")
    with pytest.raises(InputError, match="--split needs --split-file"):
        load_mimic_iv(root, split="train")
    bad_split = tmp_path / "bad.csv"
    bad_split.write_text("id,fold\n1,train\n")
    with pytest.raises(InputError, match="'hadm_id'"):
        load_mimic_iv(root, split_file=bad_split)
    with gzip.open(root / "hosp" / "diagnoses_icd.csv.gz", "wt", newline="") as fh:
        csv.writer(fh).writerow(["subject_id", "hadm_id", "icd_code"])
    with pytest.raises(InputError, match="seq_num, icd_version"):
        load_mimic_iv(root)


def test_reading_streams(tmp_path: Path) -> None:
    """Iterating without keeping the notes holds one note at a time, not the file: the peak of
    Python allocations stays far below the notes' total text (20 MB here)."""
    write_large(tmp_path, 2500, chars=8000)
    tracemalloc.start()
    n = total = 0
    for note in iter_mimic_iv(tmp_path, split_file=tmp_path / "split.csv"):
        n += 1
        total += len(note.text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 2500 and total > 18_000_000
    assert peak < total / 5, (peak, total)


@pytest.mark.slow
def test_cli_evaluate_and_train_read_mimic(
    small: tuple[Path, dict[str, Any]], run_cli: Any, kb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = small
    monkeypatch.setenv("CLINICODE_DATA_DIR", str(kb_path.parent))
    code, _out, err = run_cli("evaluate", "--data", str(root), "--format", "jsonl",
                              "--split", "test")  # fmt: skip
    assert code == 2 and "mimic-iv" in err
    code, _out, err = run_cli("train", "--data", str(root), "--format", "mimic-iv", "--out",
                              str(root / "pack"), "--split-file", str(root / "split.csv"),
                              "--split", "nope", "--quiet")  # fmt: skip
    assert code == 2 and "train, val or test" in err
    big = root / "big"
    write_large(big, 40, chars=300)
    code, out, err = run_cli("train", "--data", str(big), "--format", "mimic-iv", "--out",
                             str(root / "pack"), "--split-file", str(big / "split.csv"),
                             "--split", "train", "--generators", "none", "--folds", "2",
                             "--quiet")  # fmt: skip
    assert code == 0, err
    stats = json.loads(err.split("mimic-iv: ", 1)[1].splitlines()[0])
    assert json.loads(out)["notes"] == stats["split_counts"]["train"] == stats["notes_kept"]
    assert stats["notes_other_split"] == 40 - stats["notes_kept"]
    assert "patient" not in err.lower()  # counts only, never note text
    code, out, err = run_cli("evaluate", "--data", str(root), "--format", "mimic-iv",
                             "--split-file", str(root / "split.csv"), "--split", "train",
                             "--model", str(root / "pack"), "--quiet")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["documents"] == 2


def test_kb_validator(kb: KnowledgeBase) -> None:
    valid = kb_validator(kb)
    assert valid("ICD-10-CM", "E11.22") is True
    assert valid("ICD-10-CM", "E11") is False
    assert valid("ICD-10-PCS", "0DTJ4ZZ") is None
