"""Time `clinicode codes fetch` of a full fiscal-year set (Alphabetic Index, Neoplasm and Drug
tables, External Cause index, ICD-10-PCS, HCPCS) from local files, as a user on an offline site
runs it, and over HTTP from a local server (download, then the cached re-run).

    python bench/bench_fetch.py

The release zips are built from ../shared/data by ``tests/kb/test_fetch.py::build_full_release``
(loaded by path). Each run uses a fresh data dir and knowledge base; the ICD-10-CM build that
precedes the first fetch is timed apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_test_module() -> ModuleType:
    """tests/kb/test_fetch.py, with the ``tests.conftest`` it imports (a site-packages
    ``tests`` package may shadow the repository's folder)."""
    from repo_modules import load_repo_module

    load_repo_module("tests/conftest.py", "tests.conftest")
    return load_repo_module("tests/kb/test_fetch.py", "clinicode_fetch_tests")


def clinicode(env: dict[str, str], *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "clinicode.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"clinicode {' '.join(args)} failed ({out.returncode}): {out.stderr[-2000:]}")
    return time.perf_counter() - t0, out.stdout


def fresh_env(root: Path, name: str, catalogue: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, CLINICODE_DATA_DIR=str(root / name), CLINICODE_FETCH_ON_SETUP="0")
    if catalogue is not None:
        env["CLINICODE_RELEASES_FILE"] = str(catalogue)
    return env


def summary(stdout: str) -> str:
    reports = json.loads(stdout)["imports"]
    parts = []
    for r in reports:
        c = r["counts"]
        n = c.get("entries", c.get("valid_codes", c.get("codes")))
        parts.append(f"{r['kind']}={n}")
    return " ".join(parts)


def main() -> None:
    tests = load_test_module()
    shared = sys.modules["tests.conftest"].SHARED_DATA
    if not shared.exists():
        sys.exit(f"needs {shared}")
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp:
        root = Path(tmp)
        release = tests.build_full_release(root / "release")
        size = sum(p.stat().st_size for p in release.iterdir()) / 1e6
        print(f"release zips: {size:.1f} MB in {release}")
        env = fresh_env(root, "local")
        build_s, _ = clinicode(env, "codes", "build")
        fetch_s, out = clinicode(env, "codes", "fetch", "--from", str(release), "--json")
        print(f"codes build (ICD-10-CM, before the first fetch): {build_s:.1f} s")
        print(
            f"codes fetch --from DIR (full set, check + import): {fetch_s:.1f} s  [{summary(out)}]"
        )
        srv = tests.Server(release)
        try:
            cat = tests.write_catalogue(root / "cat.yaml", srv.url)
            env = fresh_env(root, "http", cat)
            clinicode(env, "codes", "build")
            http_s, _ = clinicode(env, "codes", "fetch", "--json")
            n_first = len(srv.requests)
            cached_s, _ = clinicode(env, "codes", "fetch", "--json")
            n_second = len(srv.requests) - n_first
        finally:
            srv.close()
        print(
            f"codes fetch over HTTP (127.0.0.1; download + import): {http_s:.1f} s, {n_first} requests"
        )
        print(f"codes fetch again (from the download cache): {cached_s:.1f} s, {n_second} requests")


if __name__ == "__main__":
    main()
