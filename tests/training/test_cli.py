"""train / evaluate / suggest through the CLI on a tiny JSONL corpus (no candidate index)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.training.tiny_pack import tiny_notes


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    from clinicode.cli import _register_plugins
    from clinicode.cli import app as root

    _register_plugins()
    return root


@pytest.fixture
def kb_data_dir(kb_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The session's knowledge base as the data dir the CLI opens (settings read afresh
    before and after)."""
    monkeypatch.setenv("CLINICODE_DATA_DIR", str(kb_path.parent))
    from clinicode.settings import get_settings

    get_settings.cache_clear()
    yield kb_path.parent
    get_settings.cache_clear()


def _jsonl(path: Path) -> Path:
    rows = [
        {"id": n.id, "text": n.text, "codes": [f"{s}:{c}" for s, c in n.codes]}
        for n in tiny_notes()
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_train_evaluate_suggest(app: typer.Typer, tmp_path: Path, kb_data_dir: Path) -> None:
    data = _jsonl(tmp_path / "notes.jsonl")
    pack = tmp_path / "pack"
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--format",
            "jsonl",
            "--out",
            str(pack),
            "--generators",
            "none",
            "--folds",
            "3",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (pack / "manifest.json").is_file()
    preds = tmp_path / "preds.tsv"
    r = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(data),
            "--format",
            "jsonl",
            "--task",
            "D",
            "--model",
            str(pack),
            "--predictions-out",
            str(preds),
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert 0.0 < res["map"] <= 1.0 and res["documents"] == 12
    assert {"map_official", "micro_f1", "p_at_5", "p_at_10", "r_at_10", "r_at_50"} <= set(res)
    first = preds.read_text().splitlines()[0].split("\t")
    assert first[0] == "n0" and first[1] == first[1].lower()
    r = runner.invoke(app, ["suggest", "--model", str(pack), "-"], input="Essential hypertension.")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {"model", "code_sets", "codes", "candidates", "suppressed"} <= set(out)


def test_bad_arguments_are_clear_errors(app: typer.Typer, tmp_path: Path) -> None:
    from clinicode.errors import InputError

    runner = CliRunner()
    r = runner.invoke(app, ["train", "--data", str(tmp_path), "--format", "xml", "--out", "x"])
    assert isinstance(r.exception, InputError)
    r = runner.invoke(app, ["suggest", str(tmp_path / "missing.txt")])
    assert isinstance(r.exception, InputError)


def test_train_knows_the_encoder_generator_and_refuses_others(
    app: typer.Typer, tmp_path: Path, kb_data_dir: Path
) -> None:
    data = _jsonl(tmp_path / "notes.jsonl")
    args = ["train", "--data", str(data), "--format", "jsonl", "--folds", "3", "--quiet"]
    from clinicode.errors import InputError

    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a"), "--generators", "bogus"])
    assert isinstance(r.exception, InputError) and "bogus" in str(r.exception)
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b"), "--generators", "encoder"])
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "b" / "config.json").read_text())
    assert manifest["generators"] == ["encoder"]
