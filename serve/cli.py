"""``clinicode serve`` and ``clinicode keys``: run the API and review page, manage API keys."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    keys_app = typer.Typer(
        help="Create, list and revoke API keys (stored hashed; running servers pick up "
        "changes within seconds).",
        no_args_is_help=True,
    )
    app.add_typer(keys_app, name="keys")
    feedback_app = typer.Typer(help="The stored notes and coder decisions.", no_args_is_help=True)
    app.add_typer(feedback_app, name="feedback")
    app.command()(serve)
    keys_app.command("create")(keys_create)
    keys_app.command("list")(keys_list)
    keys_app.command("revoke")(keys_revoke)
    feedback_app.command("purge")(feedback_purge)


def serve(
    host: str | None = typer.Option(None, help="Interface (default CLINICODE_HOST, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default CLINICODE_PORT, 8000)."),
    workers: int | None = typer.Option(
        None, min=1, help="Worker processes (default CLINICODE_WORKERS, 1)."
    ),
) -> None:
    """Run the HTTP API, its docs (/docs) and the review page (/).

    With no API key configured, the first run creates one, stores only its hash under the
    data dir and prints it once.
    """
    import uvicorn

    from clinicode.settings import get_settings

    from .auth import ensure_first_key
    from .store import FeedbackStore

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = FeedbackStore(settings.resolved_database_url)
    store.init()  # once, before the workers start
    store.close()
    key = ensure_first_key(settings)
    h = host or settings.host
    p = port or settings.port
    if key is not None:
        bar = "=" * 72
        typer.echo(
            f"{bar}\nNo API key was configured, so one was created (admin; stored hashed in\n"
            f"{settings.api_keys_file}). It is shown only this once; keep it:\n\n"
            f"    {key}\n\n"
            f"Sign in with it at http://{h}:{p}/ or send it as 'Authorization: Bearer KEY'.\n"
            f"{bar}",
            err=True,
        )
    uvicorn.run(
        "clinicode.serve.app:create_app",
        factory=True,
        host=h,
        port=p,
        workers=workers or settings.workers,
        log_level=settings.log_level,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_s,
    )


def keys_create(
    admin: bool = typer.Option(
        False, "--admin", help="May also export feedback (which holds note text)."
    ),
    label: str = typer.Option("", help="A note to tell keys apart."),
    tenant: str = typer.Option(
        "default", help="The tenant whose notes and decisions this key reads and writes."
    ),
) -> None:
    """Create a key, store its hash and print the key once (running servers accept it within
    a few seconds)."""
    from clinicode.settings import get_settings

    from .auth import Role, create_key

    role: Role = "admin" if admin else "user"
    key, kid = create_key(get_settings(), role=role, label=label, tenant=tenant)
    typer.echo(f"key id {kid} ({role}, tenant {tenant}); the key, shown only now:", err=True)
    typer.echo(key)


def keys_revoke(
    key_id: str = typer.Argument(..., help="The key id `clinicode keys list` shows."),
) -> None:
    """Revoke a key: running servers refuse it within a few seconds (the record stays in the
    key file, marked revoked, for the audit trail)."""
    from clinicode.settings import get_settings

    from .auth import RELOAD_S, revoke_key

    rec = revoke_key(get_settings(), key_id)
    typer.echo(
        f"revoked {rec['id']} ({rec.get('role', 'user')}, {rec.get('label', '')}) at "
        f"{rec['revoked_at']}; refused by running servers within {RELOAD_S:.0f} s"
    )


def feedback_purge(
    days: int | None = typer.Option(
        None,
        min=0,
        help="Blank note texts older than this many days (default: CLINICODE_NOTE_RETENTION_DAYS).",
    ),
) -> None:
    """Blank stored note texts past the retention period; decisions, digests and the audit
    trail stay, and the purged notes leave the training export."""
    from clinicode.errors import InputError
    from clinicode.settings import get_settings

    from .store import FeedbackStore, retention_cutoff

    settings = get_settings()
    keep = days if days is not None else settings.note_retention_days
    if keep is None:
        raise InputError("no retention period: pass --days N or set CLINICODE_NOTE_RETENTION_DAYS")
    store = FeedbackStore(settings.resolved_database_url)
    try:
        n = store.purge_texts(retention_cutoff(keep))
    finally:
        store.close()
    typer.echo(f"purged the text of {n} note version(s) older than {keep} day(s)")


def keys_list() -> None:
    """Ids, roles, tenants, states and labels of the keys in the key file (never the keys)."""
    from clinicode.settings import get_settings

    from .auth import read_key_file

    settings = get_settings()
    rows = read_key_file(settings.api_keys_file)
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r.get("revoked_at") else "active"
        typer.echo(
            f"{r.get('id', '?')}  {r.get('role', 'user'):5}  {r.get('tenant', 'default'):12}  "
            f"{r.get('created_at', '')}  {state:28}  {r.get('label', '')}"
        )
    if settings.api_keys is not None or settings.admin_api_keys is not None:
        typer.echo("(and the keys in CLINICODE_API_KEYS / CLINICODE_ADMIN_API_KEYS)")
    if not rows and settings.api_keys is None and settings.admin_api_keys is None:
        typer.echo("no keys: `clinicode serve` creates one on its first run", err=True)
