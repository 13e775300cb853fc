"""``clinicode suggest``: one note through the engine, its result as JSON.

Registered by ``clinicode/cli.py`` beside the training commands; it lives here, with the
facade, because training never imports the engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from clinicode.errors import InputError

ModelOpt = typer.Option(None, "--model", help="Model pack folder (default: the default pack).")


def suggest_cmd(
    file: str = typer.Argument(..., help="A note file, or - for standard input."),
    setting: str = typer.Option("outpatient", help="inpatient | outpatient"),
    model: Path | None = ModelOpt,
    top_k: int | None = typer.Option(None, "--top-k", help="Candidates per system to list."),
) -> None:
    """Suggest codes for one note and print the result as JSON."""
    from clinicode.engine import load

    if setting not in ("inpatient", "outpatient"):
        raise InputError(f"--setting must be inpatient or outpatient, not {setting!r}")
    if file == "-":
        text = sys.stdin.read()
    else:
        path = Path(file)
        if not path.is_file():
            raise InputError(f"file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path} is not UTF-8 text") from None
    engine = load(model)
    result = engine.suggest(text, setting=setting, top_k=top_k)
    sys.stdout.write(result.model_dump_json(indent=2) + "\n")


def register(app: typer.Typer) -> None:
    app.command("suggest")(suggest_cmd)
