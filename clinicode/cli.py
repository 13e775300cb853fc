"""The ``clinicode`` command line.

Sub-commands owned by other packages (``nlp``, ``suggest``/``train``/``evaluate``, ``serve``)
register themselves through a ``register(app)`` function in their own ``cli`` module, imported
here lazily so that ``clinicode version`` stays instant.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clinicode import __version__
from clinicode.console import err_console, fail
from clinicode.errors import ClinicodeError
from clinicode.kb.views import record_json, search_json

app = typer.Typer(
    name="clinicode",
    help="Computer-assisted coding: ICD-10-CM, ICD-10-PCS, CPT and HCPCS suggestions with evidence.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
codes_app = typer.Typer(help="Look up, search and import code sets.", no_args_is_help=True)
app.add_typer(codes_app, name="codes")

console = Console()

# Modules that add their own commands to ``app``: each has ``register(app: typer.Typer)``.
_PLUGINS = (
    "clinicode.nlp.cli",
    "clinicode.training.cli",
    "clinicode.cli_suggest",
    "clinicode.serve.cli",
    "clinicode.cli_pack",
    "clinicode.cli_batch",
    "clinicode.cli_packs",
)

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")
KbOpt = typer.Option(None, "--kb", help="Knowledge-base file (default: under CLINICODE_DATA_DIR).")


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _kb(path: Path | None) -> Any:
    from clinicode.kb import open_kb

    return open_kb(path)


@app.command()
def version(as_json: bool = JsonOpt, kb_path: Path | None = KbOpt) -> None:
    """Package version and the versions of the loaded code sets."""
    kb = _kb(kb_path)
    systems = {
        s.system: {
            "version": s.version,
            "codes": s.n_codes,
            "billable": s.n_billable,
            "source": s.source,
            **s.extra,
        }
        for s in kb.systems()
    }
    if as_json:
        print_json({"clinicode": __version__, "code_sets": systems})
        return
    console.print(f"clinicode {__version__}")
    for name, s in systems.items():
        console.print(
            f"  {name} {s['version']}: {s['billable']} billable of {s['codes']} ({s['source']})"
        )


@app.command()
def setup(
    kb_path: Path | None = KbOpt,
    force: bool = typer.Option(
        False,
        "--force",
        help="Rebuild ICD-10-CM even if up to date; a damaged knowledge base is moved aside "
        "(kept) and built anew, after which the official files must be imported again.",
    ),
) -> None:
    """Build everything the default engine needs (code sets, default model pack); idempotent.

    A damaged knowledge base is refused (exit 2) rather than rebuilt over its imports."""
    from clinicode.kb import build_icd10cm, clear_cache, default_kb_path
    from clinicode.kb.fetch import fetch_on_setup

    path = kb_path or default_kb_path()
    info = build_icd10cm(path, force=force)
    console.print(f"{info.system} {info.version}: {info.n_billable} billable codes ({path})")
    # the official Index/tables, ICD-10-PCS and HCPCS: fetched when missing, else one line
    line = fetch_on_setup(
        path, lambda msg: console.print(f"[dim]{escape(msg)}[/]", highlight=False, soft_wrap=True)
    )
    clear_cache()
    if line is not None:
        console.print(f"[dim]{escape(line)}[/]", soft_wrap=True, highlight=False)
    try:
        builder = importlib.import_module("clinicode.training.default_pack")
    except ModuleNotFoundError as exc:
        if exc.name != "clinicode.training.default_pack":
            raise
        console.print("[dim]no default model pack builder installed yet[/]")
        return
    builder.ensure_default_pack(kb_path=path)


@codes_app.command("build")
def codes_build(
    force: bool = typer.Option(
        False, help="Rebuild even if up to date (a damaged KB is moved aside and built anew)."
    ),
    kb_path: Path | None = KbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build (or refresh) the ICD-10-CM part of the knowledge base from the shipped XML."""
    from clinicode.kb import build_icd10cm, default_kb_path

    path = kb_path or default_kb_path()
    info = build_icd10cm(path, force=force)
    if as_json:
        print_json(
            {
                "path": str(path),
                "system": info.system,
                "version": info.version,
                "codes": info.n_codes,
                "billable": info.n_billable,
            }
        )
    else:
        console.print(f"{info.system} {info.version}: {info.n_billable} billable codes -> {path}")


