from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from clinicode.nlp import cli as nlp_cli


@pytest.fixture()
def app(pipe: Any, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    import clinicode.nlp.pipeline as pipeline

    monkeypatch.setattr(pipeline, "load_pipeline", lambda kb=None, config=None: pipe)
    app = typer.Typer()

    @app.command("version")
    def _version() -> None:  # a second command so that "nlp" stays a sub-command
        pass

    nlp_cli.register(app)
    return app


def test_json_output_for_a_file(app: typer.Typer, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    text = "ASSESSMENT:\n1. DM2 with CKD stage 3. No fever.\n"
    note.write_text(text, encoding="utf-8")
    res = CliRunner().invoke(app, ["nlp", str(note), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["sections"][0]["category"] == "assessment"
    got = {m["text"]: m for m in data["mentions"]}
    assert got["fever"]["assertion"] == "negated"
    for m in data["mentions"]:
        assert text[m["start"] : m["end"]] == m["text"]


def test_stdin_and_table(app: typer.Typer) -> None:
    res = CliRunner().invoke(app, ["nlp", "-"], input="Mother had breast cancer.\n")
    assert res.exit_code == 0, res.output
    assert "breast cancer" in res.stdout and "family" in res.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["nlp"],
        ["nlp", "/no/such/file.txt"],
        ["nlp", "assertions"],
        ["nlp", "assertions", "--tsv", "/no/such.tsv"],
    ],
)
def test_bad_input_exits_2(app: typer.Typer, args: list[str]) -> None:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert "Traceback" not in res.output


def test_empty_and_binary_notes_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    for p in (empty, binary):
        assert CliRunner().invoke(app, ["nlp", str(p)]).exit_code == 2


def test_assertions_tsv_dispatch(app: typer.Typer, tmp_path: Path) -> None:
    tsv = tmp_path / "x.tsv"
    tsv.write_text(
        "report\tconcept\tsentence\tnegation\ttemporality\texperiencer\n"
        "1\tfever\tThe patient denies FEVER.\tNegated\tRecent\tPatient\n",
        encoding="utf-8",
    )
    res = CliRunner().invoke(app, ["nlp", "assertions", "--tsv", str(tsv)])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[1].split("\t")[6] == "Negated"
