"""``clinicode packs``: the model packs of the data dir, and which one serves.

``list`` and ``show`` print each pack's version, parent, training data and figures (from its
manifest); ``promote NAME`` makes a pack serve (a running server switches to it in the
background within a few seconds, without a restart) and ``rollback`` serves the one before.
The logic is :mod:`clinicode.models.pack_registry`'s (the service's admin route uses it too).
"""

from __future__ import annotations

import json
import sys

import typer

JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")


def register(app: typer.Typer) -> None:
    packs_app = typer.Typer(
        help="List the model packs, show one, promote one to serve, roll back.",
        no_args_is_help=True,
    )
    app.add_typer(packs_app, name="packs")
    packs_app.command("list")(list_cmd)
    packs_app.command("show")(show_cmd)
    packs_app.command("promote")(promote_cmd)
    packs_app.command("rollback")(rollback_cmd)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _serving_note() -> str | None:
    from clinicode.settings import get_settings

    s = get_settings()
    if s.model_dir is not None:
        return (
            f"CLINICODE_MODEL_DIR is set ({s.model_dir}): the service loads that pack whatever "
            "is promoted; unset it for the promotion to take effect"
        )
    return None


def list_cmd(as_json: bool = JsonOpt) -> None:
    """Every pack of the data dir: the serving one is marked."""
    from rich.console import Console
    from rich.table import Table

    from clinicode.models.pack_registry import current_name, list_packs
    from clinicode.settings import get_settings

    s = get_settings()
    current = current_name(s)
    rows = [{**p.summary(), "serving": p.name == current} for p in list_packs(s)]
    if as_json:
        _print_json(rows)
        return
    table = Table("", "name", "version", "parent", "notes", "created")
    for r in rows:
        parent = r["parent"]["version"] if r["parent"] else "-"
        table.add_row(
            "*" if r["serving"] else "",
            r["name"],
            r["version"],
            parent,
            str(r["training_data"].get("notes", r["notes_trained_on"] or "-")),
            str(r["created_at"] or "-"),
        )
    Console().print(table)
    note = _serving_note()
    if note:
        typer.echo(note, err=True)


def show_cmd(name: str = typer.Argument(..., help="The pack's folder name.")) -> None:
    """One pack: version, parent, code sets, training data summary and figures (JSON)."""
    from clinicode.models.pack_registry import current_name, get_pack
    from clinicode.settings import get_settings

    s = get_settings()
    entry = get_pack(s, name)
    _print_json({**entry.summary(), "serving": entry.name == current_name(s)})


def promote_cmd(name: str = typer.Argument(..., help="The pack's folder name.")) -> None:
    """Make a pack serve (checked first: files, signature, code sets of the KB)."""
    from clinicode.kb import open_kb
    from clinicode.models.pack_registry import promote
    from clinicode.settings import get_settings

    row = promote(get_settings(), name, kb=open_kb())
    typer.echo(f"promoted {row['pack']} ({row['version']}); a running server switches to it")
    note = _serving_note()
    if note:
        typer.echo(note, err=True)


def rollback_cmd() -> None:
    """Serve the pack that served before the current one."""
    from clinicode.models.pack_registry import rollback
    from clinicode.settings import get_settings

    row = rollback(get_settings())
    typer.echo(f"rolled back to {row['pack']} ({row['version']})")