_NOTE_LABELS = {
    "inclusion": "Inclusion terms",
    "includes": "Includes",
    "excludes1": "Excludes1",
    "excludes2": "Excludes2",
    "code_first": "Code first",
    "use_additional": "Use additional code",
    "code_also": "Code also",
    "seven_chr_note": "7th character",
    "notes": "Notes",
}


@codes_app.command("lookup")
def codes_lookup(
    code: str = typer.Argument(..., help="A code, e.g. E11.22, e1122, 0DTJ4ZZ, J1100, 99213."),
    system: str | None = typer.Option(None, help="ICD-10-CM, ICD-10-PCS, CPT or HCPCS."),
    as_json: bool = JsonOpt,
    kb_path: Path | None = KbOpt,
) -> None:
    """Title, notes, parents and children of one code."""
    kb = _kb(kb_path)
    if system is not None and kb.system_info(system) is None:
        fail(f"code system {system!r} is not loaded; loaded: {', '.join(kb.versions()) or 'none'}")
    rec = kb.get(code, system)
    if rec is None:
        fail(f"code {code!r} not found in {system or 'any loaded code set'}")
    data = record_json(kb, rec)
    if as_json:
        print_json(data)
        return
    flag = "billable" if rec.billable else "not billable"
    console.print(
        f"[bold]{rec.code}[/] {rec.title}  [dim]({rec.system} {data['version']}, {flag})[/]"
    )
    if rec.description_source == "clinicode-own-words":
        console.print(
            "[yellow]Description written by Clinicode in its own words, not the official descriptor.[/]"
        )
    for kind, label in _NOTE_LABELS.items():
        for note in rec.notes.get(kind, []):
            console.print(f"  [cyan]{label}:[/] {note}")
    for kind, items in data["inherited_notes"].items():
        for item in items:
            console.print(
                f"  [cyan]{_NOTE_LABELS.get(kind, kind)}[/] [dim](from {item['from']}):[/] {item['note']}"
            )
    if rec.seven_chr:
        for ch, meaning in rec.seven_chr.items():
            console.print(f"  [cyan]7th character {ch}:[/] {meaning}")
    if data["parents"]:
        console.print("Parents: " + " > ".join(f"{p['code']}" for p in reversed(data["parents"])))
    if data["children"]:
        console.print("Children:")
        for c in data["children"]:
            console.print(
                f"  {c['code']}  {c['title']}"
                + ("" if c["billable"] else "  [dim](not billable)[/]")
            )


@codes_app.command("search")
def codes_search(
    text: str = typer.Argument(
        ..., help="Words to search for in titles, inclusion and index terms."
    ),
    system: list[str] | None = typer.Option(
        None, "--system", help="Restrict to a system (repeatable)."
    ),
    limit: int = typer.Option(20, min=1, max=500, help="How many results."),
    billable_only: bool = typer.Option(False, "--billable", help="Only billable codes."),
    as_json: bool = JsonOpt,
    kb_path: Path | None = KbOpt,
) -> None:
    """Ranked text search over the code sets."""
    if not text.strip():
        fail("search text is empty")
    kb = _kb(kb_path)
    for s in system or []:
        if kb.system_info(s) is None:
            fail(f"code system {s!r} is not loaded; loaded: {', '.join(kb.versions())}")
    rows = search_json(kb, text, systems=system or None, limit=limit, billable_only=billable_only)
    if as_json:
        print_json(rows)
        return
    table = Table("code", "system", "title", "matched", "billable")
    for r in rows:
        table.add_row(
            r["code"],
            f"{r['system']} {r['version'] or ''}",
            r["title"],
            "" if r["matched"] == r["title"] else f"{r['matched']} [{r['matched_source']}]",
            "yes" if r["billable"] else "no",
        )
    console.print(table)


