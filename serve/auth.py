"""API keys: hashed at rest, accepted as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``.

Keys come from ``CLINICODE_API_KEYS`` / ``CLINICODE_ADMIN_API_KEYS`` (comma-separated; an entry
may be a plain key or its hash written ``sha256:<hex>``) and from the key file under the data
dir, which only ever holds hashes. A key is identified in the audit table by its *key id*, the
first 12 hex digits of its hash, which reveals nothing usable about the key.

Every key belongs to a *tenant* (environment keys: ``default``; file keys: ``--tenant`` of
``clinicode keys create``): notes and decisions are stored and read per tenant.

The key file is live: a running worker re-reads it when it changed, checking at most every
``RELOAD_S`` seconds, so ``clinicode keys create`` and ``clinicode keys revoke`` take effect
without a restart. A key file that cannot be read raises :class:`KeyFileError` naming the
file; a running worker that meets one keeps its last good keys and logs the problem.

``401`` means no usable credentials (missing, unknown or revoked key); ``403`` means a known key
that may not do this (exporting feedback, which contains note text, needs an admin key).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from clinicode.errors import ClinicodeError
from clinicode.settings import Settings

log = logging.getLogger("clinicode.serve")

Role = Literal["user", "admin"]
KEY_PREFIX = "ck_"
DEFAULT_TENANT = "default"
RELOAD_S = 2.0
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HASH_PREFIX = "sha256:"


class KeyFileError(ClinicodeError):
    """The API key file cannot be read; the message names it and says what to do."""


def hash_key(key: str) -> str:
    """Hex SHA-256 of a key (keys are 256-bit random strings, so a fast hash is enough)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(key_hash: str) -> str:
    return key_hash[:12]


@dataclass(frozen=True)
class ApiKey:
    id: str
    role: Role
    tenant: str = DEFAULT_TENANT


KeyTable = dict[str, tuple[Role, str]]  # hash -> (role, tenant)


def _merge(table: KeyTable, key_hash: str, role: Role, tenant: str) -> None:
    # An admin listing wins over a user listing of the same key.
    if table.get(key_hash, ("user", ""))[0] != "admin":
        table[key_hash] = (role, tenant)


class KeyRing:
    """The set of accepted keys, by hash: fixed ones, and those of a key file re-read when it
    changes (at most every ``reload_s`` seconds)."""

    def __init__(
        self,
        hashes: dict[str, Role] | None = None,
        *,
        key_file: Path | None = None,
        reload_s: float = RELOAD_S,
    ) -> None:
        self._fixed: KeyTable = {h: (r, DEFAULT_TENANT) for h, r in (hashes or {}).items()}
        self._file = key_file
        self._reload_s = reload_s
        self._file_keys: KeyTable = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        if key_file is not None:
            self._file_keys = _file_table(read_key_file(key_file))
            self._stamp = _stamp(key_file)
            self._checked = time.monotonic()

    def __len__(self) -> int:
        self._refresh()
        return len(self._fixed.keys() | self._file_keys.keys())

    def add(self, key_hash: str, role: Role, tenant: str = DEFAULT_TENANT) -> None:
        _merge(self._fixed, key_hash, role, tenant)

    def verify(self, presented: str) -> ApiKey | None:
        self._refresh()
        h = hash_key(presented)
        found: tuple[Role, str] | None = None
        for table in (self._fixed, self._file_keys):
            for known, value in table.items():
                if secrets.compare_digest(known, h) and (found is None or value[0] == "admin"):
                    found = value
        return None if found is None else ApiKey(id=key_id(h), role=found[0], tenant=found[1])

    def _refresh(self) -> None:
        """Re-read the key file when it changed; keep the last good keys if it is unreadable."""
        if self._file is None or time.monotonic() - self._checked < self._reload_s:
            return
        with self._lock:
            self._checked = time.monotonic()
            stamp = _stamp(self._file)
            if stamp == self._stamp:
                return
            try:
                self._file_keys = _file_table(read_key_file(self._file))
            except KeyFileError as exc:
                log.error("%s; keeping the keys read before", exc)
                return
            self._stamp = stamp

    @classmethod
    def from_settings(cls, settings: Settings, *, reload_s: float = RELOAD_S) -> KeyRing:
        ring = cls(key_file=settings.api_keys_file, reload_s=reload_s)
        for secret, role in ((settings.api_keys, "user"), (settings.admin_api_keys, "admin")):
            if secret is None:
                continue
            for entry in secret.get_secret_value().split(","):
                entry = entry.strip()
                if entry:
                    ring.add(_entry_hash(entry), role)  # type: ignore[arg-type]
        return ring


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _file_table(records: list[dict[str, Any]]) -> KeyTable:
    table: KeyTable = {}
    for rec in records:
        if rec.get("revoked_at"):
            continue
        role: Role = "admin" if rec.get("role") == "admin" else "user"
        _merge(table, str(rec["hash"]).lower(), role, str(rec.get("tenant") or DEFAULT_TENANT))
    return table


