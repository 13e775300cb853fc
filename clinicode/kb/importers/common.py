"""Helpers shared by the importers: errors, reading files or zip members, hashing, code mapping."""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinicode.errors import ClinicodeError

# Provenance keys ``clinicode codes fetch`` passes to the importers (``extra``): the URL the
# file came from, the sha256 of the file at that URL, the member of the zip that was imported.
PROVENANCE_KEYS: tuple[str, ...] = ("url", "url_sha256", "member")


class ImportFileError(ClinicodeError):
    """The file given to ``clinicode codes import`` cannot be imported (wrong kind, truncated,
    missing columns, empty ...). The message says what is wrong and what was expected."""


@dataclass
class SourceFile:
    """The bytes of the file to import (a plain file or a member of a zip)."""

    name: str
    data: bytes
    origin: Path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def text(self) -> str:
        for enc in ("utf-8-sig", "cp1252", "latin-1"):
            try:
                return self.data.decode(enc)
            except UnicodeDecodeError:
                continue
        raise ImportFileError(f"{self.name}: cannot decode the file as text")  # pragma: no cover


@dataclass
class ImportReport:
    system: str
    kind: str
    version: str
    source: str
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "kind": self.kind,
            "version": self.version,
            "source": self.source,
            "counts": dict(self.counts),
            **({"notes": list(self.notes)} if self.notes else {}),
        }


def read_source(path: Path, pick: Callable[[str], bool], what: str) -> SourceFile:
    """Read ``path``; for a zip, the one member ``pick`` accepts (case-insensitive name test)."""
    if not path.exists():
        raise ImportFileError(f"file not found: {path}")
    if path.is_dir():
        raise ImportFileError(f"{path} is a folder; give the {what} file (or the zip)")
    data = path.read_bytes()
    if not data.strip():
        raise ImportFileError(f"{path.name} is empty; expected the {what}")
    if data[:4] == b"PK\x03\x04" and not path.suffix.lower() == ".xlsx":
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise ImportFileError(f"{path.name} is a damaged zip file: {exc}") from exc
        with zf:
            members = [n for n in zf.namelist() if not n.endswith("/")]
            chosen = [n for n in members if pick(Path(n).name.lower())]
            if not chosen:
                raise ImportFileError(
                    f"{path.name} holds no {what} (members: {', '.join(members[:10])})"
                )
            if len(chosen) > 1:
                raise ImportFileError(
                    f"{path.name} holds several candidate {what} files: {', '.join(chosen)}"
                )
            try:
                member = zf.read(chosen[0])
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ImportFileError(f"{path.name}: cannot read {chosen[0]}: {exc}") from exc
            return SourceFile(name=Path(chosen[0]).name, data=member, origin=path)
    return SourceFile(name=path.name, data=data, origin=path)


def resolve_icd_code(raw: str, known: set[str] | dict[str, Any]) -> str | None:
    """Map a code printed in the index to a KB record: ``E11.22`` as is; an incomplete code
    ending in ``-`` (``C34.9-``) to its category/subcategory record (``C34.9``). ``None`` when
    the KB has no such code (e.g. a code deleted since the index was published)."""
    c = raw.strip().upper().replace(" ", "")
    if not c or set(c) <= {"-"}:
        return None
    c = c.rstrip("-").rstrip(".")
    if len(c) > 3 and "." not in c:
        c = c[:3] + "." + c[3:]
    return c if c in known else None


_YEAR = re.compile(r"(?<!\d)(20\d\d)(?!\d)")


def year_in(name: str) -> str | None:
    m = _YEAR.search(name)
    return m.group(1) if m else None
