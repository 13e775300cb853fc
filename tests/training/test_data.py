"""Loading labeled notes: CodiEsp layout, JSONL, fingerprints and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinicode.errors import InputError
from clinicode.training.data import fingerprint, guess_system, load_codiesp, load_jsonl
from tests.conftest import shared_path


def _codiesp(tmp_path: Path) -> Path:
    d = tmp_path / "train"
    (d / "text_files_en").mkdir(parents=True)
    (d / "text_files_en" / "doc1.txt").write_text("Fever and orchitis.", encoding="utf-8")
    (d / "text_files_en" / "doc2.txt").write_text("No codes here.", encoding="utf-8")
    (d / "trainD.tsv").write_text("doc1\tn44.8\ndoc1\tr50.9\ndoc1\tn44.8\n", encoding="utf-8")
    (d / "trainP.tsv").write_text("doc1\tbw03zzz\ndoc1\tbw03\n", encoding="utf-8")
    return d


def test_codiesp_layout(tmp_path: Path) -> None:
    notes = {n.id: n for n in load_codiesp(_codiesp(tmp_path))}
    assert notes["doc1"].codes_for("D") == ["ICD-10-CM:N44.8", "ICD-10-CM:R50.9"]
    assert notes["doc1"].codes_for("P") == ["ICD-10-PCS:BW03ZZZ", "ICD-10-PCS:BW03"]
    assert notes["doc2"].codes == []


def test_codiesp_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="text_files_en"):
        load_codiesp(tmp_path)


def test_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "notes.jsonl"
    rows = [
        {"id": "a", "text": "t1", "codes": ["E11.9", "ICD-10-PCS:0DTJ4ZZ"]},
        {"id": "b", "text": "t2", "codes": [{"system": "CPT", "code": "99213"}]},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    notes = load_jsonl(p)
    assert notes[0].codes == [("ICD-10-CM", "E11.9"), ("ICD-10-PCS", "0DTJ4ZZ")]
    assert notes[1].codes_for("P") == ["CPT:99213"]
    assert fingerprint(notes) == fingerprint(list(reversed(notes)))
    p.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1"):
        load_jsonl(p)


def test_guess_system() -> None:
    assert guess_system("e11.22") == "ICD-10-CM"
    assert guess_system("0DTJ4ZZ") == "ICD-10-PCS"
    assert guess_system("99213") == "CPT"
    assert guess_system("J1100") == "HCPCS"
    assert guess_system("bw03", "P") == "ICD-10-PCS"


def test_real_codiesp_dev_loads() -> None:
    folder = shared_path("codiesp", "dev")
    notes = load_codiesp(folder)
    assert len(notes) == 250
    assert sum(len(n.codes_for("D")) for n in notes) > 2000
