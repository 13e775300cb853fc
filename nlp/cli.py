"""``clinicode nlp``: inspect what the NLP pipeline reads in a note.

clinicode nlp NOTE.txt            # sections and mentions with their assertions
clinicode nlp - --json < note     # the same as JSON
clinicode nlp assertions --tsv FILE   # NegEx-format TSV in, predictions appended out
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer


def _fail(message: str) -> NoReturn:
    from clinicode.console import fail

    fail(message)


def _read_note(target: str) -> str:
    if target == "-":
        data = sys.stdin.buffer.read()
        where = "standard input"
    else:
        path = Path(target)
        if not path.exists():
            _fail(f"file not found: {path}")
        if not path.is_file():
            _fail(f"not a file: {path}")
        data = path.read_bytes()
        where = str(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _fail(f"{where} is not UTF-8 text")
    if not text.strip():
        _fail(f"{where} holds no text")
    from clinicode.settings import get_settings

    limit = get_settings().max_text_chars
    if len(text) > limit:
        _fail(
            f"{where} has {len(text)} characters; the limit is {limit} (CLINICODE_MAX_TEXT_CHARS)"
        )
    return text


def _run_assertions(tsv: Path | None) -> None:
    if tsv is None:
        _fail("`clinicode nlp assertions` needs --tsv FILE (a NegEx-format TSV with a header row)")
    if not tsv.exists() or not tsv.is_file():
        _fail(f"file not found: {tsv}")
    from clinicode.nlp.assertion_eval import main_tsv

    try:
        main_tsv(tsv, sys.stdout)
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {tsv} as a NegEx-format TSV: {exc}")


def _print_table(sections: list[dict[str, Any]], mentions: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    st = Table("section", "header", "start", "end", title="Sections")
    for s in sections:
        st.add_row(str(s["category"] or "-"), s["header"], str(s["start"]), str(s["end"]))
    console.print(st)
    mt = Table(
        "start",
        "end",
        "text",
        "kind",
        "section",
        "assertion",
        "cue",
        "attributes",
        "concepts",
        title=f"Mentions ({len(mentions)})",
    )
    for m in mentions:
        mt.add_row(
            str(m.start),
            str(m.end),
            m.text,
            m.kind,
            m.section or "-",
            m.assertion,
            m.assertion_cue or "",
            ", ".join(f"{a.name}={a.value}" for a in m.attributes),
            " ".join(c.split(":", 1)[1] for c in m.concepts[:3])
            + (" ..." if len(m.concepts) > 3 else ""),
        )
    console.print(mt)


def register(app: typer.Typer) -> None:
    """Add the ``nlp`` command to the root app."""

    @app.command("nlp")
    def nlp_command(
        target: str | None = typer.Argument(
            None,
            help="A note file, '-' for standard input, or 'assertions' (with --tsv).",
            show_default=False,
        ),
        tsv: Path | None = typer.Option(
            None, "--tsv", help="With 'assertions': a NegEx-format TSV (report, concept, sentence)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
        kb_path: Path | None = typer.Option(None, "--kb", help="Knowledge-base file."),
    ) -> None:
        """Sections and mentions (with assertions and attributes) that the pipeline finds in a note."""
        if target is None:
            _fail("give a note file, '-' for standard input, or 'assertions --tsv FILE'")
        if target == "assertions" and not Path(target).is_file():
            _run_assertions(tsv)
            return
        if tsv is not None:
            _fail("--tsv goes with the 'assertions' command: clinicode nlp assertions --tsv FILE")
        text = _read_note(target)
        from clinicode.nlp.pipeline import doc_to_mentions, load_pipeline

        kb = None
        if kb_path is not None:
            from clinicode.kb import open_kb

            if not kb_path.exists():
                _fail(f"knowledge base not found: {kb_path}")
            kb = open_kb(kb_path)
        pipe = load_pipeline(kb)
        doc = pipe.process(text)
        sections = pipe.sections(doc)
        mentions = doc_to_mentions(doc)
        if as_json:
            payload = {
                "sections": sections,
                "mentions": [m.model_dump() for m in mentions],
            }
            sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
            return
        _print_table(sections, mentions)
