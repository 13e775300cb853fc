"""Seals on files Clinicode loads and trusts: derived caches and model packs.

A seal is ``<file>.seal``, a small JSON holding an HMAC-SHA256 of the file's SHA-256 under a
key that lives *outside* the folder it protects, so whoever can edit the cache or copy a pack
cannot also forge its seal without the key:

* **caches** (``<data dir>/cache/...``, e.g. the mention lexicon) are sealed with the machine's
  integrity key (``CLINICODE_INTEGRITY_KEY_FILE``, default ``<data dir>/integrity.key``,
  created on first use, mode 0600). A cache whose seal is missing or wrong is not loaded: it
  is rebuilt from the knowledge base, with a warning naming the file.
* **model packs** may be signed (``manifest.json.seal``, over the manifest, which lists every
  file's hash) with the key of ``CLINICODE_PACK_SIGNING_KEY_FILE``; with
  ``CLINICODE_REQUIRE_SIGNED_PACKS=1`` an unsigned pack is refused (see
  :mod:`clinicode.models.pack`). ``clinicode pack signing-key`` and ``clinicode pack sign``.

HMAC keys are symmetric: a machine that can check a seal can also make one, so keep the key
file readable only by the service's user.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from clinicode.errors import ClinicodeError
from clinicode.hashing import sha256_file

SEAL_SUFFIX = ".seal"
ALG = "hmac-sha256"


class IntegrityError(ClinicodeError):
    """A key file cannot be read, or a seal cannot be written."""


def seal_path(path: Path) -> Path:
    return path.with_name(path.name + SEAL_SUFFIX)


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def create_key_file(path: Path) -> bytes:
    """Write a new random 256-bit key to ``path`` (mode 0600; refuses to overwrite)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise IntegrityError(f"{path} exists already; not overwriting a key") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key.encode("ascii")


def read_key_file(path: Path) -> bytes:
    try:
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"cannot read the key file {path}: {exc}") from None
    if len(key) < 32:
        raise IntegrityError(f"the key file {path} holds no usable key (64 hex characters)")
    return key.encode("ascii")


def integrity_key() -> bytes:
    """The machine's key for sealing caches (created on first use)."""
    from clinicode.settings import get_settings

    path = get_settings().integrity_key_path
    if not path.exists():
        try:
            return create_key_file(path)
        except IntegrityError:  # another process created it first
            pass
    return read_key_file(path)


def _mac(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def seal(path: Path, key: bytes) -> Path:
    """Write ``path``'s seal under ``key``; returns the seal's path."""
    body = {"alg": ALG, "key_id": key_id(key), "mac": _mac(key, sha256_file(path))}
    target = seal_path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(body, sort_keys=True), encoding="utf-8")
    os.replace(tmp, target)
    return target


def seal_problem(path: Path, key: bytes) -> str | None:
    """Why ``path`` does not carry a valid seal under ``key`` ("has no seal", "was modified
    after it was sealed", "is sealed with another key"), or None when it does."""
    target = seal_path(path)
    try:
        body = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "has no seal"
    except (OSError, ValueError):
        return "has a damaged seal"
    if not isinstance(body, dict) or body.get("alg") != ALG:
        return "has a damaged seal"
    if body.get("key_id") != key_id(key):
        return f"is sealed with another key ({body.get('key_id')}, not {key_id(key)})"
    if not hmac.compare_digest(str(body.get("mac", "")), _mac(key, sha256_file(path))):
        return "was modified after it was sealed"
    return None


def seal_cache(path: Path) -> Path:
    """Seal a cache file with the machine's integrity key."""
    return seal(path, integrity_key())


def cache_problem(path: Path) -> str | None:
    """Why a cache file may not be trusted, or None (see :func:`seal_problem`)."""
    return seal_problem(path, integrity_key())
