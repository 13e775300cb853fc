"""Training on a coder's review (the feedback export): explicit negatives, unreviewed codes,
the base pack's code sets and lineage, and exports made on another code-set version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tests.training.tiny_pack import build_tiny_pack, tiny_notes


def _export_rows(code_sets: dict[str, str]) -> list[dict[str, Any]]:
    """The tiny notes as the feedback export writes them, each with one rejected code."""
    rows = []
    for n in tiny_notes():
        rejected = "I10" if ("ICD-10-CM", "I10") not in n.codes else "R50.9"
        rows.append(
            {
                "id": n.id,
                "note_id": n.id,
                "version": 1,
                "text": n.text,
                "codes": [{"system": s, "code": c} for s, c in n.codes],
                "rejected": [{"system": "ICD-10-CM", "code": rejected}],
                "unreviewed": [{"system": "ICD-10-CM", "code": "J45.901"}]
                if ("ICD-10-CM", "J45.901") not in n.codes
                else [],
                "code_sets": code_sets,
                "model_versions": ["tiny"],
            }
        )
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_load_jsonl_reads_the_review(tmp_path: Path) -> None:
    from clinicode.training.data import fingerprint, load_jsonl

    notes = load_jsonl(_write(tmp_path / "e.jsonl", _export_rows({"ICD-10-CM": "FY2026"})))
    first = notes[0]
    assert first.codes == [("ICD-10-CM", "E11.9")]
    assert first.rejected == [("ICD-10-CM", "I10")]
    assert first.unreviewed == [("ICD-10-CM", "J45.901")]
    assert first.code_sets == {"ICD-10-CM": "FY2026"}
    # the review is part of the data's identity
    plain = [type(n)(id=n.id, text=n.text, codes=n.codes) for n in notes]
    assert fingerprint(notes) != fingerprint(plain)


def test_confirmed_partial_pcs_codes_are_labels(tmp_path: Path) -> None:
    """An export's ``partial_codes`` (partial ICD-10-PCS codes a coder confirmed) are read into
    the note's labels, as ``--format codiesp`` reads CodiEsp's 4-character codes."""
    from clinicode.training.data import load_jsonl

    rows = _export_rows({"ICD-10-CM": "FY2026"})
    rows[0]["partial_codes"] = [{"system": "ICD-10-PCS", "code": "BW03"}]
    first = load_jsonl(_write(tmp_path / "e.jsonl", rows))[0]
    assert first.codes == [("ICD-10-CM", "E11.9"), ("ICD-10-PCS", "BW03")]
    assert first.codes_for("P") == ["ICD-10-PCS:BW03"]


def test_rows_use_rejections_as_negatives_and_drop_unreviewed(kb: Any) -> None:
    from clinicode.training.rows import build_rows

    top = [
        ("ICD-10-CM:E11.9", 0.9, 0.9),
        ("ICD-10-CM:I10", 0.6, 0.6),
        ("ICD-10-CM:J18.9", 0.4, 0.4),
        ("ICD-10-CM:R50.9", 0.2, 0.2),
    ]
    args: dict[str, Any] = {
        "candidates": None,
        "kb": kb,
        "systems": ("ICD-10-CM",),
        "priors": [{}],
        "doc_tops": [top],
        "doc_sims": [0.5],
    }
    text = ["Type 2 diabetes, hypertension, pneumonia, fever."]
    plain = build_rows(text, [[]], [[]], [{"ICD-10-CM:E11.9"}], **args)
    assert set(plain.keys) == {k for k, _, _ in top}
    reviewed = build_rows(
        text,
        [[]],
        [[]],
        [{"ICD-10-CM:E11.9"}],
        rejected=[{"ICD-10-CM:I10"}],
        unreviewed=[{"ICD-10-CM:J18.9"}],
        **args,
    )
    label = dict(zip(reviewed.keys, reviewed.y, strict=True))
    assert label == {"ICD-10-CM:E11.9": 1, "ICD-10-CM:I10": 0, "ICD-10-CM:R50.9": 0}
    assert reviewed.explicit_negatives == 1 and reviewed.unlabeled_dropped == 1
    # a rejected code stays a negative even where a stale gold list holds it
    again = build_rows(text, [[]], [[]], [{"ICD-10-CM:I10"}], rejected=[{"ICD-10-CM:I10"}], **args)
    assert dict(zip(again.keys, again.y, strict=True))["ICD-10-CM:I10"] == 0


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    from clinicode.cli import _register_plugins
    from clinicode.cli import app as root

    _register_plugins()
    return root


@pytest.mark.slow
def test_train_with_base_keeps_lineage_and_code_sets(
    app: typer.Typer, tmp_path: Path, kb: Any, kb_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLINICODE_DATA_DIR", str(kb_path.parent))
    from clinicode.hashing import sha256_file
    from clinicode.models import pack as pack_mod
    from clinicode.settings import get_settings

    get_settings.cache_clear()
    base = tmp_path / "base"
    build_tiny_pack(kb, base)
    base_manifest = pack_mod.read_manifest(base)
    export = _write(tmp_path / "e.jsonl", _export_rows(dict(base_manifest["code_sets"])))
    out = tmp_path / "new"
    argv = ["train", "--base", str(base), "--data", str(export), "--format", "jsonl"]
    r = CliRunner().invoke(app, [*argv, "--out", str(out), "--folds", "3", "--quiet"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["explicit_negative_rows"] > 0
    assert report["unreviewed_rows_dropped"] > 0
    manifest = pack_mod.read_manifest(out)
    assert manifest["code_sets"] == base_manifest["code_sets"]
    parent = manifest["lineage"]["parent"]
    assert parent["version"] == base_manifest["version"] and parent["name"] == "tiny"
    assert parent["manifest_sha256"] == sha256_file(base / "manifest.json")
    data = manifest["lineage"]["training_data"]
    assert data["notes"] == len(tiny_notes()) and data["rejected"] == len(tiny_notes())
    assert pack_mod.load(out, kb=kb).lineage == manifest["lineage"]

    # an export made on another ICD-10-CM release is refused with the reason (exit 2)
    other = _write(tmp_path / "old.jsonl", _export_rows({"ICD-10-CM": "FY2019"}))
    argv = ["train", "--base", str(base), "--data", str(other), "--format", "jsonl"]
    r = CliRunner().invoke(app, [*argv, "--out", str(tmp_path / "x"), "--quiet"])
    from clinicode.errors import InputError

    assert isinstance(r.exception, InputError)
    assert "coded with ICD-10-CM FY2019" in str(r.exception) and not (tmp_path / "x").exists()


def test_procedure_rows_get_their_own_ranker_only_with_the_pcs_generator() -> None:
    """Retraining a pack whose candidate index holds the ICD-10-PCS generator gives procedure
    rows a ranker of their own (falling back to the generator's confidence); without it the
    pack keeps one GBDT, as before."""
    from clinicode.models.ranker import GBDTRanker, TaskRanker
    from clinicode.training.train import TrainConfig, make_ranker

    names = ["lex_max", "is_dx", "pcs_hit", "pcs_score"]
    r = make_ranker(TrainConfig(procedure_min_positives=12), names, ["lexical", "pcs"])
    assert isinstance(r, TaskRanker)
    assert (r.route, r.hit, r.score, r.min_positives) == (1, 2, 3, 12)
    assert type(make_ranker(TrainConfig(), names, ["lexical", "encoder"])) is GBDTRanker
