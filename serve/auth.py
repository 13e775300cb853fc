"""API keys: hashed at rest, accepted as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``.

Keys come from ``CLINICODE_API_KEYS`` / ``CLINICODE_ADMIN_API_KEYS`` (comma-separated; an entry
may be a plain key or its hash written ``sha256:<hex>``) and from the key file under the data
dir, which only ever holds hashes. A key is identified in the audit table by its *key id*, the
first 12 hex digits of its hash, which reveals nothing usable about the key.

``401`` means no usable credentials (missing or unknown key); ``403`` means a known key that may
not do this (exporting feedback, which contains note text, needs an admin key).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from clinicode.settings import Settings

Role = Literal["user", "admin"]
KEY_PREFIX = "ck_"
_HASH_PREFIX = "sha256:"


def hash_key(key: str) -> str:
    """Hex SHA-256 of a key (keys are 256-bit random strings, so a fast hash is enough)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(key_hash: str) -> str:
    return key_hash[:12]


@dataclass(frozen=True)
class ApiKey:
    id: str
    role: Role


class KeyRing:
    """The set of accepted keys, by hash."""

    def __init__(self, hashes: dict[str, Role] | None = None) -> None:
        self._by_hash: dict[str, Role] = dict(hashes or {})

    def __len__(self) -> int:
        return len(self._by_hash)

    def add(self, key_hash: str, role: Role) -> None:
        # An admin listing wins over a user listing of the same key.
        if self._by_hash.get(key_hash) != "admin":
            self._by_hash[key_hash] = role

    def verify(self, presented: str) -> ApiKey | None:
        h = hash_key(presented)
        role = None
        for known, known_role in self._by_hash.items():
            if secrets.compare_digest(known, h):
                role = known_role
        return None if role is None else ApiKey(id=key_id(h), role=role)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        ring = cls()
        for secret, role in ((settings.api_keys, "user"), (settings.admin_api_keys, "admin")):
            if secret is None:
                continue
            for entry in secret.get_secret_value().split(","):
                entry = entry.strip()
                if entry:
                    ring.add(_entry_hash(entry), role)  # type: ignore[arg-type]
        for rec in read_key_file(settings.api_keys_file):
            ring.add(rec["hash"], "admin" if rec.get("role") == "admin" else "user")
        return ring


def _entry_hash(entry: str) -> str:
    if entry.startswith(_HASH_PREFIX):
        return entry[len(_HASH_PREFIX) :].lower()
    return hash_key(entry)


def read_key_file(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [r for r in data.get("keys", []) if isinstance(r, dict) and "hash" in r]


def create_key(settings: Settings, *, role: Role = "admin", label: str = "") -> tuple[str, str]:
    """A new random key, stored hashed in the key file. Returns ``(key, key_id)``; the plain key
    is never stored, so the caller must show it now."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    h = hash_key(key)
    path = settings.api_keys_file
    path.parent.mkdir(parents=True, exist_ok=True)
    records = read_key_file(path)
    records.append(
        {
            "id": key_id(h),
            "hash": h,
            "role": role,
            "label": label,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"keys": records}, fh, indent=2)
    os.replace(tmp, path)
    return key, key_id(h)


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
