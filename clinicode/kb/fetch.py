"""``clinicode codes fetch``: download the official releases, check them, import them.

For one fiscal year of the catalogue (:mod:`clinicode.kb.releases`) and the chosen kinds:

1. obtain each file: from the download cache (``<data dir>/downloads/FY2026/``, reused when
   its sha256 matches the one recorded at download time and the catalogue's, if any), from a
   ``--from`` folder (the same file name, or loose files matching the member patterns), or over
   HTTP(S) from the catalogue URL or a ``--from`` mirror (streamed to a temporary file, hashed,
   renamed into the cache);
2. check every file before anything is imported: the sha256 the catalogue gives, the zip
   opens, each kind's member is there (by pattern) and not empty, and extracts intact;
3. import each member through the existing importers (:func:`run_import`), each import
   all-or-nothing, with the URL, the file's sha256 and the member name as provenance.

Any problem raises :class:`FetchError` (exit code 2 in the CLI) before the first import.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clinicode.hashing import sha256_file
from clinicode.kb.releases import (
    FETCH_KINDS,
    INDEX_KINDS,
    Catalogue,
    FetchError,
    FileSpec,
    KindSpec,
)

__all__ = ["FetchError", "Obtained", "fetch_release", "missing_kinds", "parse_kinds"]

Log = Callable[[str], None]
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Obtained:
    """A file on disk, where it came from (URL, or file URI), and its sha256."""

    path: Path
    url: str
    sha256: str
    how: str  # downloaded | cached | local


def parse_kinds(text: str | None) -> list[str]:
    """``"index,pcs"`` -> ``["index", "pcs"]`` in import order; ``None``: every kind."""
    if text is None:
        return list(FETCH_KINDS)
    asked = [k.strip().lower() for k in text.split(",") if k.strip()]
    unknown = [k for k in asked if k not in FETCH_KINDS]
    if unknown or not asked:
        raise FetchError(
            f"--kinds {text!r}: choose among {', '.join(FETCH_KINDS)} (comma-separated)"
        )
    return [k for k in FETCH_KINDS if k in asked]


# -- HTTP -------------------------------------------------------------------------------------
def _check_resolvable(host: str, timeout: float) -> None:
    """Name resolution is not bounded by socket timeouts: bound it with a daemon thread."""
    outcome: list[BaseException | None] = []

    def resolve() -> None:
        try:
            socket.getaddrinfo(host, None)
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    t = threading.Thread(target=resolve, daemon=True, name="clinicode-resolve")
    t.start()
    t.join(timeout)
    if not outcome:
        raise FetchError(f"cannot resolve {host} within {timeout:g} s (offline?)")
    if outcome[0] is not None:
        raise FetchError(f"cannot resolve {host} (offline?): {outcome[0]}")


def download(url: str, dest: Path, timeout: float, expected_sha256: str | None = None) -> str:
    """Stream ``url`` to ``dest`` through a temporary file that is renamed only once complete
    (and matching ``expected_sha256``, when given); returns its sha256."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise FetchError(f"{url!r} is not an http(s) URL")
    _check_resolvable(parts.hostname, timeout)
    from clinicode import __version__

    req = urllib.request.Request(url, headers={"User-Agent": f"clinicode/{__version__}"})
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            while chunk := resp.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise FetchError(f"{url}: got {size} of {expected} bytes (connection cut?)")
        if size == 0:
            raise FetchError(f"{url}: the server sent an empty file")
        if expected_sha256 is not None and h.hexdigest() != expected_sha256:
            raise FetchError(
                f"{url}: sha256 {h.hexdigest()} does not match the catalogue's"
                f" {expected_sha256} (damaged or changed file); nothing was imported"
            )
        os.replace(tmp, dest)
        return h.hexdigest()
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code} {exc.reason} from {url}") from exc
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot download {url}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:  # socket timeouts, cut connections
        raise FetchError(f"cannot download {url}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


# -- obtaining a file: cache, --from folder, mirror or catalogue URL ---------------------------
def _check_sha(spec: FileSpec, sha: str, where: str) -> None:
    if spec.sha256 is not None and sha != spec.sha256:
        raise FetchError(
            f"{where}: sha256 {sha} does not match the catalogue's {spec.sha256}"
            " (damaged or changed file); nothing was imported"
        )


def _cached(spec: FileSpec, cache_dir: Path) -> Obtained | None:
    path = cache_dir / spec.filename
    meta_path = path.with_name(path.name + ".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        recorded, url = str(meta["sha256"]), str(meta["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if spec.sha256 not in (None, recorded) or sha256_file(path) != recorded:
        return None  # changed in the catalogue, or damaged on disk: download again
    return Obtained(path, url, recorded, "cached")


def _download_to_cache(spec: FileSpec, url: str, cache_dir: Path, timeout: float) -> Obtained:
    path = cache_dir / spec.filename
    sha = download(url, path, timeout, spec.sha256)
    meta = {"url": url, "sha256": sha}
    path.with_name(path.name + ".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return Obtained(path, url, sha, "downloaded")


def obtain(spec: FileSpec, source: str | None, cache_dir: Path, timeout: float) -> Obtained | None:
    """The file of ``spec``; ``None`` when ``source`` is a folder without that file name (the
    caller then looks for loose member files there)."""
    if source is not None and "://" not in source:
        local = Path(source) / spec.filename
        if not local.is_file():
            return None
        sha = sha256_file(local)
        _check_sha(spec, sha, str(local))
        return Obtained(local, local.resolve().as_uri(), sha, "local")
    hit = _cached(spec, cache_dir)
    if hit is not None:
        return hit
    url = spec.url if source is None else source.rstrip("/") + "/" + spec.filename
    return _download_to_cache(spec, url, cache_dir, timeout)


# -- checking and extracting members -----------------------------------------------------------
@dataclass(frozen=True)
class Member:
    kind: str
    path: Path  # the file to import (extracted member or loose file)
    name: str  # member name inside the zip (or the loose file's name)
    origin: Obtained


def _extract(got: Obtained, specs: list[KindSpec], work: Path) -> list[Member]:
    try:
        zf = zipfile.ZipFile(got.path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"{got.path.name} is not a readable zip file ({exc})") from exc
    out: list[Member] = []
    with zf:
        infos = {i.filename: i for i in zf.infolist() if not i.is_dir()}
        for spec in specs:
            name = spec.pick(list(infos), got.path.name)
            if name is None:
                raise FetchError(
                    f"{got.path.name} holds no {spec.kind} file (looked for"
                    f" {', '.join(spec.members)}; members: {', '.join(sorted(infos)[:12])})"
                )
            if infos[name].file_size == 0:
                raise FetchError(f"{got.path.name}: member {name} is empty")
            dest = work / spec.kind / Path(name).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(name) as src, dest.open("wb") as f:
                    shutil.copyfileobj(src, f, _CHUNK)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise FetchError(f"{got.path.name}: member {name} is damaged ({exc})") from exc
            out.append(Member(spec.kind, dest, name, got))
    return out


def _loose(folder: Path, spec: KindSpec) -> Member | None:
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    names = [str(p) for p in files]
    chosen = spec.pick(names, str(folder))
    if chosen is None:
        return None
    path = Path(chosen)
    if path.stat().st_size == 0:
        raise FetchError(f"{path} is empty")
    got = Obtained(path, path.resolve().as_uri(), sha256_file(path), "local")
    return Member(spec.kind, path, path.name, got)


def _gather(
    catalogue: Catalogue,
    files: dict[str, FileSpec],
    kinds: list[str],
    source: str | None,
    cache_dir: Path,
    timeout: float,
    work: Path,
    log: Log,
) -> list[Member]:
    """Every member to import, obtained and checked; raises before anything is imported."""
    by_file: dict[str, list[KindSpec]] = {}
    for kind in kinds:
        spec = catalogue.kinds.get(kind)
        if spec is None:
            raise FetchError(f"{catalogue.origin} does not say where {kind} comes from")
        by_file.setdefault(spec.file, []).append(spec)
    members: list[Member] = []
    for key, specs in by_file.items():
        fspec = files.get(key)
        got = obtain(fspec, source, cache_dir, timeout) if fspec is not None else None
        if got is not None:
            log(f"{got.how}: {got.path.name} ({got.url}) sha256 {got.sha256[:12]}...")
            try:
                if not zipfile.is_zipfile(got.path):
                    raise FetchError(f"{got.path.name} ({got.url}) is not a zip file")
                members += _extract(got, specs, work)
            except FetchError:
                if got.how != "local":  # a bad download is not kept: the next run fetches again
                    got.path.unlink(missing_ok=True)
                    got.path.with_name(got.path.name + ".json").unlink(missing_ok=True)
                raise
            continue
        if source is None or "://" in source:
            raise FetchError(f"the catalogue gives no file {key!r} for this year")
        for spec in specs:
            loose = _loose(Path(source), spec)
            if loose is None:
                wanted = fspec.filename if fspec is not None else key
                raise FetchError(
                    f"{source} holds neither {wanted} nor a {spec.kind} file"
                    f" ({', '.join(spec.members)})"
                )
            log(f"local: {loose.path} sha256 {loose.origin.sha256[:12]}...")
            members.append(loose)
    return members


def fetch_release(
    kb_path: Path,
    *,
    year: str | None = None,
    source: str | None = None,
    kinds: list[str] | None = None,
    timeout: float = 60.0,
    downloads_dir: Path,
    catalogue: Catalogue | None = None,
    log: Log = lambda _msg: None,
    force: bool = False,
) -> dict[str, Any]:
    """Fetch, check and import ``kinds`` of fiscal year ``year`` into the KB at ``kb_path``
    (whose ICD-10-CM must be built); returns ``{"year", "imports": [reports]}``. A file that
    looks incomplete is refused unless ``force``."""
    from clinicode.kb.importers import run_import
    from clinicode.kb.releases import load_catalogue

    cat = catalogue if catalogue is not None else load_catalogue()
    label, files = cat.release(year)
    wanted = kinds if kinds is not None else list(FETCH_KINDS)
    if source is not None and "://" not in source and not Path(source).is_dir():
        raise FetchError(f"--from {source}: no such folder (give a folder or an http(s) URL)")
    cache_dir = downloads_dir / label
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create the download cache {cache_dir}: {exc}") from exc
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".extract-") as tmp:
        members = _gather(cat, files, wanted, source, cache_dir, timeout, Path(tmp), log)
        for m in members:
            extra = {"url": m.origin.url, "url_sha256": m.origin.sha256, "member": m.name}
            log(f"importing {m.kind} from {m.name}")
            report = run_import(m.kind, m.path, kb_path, extra=extra, force=force)
            reports.append({**report, "url": m.origin.url, "url_sha256": m.origin.sha256})
    return {"year": label, "imports": reports}


def missing_kinds(kb_path: Path) -> list[str]:
    """The fetchable kinds the KB at ``kb_path`` does not hold yet."""
    from clinicode.kb.store import KnowledgeBase

    kb = KnowledgeBase(kb_path, readonly=True)
    try:
        cm = kb.system_info("ICD-10-CM")
        have = set(cm.extra) if cm is not None else set()
        out = [k for k in INDEX_KINDS if k not in have]
        out += [k for k, s in (("pcs", "ICD-10-PCS"), ("hcpcs", "HCPCS")) if not kb.system_info(s)]
    finally:
        kb.close()
    return [k for k in FETCH_KINDS if k in out]


def fetch_on_setup(kb_path: Path, log: Log) -> str | None:
    """What ``clinicode setup`` does about the official files: when the KB lacks the Index,
    ICD-10-PCS or HCPCS and ``CLINICODE_FETCH_ON_SETUP`` allows it, fetch the missing kinds with
    the short ``CLINICODE_FETCH_TIMEOUT_S``. Returns one line to print when something is still
    missing (offline, disabled, or a bad file), ``None`` otherwise; never raises a FetchError."""
    from clinicode.errors import ClinicodeError
    from clinicode.settings import get_settings

    missing = missing_kinds(kb_path)
    if not {"index", "pcs", "hcpcs"} & set(missing):
        return None
    settings = get_settings()
    how = (
        "`clinicode codes fetch` (or `clinicode codes fetch --from DIR` offline)"
        " or `clinicode codes import KIND FILE`"
    )
    if not settings.fetch_on_setup:
        reason = "download on setup is off"
        return f"missing official code sets: {', '.join(missing)} ({reason}); get them with {how}"
    try:
        fetch_release(
            kb_path,
            kinds=missing,
            timeout=settings.fetch_timeout_s,
            downloads_dir=settings.downloads_dir,
            log=log,
        )
    except ClinicodeError as exc:
        return f"missing official code sets: {', '.join(missing)} ({exc}); get them with {how}"
    return None
