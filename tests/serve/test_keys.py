"""API keys: hashed at rest, both header forms, roles, first-run key, the keys CLI."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from clinicode.serve.auth import KeyRing, ensure_first_key, hash_key, presented_key
from clinicode.settings import Settings


def test_keyring_from_settings_accepts_plain_and_hashed_entries(tmp_path: Path) -> None:
    s = Settings(
        data_dir=tmp_path,
        api_keys=f" alpha , sha256:{hash_key('beta').upper()},",  # type: ignore[arg-type]
        admin_api_keys="gamma,alpha",  # type: ignore[arg-type]
    )
    ring = KeyRing.from_settings(s)
    assert len(ring) == 3
    beta = ring.verify("beta")
    assert beta is not None and beta.role == "user" and beta.id == hash_key("beta")[:12]
    alpha, gamma = ring.verify("alpha"), ring.verify("gamma")
    assert alpha is not None and alpha.role == "admin"  # listed as both: admin wins
    assert gamma is not None and gamma.role == "admin"
    assert ring.verify("delta") is None and ring.verify("") is None


def test_presented_key_forms() -> None:
    assert presented_key(None, " k1 ") == "k1"
    assert presented_key("Bearer k2", None) == "k2"
    assert presented_key("bearer   k3 ", None) == "k3"
    assert presented_key("Basic dXNlcjpwYXNz", None) is None
    assert presented_key("Bearer ", "") is None
    assert presented_key(None, None) is None


def test_first_run_key_is_created_once_and_stored_hashed(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "d")
    key = ensure_first_key(s)
    assert key is not None and key.startswith("ck_") and len(key) > 40
    text = s.api_keys_file.read_text()
    assert key not in text and hash_key(key) in text
    assert stat.S_IMODE(s.api_keys_file.stat().st_mode) == 0o600
    assert ensure_first_key(s) is None  # not again
    k = KeyRing.from_settings(s).verify(key)
    assert k is not None and k.role == "admin"
    # Keys configured in the environment mean no key is generated.
    s2 = Settings(data_dir=tmp_path / "e", api_keys="mine")  # type: ignore[arg-type]
    assert ensure_first_key(s2) is None and not s2.api_keys_file.exists()


def test_keys_cli(tmp_path: Path, monkeypatch: Any) -> None:
    import typer
    from typer.testing import CliRunner

    from clinicode.serve.cli import register
    from clinicode.settings import get_settings

    monkeypatch.setenv("CLINICODE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CLINICODE_API_KEYS", raising=False)
    get_settings.cache_clear()
    try:
        app = typer.Typer()
        register(app)
        runner = CliRunner()
        r = runner.invoke(app, ["keys", "create", "--label", "integration A"])
        assert r.exit_code == 0, r.output
        key = r.stdout.strip().splitlines()[-1]
        ring = KeyRing.from_settings(get_settings())
        k = ring.verify(key)
        assert k is not None and k.role == "user"
        r = runner.invoke(app, ["keys", "list"])
        assert r.exit_code == 0 and k.id in r.stdout and "integration A" in r.stdout
        assert key not in r.stdout
    finally:
        get_settings.cache_clear()
