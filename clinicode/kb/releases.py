"""The catalogue of official code-set releases (``clinicode/kb/data/releases.yaml``).

:func:`load_catalogue` reads it (or the file ``CLINICODE_RELEASES_FILE`` names) into a
:class:`Catalogue`: per fiscal year, the files to download (URL, optional sha256), and per
import kind, the file it comes from and the member-name patterns that find it inside.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from clinicode.errors import ClinicodeError

FETCH_KINDS: tuple[str, ...] = ("index", "neoplasm", "drug", "eindex", "pcs", "hcpcs")
INDEX_KINDS: tuple[str, ...] = ("index", "neoplasm", "drug", "eindex")


class FetchError(ClinicodeError):
    """A release cannot be fetched or checked (bad catalogue, HTTP error, bad zip, missing
    member, checksum mismatch); nothing was imported from it."""


@dataclass(frozen=True)
class KindSpec:
    kind: str
    file: str
    members: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    def matches(self, name: str, pattern: str) -> bool:
        low = Path(name).name.lower()
        return fnmatch.fnmatch(low, pattern) and not any(
            fnmatch.fnmatch(low, x) for x in self.exclude
        )

    def pick(self, names: list[str], where: str) -> str | None:
        """The one name the first matching pattern selects; ``None`` when none matches."""
        for pattern in self.members:
            chosen = [n for n in names if self.matches(n, pattern)]
            if len(chosen) == 1:
                return chosen[0]
            if len(chosen) > 1:
                raise FetchError(
                    f"{where} holds several {self.kind} files matching {pattern!r}:"
                    f" {', '.join(sorted(chosen))}; serve the one you want with --from DIR"
                )
        return None


@dataclass(frozen=True)
class FileSpec:
    key: str
    url: str
    sha256: str | None = None

    @property
    def filename(self) -> str:
        name = unquote(Path(urlsplit(self.url).path).name)
        if not name:
            raise FetchError(f"catalogue URL {self.url!r} names no file")
        return name


@dataclass(frozen=True)
class Catalogue:
    kinds: dict[str, KindSpec]
    releases: dict[str, dict[str, FileSpec]]  # "FY2026" -> file key -> spec
    origin: str

    def years(self) -> list[str]:
        return sorted(self.releases, reverse=True)

    def release(self, year: str | None) -> tuple[str, dict[str, FileSpec]]:
        """``(label, files)`` of fiscal year ``year`` (``2026`` or ``FY2026``; ``None``: latest)."""
        if not self.releases:
            raise FetchError(f"{self.origin} lists no releases")
        label = self.years()[0] if year is None else normalize_year(year)
        files = self.releases.get(label)
        if files is None:
            raise FetchError(
                f"no release {label} in {self.origin}; known: {', '.join(self.years())}"
            )
        return label, files


def normalize_year(year: str) -> str:
    y = year.strip().upper().removeprefix("FY")
    if not (y.isdigit() and len(y) == 4):
        raise FetchError(f"--year {year!r} is not a fiscal year such as 2026 or FY2026")
    return f"FY{y}"


def _kind_spec(kind: str, raw: Any, origin: str) -> KindSpec:
    if not isinstance(raw, dict) or not raw.get("file") or not raw.get("members"):
        raise FetchError(f"{origin}: kind {kind!r} needs 'file' and 'members'")
    return KindSpec(
        kind=kind,
        file=str(raw["file"]),
        members=tuple(str(p).lower() for p in raw["members"]),
        exclude=tuple(str(p).lower() for p in raw.get("exclude") or ()),
    )


def _file_spec(key: str, raw: Any, where: str) -> FileSpec:
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        raise FetchError(f"{where}: file {key!r} needs a 'url'")
    sha = raw.get("sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
        raise FetchError(f"{where}: file {key!r}: sha256 must be 64 hex characters")
    return FileSpec(key=key, url=raw["url"], sha256=sha.lower() if sha else None)


def parse_catalogue(data: Any, origin: str) -> Catalogue:
    if not isinstance(data, dict) or not isinstance(data.get("kinds"), dict):
        raise FetchError(f"{origin} is not a release catalogue (no 'kinds' mapping)")
    kinds = {str(k): _kind_spec(str(k), v, origin) for k, v in data["kinds"].items()}
    unknown = sorted(set(kinds) - set(FETCH_KINDS))
    if unknown:
        raise FetchError(f"{origin}: unknown kind(s) {', '.join(unknown)}")
    releases: dict[str, dict[str, FileSpec]] = {}
    for year, files in (data.get("releases") or {}).items():
        label = normalize_year(str(year))
        if not isinstance(files, dict):
            raise FetchError(f"{origin}: release {label} must map file keys to URLs")
        releases[label] = {
            str(k): _file_spec(str(k), v, f"{origin} {label}") for k, v in files.items()
        }
    return Catalogue(kinds=kinds, releases=releases, origin=origin)


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The release catalogue: ``path``, else ``CLINICODE_RELEASES_FILE``, else the shipped one."""
    if path is None:
        from clinicode.settings import get_settings

        path = get_settings().releases_file
    if path is None:
        text = resources.files("clinicode.kb.data").joinpath("releases.yaml").read_text("utf-8")
        origin = "the shipped release catalogue"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise FetchError(f"cannot read the release catalogue {path}: {exc}") from exc
        origin = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FetchError(f"{origin} is not valid YAML: {exc}") from exc
    return parse_catalogue(data, origin)
