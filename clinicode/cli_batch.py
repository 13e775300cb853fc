"""``clinicode batch INPUT OUTPUT``: code a file of notes, one row per note.

Registered by ``clinicode/cli.py``; the work is :mod:`clinicode.batch`'s.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from clinicode.batch.rows import DEFAULT_MAX_CHARS
from clinicode.errors import InputError


def batch_cmd(
    input_path: str = typer.Argument(..., metavar="INPUT", help="JSONL, CSV or Parquet notes."),
    output: str = typer.Argument(
        ..., metavar="OUTPUT", help="out.jsonl (a file) or out.parquet (a folder of parts)."
    ),
    id_column: str = typer.Option("id", "--id-column", help="The column holding note ids."),
    text_column: str = typer.Option("text", "--text-column", help="The column holding notes."),
    input_format: str | None = typer.Option(
        None, "--input-format", help="jsonl | csv | parquet (default: from the suffix)."
    ),
    output_format: str | None = typer.Option(
        None, "--output-format", help="jsonl | parquet (default: from the suffix)."
    ),
    errors: str | None = typer.Option(
        None, "--errors", help="Where skipped rows are reported (default: OUTPUT.errors.jsonl)."
    ),
    model: Path | None = typer.Option(None, "--model", help="Model pack folder."),
    kb_path: Path | None = typer.Option(None, "--kb", help="Knowledge-base file."),
    setting: str = typer.Option("outpatient", help="inpatient | outpatient"),
    system: list[str] | None = typer.Option(
        None, "--system", help="Only these code systems (repeatable)."
    ),
    workers: int = typer.Option(1, "--workers", help="Worker processes (Spark: local cores)."),
    chunk: int = typer.Option(32, "--chunk", help="Notes per engine call and worker."),
    rows_per_file: int = typer.Option(5000, "--rows-per-file", help="Rows per Parquet part."),
    max_chars: int = typer.Option(
        DEFAULT_MAX_CHARS, "--max-chars", help="Longer notes are skipped as oversized."
    ),
    engine: str = typer.Option("local", "--engine", help="local | spark"),
    master: str | None = typer.Option(
        None, "--master", help="Spark master (default: spark-submit's, else local[WORKERS])."
    ),
    partitions: int | None = typer.Option(None, "--partitions", help="Spark partitions."),
    ship_pack: bool = typer.Option(
        False, "--ship-pack", help="Spark: send the pack and KB to executors (SparkFiles)."
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on stderr (default: on a terminal)."
    ),
) -> None:
    """Code every note of INPUT; a rerun skips the notes OUTPUT already holds."""
    from clinicode.batch import BatchOptions

    opts = BatchOptions(
        input=Path(input_path),
        output=Path(output),
        errors=Path(errors) if errors else None,
        input_uri=input_path,
        output_uri=output,
        errors_uri=errors or "",
        input_format=input_format,
        output_format=output_format,
        id_column=id_column,
        text_column=text_column,
        model=model,
        kb=kb_path,
        setting=setting,
        systems=tuple(system) if system else None,
        workers=workers,
        chunk=chunk,
        rows_per_file=rows_per_file,
        max_chars=max_chars,
        progress=progress,
    ).checked()
    if engine == "local":
        from clinicode.batch import run_local

        report = run_local(opts)
    elif engine == "spark":
        from clinicode.batch.spark import run_spark

        report = run_spark(opts, master=master, partitions=partitions, ship_pack=ship_pack)
    else:
        raise InputError(f"--engine must be local or spark, not {engine!r}")
    sys.stdout.write(json.dumps(report.as_json()) + "\n")


def register(app: typer.Typer) -> None:
    app.command("batch")(batch_cmd)