@codes_app.command("import")
def codes_import(
    kind: str = typer.Argument(
        ..., help="index | neoplasm | drug | eindex | pcs | pcs-tables | hcpcs | cpt"
    ),
    path: Path = typer.Argument(..., help="The official file (or zip) to import."),
    version: str | None = typer.Option(None, help="Version label, when the file does not say it."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Import even when the file looks incomplete (cut mid-line, missing its last "
        "sections, fewer records than its release).",
    ),
    as_json: bool = JsonOpt,
    kb_path: Path | None = KbOpt,
) -> None:
    """Import an official code-set file the user supplies. A file that looks truncated is
    refused (exit 2) and the knowledge base keeps what it had."""
    from clinicode.kb import build_icd10cm, clear_cache, default_kb_path
    from clinicode.kb.importers import IMPORTERS, run_import

    if kind not in IMPORTERS:
        fail(f"unknown import kind {kind!r}; choose one of: {', '.join(IMPORTERS)}")
    if not path.exists():
        fail(f"file not found: {path}")
    target = kb_path or default_kb_path()
    build_icd10cm(target)
    report = run_import(kind, path, target, version=version, force=force)
    clear_cache()
    if as_json:
        print_json(report)
    else:
        console.print(" ".join(f"{k}={v}" for k, v in report.items()))
        if kind in ("index", "neoplasm", "drug", "eindex"):
            console.print(
                "[dim]the default model pack is rebuilt with these terms on the next "
                "`clinicode setup` (or `make serve`)[/]"
            )


@codes_app.command("fetch")
def codes_fetch(
    year: str | None = typer.Option(None, help="Fiscal year, e.g. 2026 (default: the latest)."),
    source: str | None = typer.Option(
        None,
        "--from",
        help="A folder (same file names, or the extracted files) or a mirror base URL.",
    ),
    kinds: str | None = typer.Option(
        None, help="Comma-separated: index,neoplasm,drug,eindex,pcs,hcpcs (default: all)."
    ),
    timeout: float = typer.Option(60.0, min=1, max=3600, help="Seconds per network operation."),
    force: bool = typer.Option(
        False, "--force", help="Import files that look incomplete (see `codes import --force`)."
    ),
    as_json: bool = JsonOpt,
    kb_path: Path | None = KbOpt,
) -> None:
    """Download the official CMS releases of a fiscal year, check them and import them."""
    from clinicode.kb import build_icd10cm, clear_cache, default_kb_path
    from clinicode.kb.fetch import fetch_release, parse_kinds
    from clinicode.settings import get_settings

    target = kb_path or default_kb_path()
    wanted = parse_kinds(kinds)
    build_icd10cm(target)
    result = fetch_release(
        target,
        year=year,
        source=source,
        kinds=wanted,
        timeout=timeout,
        downloads_dir=get_settings().downloads_dir,
        force=force,
        log=lambda msg: err_console.print(
            f"[dim]{escape(msg)}[/]", highlight=False, soft_wrap=True
        ),
    )
    clear_cache()
    if as_json:
        print_json(result)
        return
    for rep in result["imports"]:
        counts = " ".join(f"{k}={v}" for k, v in rep["counts"].items())
        console.print(
            f"{rep['kind']}: {rep['system']} {rep['version']} {counts}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        "[dim]the default model pack is rebuilt with the new terms on the next "
        "`clinicode setup` (or `make serve`)[/]"
    )


@codes_app.command("systems")
def codes_systems(as_json: bool = JsonOpt, kb_path: Path | None = KbOpt) -> None:
    """Code sets in the knowledge base, with versions and counts."""
    kb = _kb(kb_path)
    rows = [
        {
            "system": s.system,
            "version": s.version,
            "codes": s.n_codes,
            "billable": s.n_billable,
            "source": s.source,
            "imported_at": s.imported_at,
            **s.extra,
        }
        for s in kb.systems()
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("system", "version", "billable", "codes", "source")
    for r in rows:
        table.add_row(r["system"], r["version"], str(r["billable"]), str(r["codes"]), r["source"])
    console.print(table)


_registered: list[str] = []


def _register_plugins() -> None:
    """Add the plug-ins' commands once (``main`` may run more than once in a process)."""
    if _registered:
        return
    _registered.append("done")
    for mod_name in _PLUGINS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:
                continue
            raise
        mod.register(app)


def main() -> None:
    """Entry point: known errors become a message and exit code 2, never a traceback."""
    _register_plugins()
    try:
        app(standalone_mode=True)
    except ClinicodeError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # an internal error: no traceback (it may quote note text)
        if os.environ.get("CLINICODE_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}. "
            "Set CLINICODE_DEBUG=1 to see the traceback.",
            highlight=False,
        )
        sys.exit(1)


if __name__ == "__main__":  # python -m clinicode.cli
    main()