def _entry_hash(entry: str) -> str:
    if entry.startswith(_HASH_PREFIX):
        return entry[len(_HASH_PREFIX) :].lower()
    return hash_key(entry)


def read_key_file(path: Path) -> list[dict[str, Any]]:
    """The key records of the key file (none when it does not exist); :class:`KeyFileError`
    naming the file when it cannot be read or is not a key file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the API key file {path}: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise KeyFileError(
            f"the API key file {path} is damaged (not JSON: {exc.msg} at line {exc.lineno}); "
            "restore it from a backup, or move it away and create keys with "
            "`clinicode keys create`"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("keys", []), list):
        raise KeyFileError(
            f'the API key file {path} is not a key file (expected {{"keys": [...]}})'
        )
    return [r for r in data.get("keys", []) if isinstance(r, dict) and "hash" in r]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[list[dict[str, Any]]]:
    """The key records, under an exclusive lock; what the block leaves in the list is written
    back atomically (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = read_key_file(path)
        yield records
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"keys": records}, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def create_key(
    settings: Settings, *, role: Role = "admin", label: str = "", tenant: str = DEFAULT_TENANT
) -> tuple[str, str]:
    """A new random key, stored hashed in the key file. Returns ``(key, key_id)``; the plain key
    is never stored, so the caller must show it now."""
    if not TENANT_PATTERN.match(tenant):
        raise ClinicodeError(
            f"tenant {tenant!r} is not a valid name: lower-case letters, digits, . _ - (at most 64)"
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    h = hash_key(key)
    with _locked(settings.api_keys_file) as records:
        records.append(
            {
                "id": key_id(h),
                "hash": h,
                "role": role,
                "tenant": tenant,
                "label": label,
                "created_at": _now(),
            }
        )
    return key, key_id(h)


def revoke_key(settings: Settings, kid: str) -> dict[str, Any]:
    """Mark the key with id ``kid`` revoked in the key file (kept, for the audit trail);
    running workers refuse it within ``RELOAD_S`` seconds. Returns its record."""
    with _locked(settings.api_keys_file) as records:
        found = [r for r in records if r.get("id") == kid or str(r["hash"]).startswith(kid)]
        if len(found) != 1 or len(kid) < 6:
            what = "no key" if not found else "more than one key"
            raise ClinicodeError(
                f"{what} with id {kid!r} in {settings.api_keys_file.name}; "
                "`clinicode keys list` shows the ids (keys set in CLINICODE_API_KEYS are "
                "removed there)"
            )
        found[0].setdefault("revoked_at", _now())
        return dict(found[0])


def ensure_first_key(settings: Settings) -> str | None:
    """With no key configured anywhere, create an admin key and return it (once); else None."""
    if len(KeyRing.from_settings(settings)) > 0:
        return None
    key, _ = create_key(settings, role="admin", label="first run")
    return key


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request carries, from ``X-API-Key`` or an ``Authorization: Bearer`` header."""
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
