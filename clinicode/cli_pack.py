"""``clinicode pack``: make a pack-signing key, sign a model pack, check one.

A signed pack (``manifest.json.seal``) is loaded only when its signature matches the key of
``CLINICODE_PACK_SIGNING_KEY_FILE``; with ``CLINICODE_REQUIRE_SIGNED_PACKS=1`` an unsigned pack
is refused. Keep the key outside the pack folders (see :mod:`clinicode.integrity`).
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    pack_app = typer.Typer(help="Sign and check model packs.", no_args_is_help=True)
    app.add_typer(pack_app, name="pack")
    pack_app.command("signing-key")(signing_key)
    pack_app.command("sign")(sign)
    pack_app.command("verify")(verify)


def _key(path: Path | None) -> bytes:
    from clinicode.errors import InputError
    from clinicode.integrity import read_key_file
    from clinicode.settings import get_settings

    where = path or get_settings().pack_signing_key_file
    if where is None:
        raise InputError("no signing key: pass --key FILE or set CLINICODE_PACK_SIGNING_KEY_FILE")
    return read_key_file(where)


KeyOpt = typer.Option(None, "--key", help="Key file (default CLINICODE_PACK_SIGNING_KEY_FILE).")


def signing_key(
    path: Path = typer.Argument(..., help="Where to write the new key (outside any pack)."),
) -> None:
    """Create a random pack-signing key (mode 0600); point CLINICODE_PACK_SIGNING_KEY_FILE at
    it on every machine that builds or loads packs."""
    from clinicode.integrity import create_key_file, key_id

    key = create_key_file(path)
    typer.echo(f"signing key {key_id(key)} written to {path}")


def sign(
    directory: Path = typer.Argument(..., help="The model pack folder."),
    key_file: Path | None = KeyOpt,
) -> None:
    """Sign a pack after checking its files against its manifest."""
    from clinicode.models import pack as pack_mod

    pack_mod.verify(directory, signing=pack_mod.SigningPolicy())  # hashes first
    key = _key(key_file)
    pack_mod.sign(directory, key)
    typer.echo(f"signed {directory}")


def verify(
    directory: Path = typer.Argument(..., help="The model pack folder."),
    key_file: Path | None = KeyOpt,
) -> None:
    """Check a pack's signature and file hashes (exit 2 when it would be refused)."""
    from clinicode.models import pack as pack_mod

    policy = pack_mod.SigningPolicy(key=_key(key_file), required=True)
    manifest = pack_mod.verify(directory, signing=policy)
    typer.echo(f"{manifest.get('name')} {manifest.get('version')}: signature and files match")
