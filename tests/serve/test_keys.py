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


# -- issue 13, failure 7: keys are live, revocable, per tenant; a damaged key file is named ----
def test_keys_created_and_revoked_reach_a_running_service(
    client: Any, settings: Settings, run_cli: Any, monkeypatch: Any
) -> None:
    import time

    from clinicode.serve.auth import RELOAD_S

    monkeypatch.setenv("CLINICODE_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("CLINICODE_API_KEYS", raising=False)
    code, out, err = run_cli("keys", "create", "--label", "coder 7", "--tenant", "clinic-7")
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    kid = hash_key(key)[:12]
    deadline = time.monotonic() + RELOAD_S + 3
    status = 0
    while time.monotonic() < deadline:  # picked up without a restart, within RELOAD_S
        status = client.get("/v1/me", headers={"X-API-Key": key}).status_code
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200
    me = client.get("/v1/me", headers={"X-API-Key": key}).json()
    assert me["key_id"] == kid
    code, out, _ = run_cli("keys", "list")
    assert kid in out and "clinic-7" in out and "active" in out
    code, out, err = run_cli("keys", "revoke", kid)
    assert code == 0 and "revoked" in out, err
    start = time.monotonic()
    while client.get("/v1/me", headers={"X-API-Key": key}).status_code != 401:
        assert time.monotonic() - start < 5.0, "a revoked key was still accepted after 5 s"
        time.sleep(0.1)
    code, out, _ = run_cli("keys", "list")
    assert "revoked" in out
    code, _, err = run_cli("keys", "revoke", "nope00000000")
    assert code == 2 and "no key with id" in err


def test_a_damaged_key_file_is_named(tmp_path: Path, run_cli: Any, monkeypatch: Any) -> None:
    from clinicode.serve.auth import KeyFileError

    s = Settings(data_dir=tmp_path)
    s.api_keys_file.write_text('{"keys": [ {"hash": "ab", ')
    try:
        KeyRing.from_settings(s)
    except KeyFileError as exc:
        assert "api_keys.json is damaged" in str(exc) and "not JSON" in str(exc)
    else:
        raise AssertionError("a damaged key file was accepted")
    monkeypatch.setenv("CLINICODE_DATA_DIR", str(tmp_path))
    code, _, err = run_cli("keys", "list")
    text = " ".join(err.split())
    assert code == 2 and "api_keys.json is damaged" in text and "internal error" not in text


def test_a_running_ring_keeps_its_keys_when_the_file_turns_bad(tmp_path: Path) -> None:
    from clinicode.serve.auth import create_key

    s = Settings(data_dir=tmp_path)
    key, _ = create_key(s, role="user", tenant="t1")
    ring = KeyRing.from_settings(s, reload_s=0)
    found = ring.verify(key)
    assert found is not None and found.tenant == "t1"
    s.api_keys_file.write_text("{ damaged")
    assert ring.verify(key) is not None  # last good keys, and an error in the log
