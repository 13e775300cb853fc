"""``clinicode codes fetch`` and setup's fetch, never on the internet: zips built here from the
files in ../shared/data (skipped where absent) are served by a local HTTP server on 127.0.0.1,
with a release catalogue pointing there."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from clinicode.kb import KnowledgeBase
from clinicode.kb.fetch import FetchError, fetch_release, missing_kinds, parse_kinds
from clinicode.kb.releases import FETCH_KINDS, load_catalogue, parse_catalogue
from clinicode.settings import get_settings
from tests.conftest import shared_path

CM_ZIP = "2026-code-tables-tabular-and-index.zip"
PCS_ZIP = "2026-icd-10-pcs-order-file-long-and-abbreviated-titles.zip"
HCPCS_ZIP = "october-2025-alpha-numeric-hcpcs-file.zip"
SMALL_KINDS = ["neoplasm", "pcs", "hcpcs"]


# -- a local release server -------------------------------------------------------------------
class Server:
    """A static HTTP server on 127.0.0.1 (ephemeral port) that counts the requests it gets."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _lines(path: Path, n: int) -> bytes:
    with path.open("rb") as f:
        return b"".join(next(f) for _ in range(n))


def build_small_release(folder: Path) -> Path:
    """A Table and Index zip with the 2025 Neoplasm table (and the External Cause index, not
    imported by the fast tests), a PCS zip with the first 1,500 lines of the FY2026 order file
    and an HCPCS zip with the first 600 rows of the October 2025 ANWEB csv."""
    tables = shared_path("icd10cm-tables-2025")
    pcs = shared_path("pcs", "icd10pcs_order_2026.txt")
    hcpcs = shared_path("hcpcs-2025", "HCPC2025_OCT_ANWEB.csv")
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / CM_ZIP, "w", zipfile.ZIP_DEFLATED) as z:
        for kind in ("neoplasm", "eindex"):
            z.write(
                tables / f"icd-10-cm-{kind}-2025.xml", f"Table and Index/icd10cm_{kind}_2025.xml"
            )
        z.writestr("Table and Index/icd10cm_index.xsd", "<xs:schema/>")
    with zipfile.ZipFile(folder / PCS_ZIP, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("icd10pcs_order_2026.txt", _lines(pcs, 1500))
    with zipfile.ZipFile(folder / HCPCS_ZIP, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("HCPC2025_OCT_ANWEB.csv", _lines(hcpcs, 600))
        z.writestr("HCPC2025_OCT_recordlayout.txt", "layout")
    return folder


def build_full_release(folder: Path) -> Path:
    """The full set under the FY2026 catalogue names, as CMS ships it: a Table and Index zip
    with the official FY2017 Alphabetic Index XML (the newest complete index XML here) and the
    April 2025 tables, the FY2026 PCS order file, the October 2025 HCPCS ANWEB workbook.
    (``bench/bench_fetch.py`` times a fetch from it.)"""
    full_xml = shared_path("icd10cm-index-fy2017-xml", "ICD10CM_FY2017_Full_XML.zip")
    tables = shared_path("icd10cm-tables-2025")
    pcs = shared_path("pcs", "icd10pcs_order_2026.txt")
    hcpcs = shared_path("hcpcs-2025", "HCPC2025_OCT_ANWEB.xlsx")
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / CM_ZIP, "w", zipfile.ZIP_DEFLATED) as z:
        with zipfile.ZipFile(full_xml) as src:
            for name in ("icd10cm_index_2017.xml", "icd10cm_tabular_2017.xml", "icd10cm_index.xsd"):
                z.writestr(f"Table and Index/{name}", src.read(name))
        for kind in ("neoplasm", "drug", "eindex"):
            z.write(
                tables / f"icd-10-cm-{kind}-2025.xml", f"Table and Index/icd10cm_{kind}_2025.xml"
            )
    with zipfile.ZipFile(folder / PCS_ZIP, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(pcs, "icd10pcs_order_2026.txt")
    with zipfile.ZipFile(folder / HCPCS_ZIP, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(hcpcs, "HCPC2025_OCT_ANWEB.xlsx")
        z.writestr("HCPC2025_OCT_recordlayout.txt", "layout")
    return folder


def write_catalogue(path: Path, base: str, sha: dict[str, str] | None = None) -> Path:
    """The shipped catalogue's kinds with FY2026 files under ``base``."""
    shipped = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "clinicode/kb/data/releases.yaml").read_text()
    )
    files = {"cm": CM_ZIP, "pcs": PCS_ZIP, "hcpcs": HCPCS_ZIP}
    release = {k: {"url": f"{base}/{name}"} for k, name in files.items()}
    for key, digest in (sha or {}).items():
        release[key]["sha256"] = digest
    data = {"kinds": shipped["kinds"], "releases": {"FY2026": release}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_release(tmp_path_factory.mktemp("release"))


@pytest.fixture()
def server(release_dir: Path, tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    shutil.copytree(release_dir, root)
    srv = Server(root)
    yield srv
    srv.close()


@pytest.fixture()
def scratch(kb_path: Path, tmp_path: Path) -> Path:
    """A writable copy of the session KB (ICD-10-CM FY2026 + CPT starter)."""
    dst = tmp_path / "kb.sqlite"
    shutil.copyfile(kb_path, dst)
    return dst


@pytest.fixture()
def env(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CLINICODE_* pointing at a fresh data dir and a catalogue served by ``server``."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("CLINICODE_DATA_DIR", str(data_dir))
    monkeypatch.setenv(
        "CLINICODE_RELEASES_FILE", str(write_catalogue(tmp_path / "cat.yaml", server.url))
    )
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


def _fetch(kb: Path, data_dir: Path, **kw: Any) -> dict[str, Any]:
    kw.setdefault("kinds", SMALL_KINDS)
    kw.setdefault("timeout", 10)
    kw.setdefault("force", True)  # the small release holds cut files (fast): import them anyway
    return fetch_release(kb, downloads_dir=data_dir / "downloads", **kw)


def _cli(*args: str, kb: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "clinicode.cli", *args, "--kb", str(kb)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ.copy())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _kb_state(path: Path) -> tuple[Any, ...]:
    """What an import would change: systems with their provenance, index trees, terms."""
    kb = KnowledgeBase(path)
    try:
        systems = [(s.system, s.version, s.source_hash, s.n_codes, s.extra) for s in kb.systems()]
        trees = [kb.index_count(k) for k in ("index", "neoplasm", "drug", "eindex")]
        return systems, trees, kb.content_fingerprint()
    finally:
        kb.close()


# -- the catalogue ----------------------------------------------------------------------------
def test_shipped_catalogue() -> None:
    cat = load_catalogue()
    assert {"FY2025", "FY2026"} <= set(cat.years()) and cat.years()[0] == "FY2026"
    assert set(cat.kinds) == set(FETCH_KINDS)
    for year in ("FY2025", "FY2026"):
        label, files = cat.release(year[2:])
        assert label == year and set(files) == {"cm", "pcs", "hcpcs"}
        assert all(f.url.startswith("https://www.cms.gov/") for f in files.values())
        assert all(f.filename.endswith(".zip") for f in files.values())
    with pytest.raises(FetchError, match="no release FY1999"):
        cat.release("1999")


def test_member_patterns_pick_the_official_names() -> None:
    kinds = load_catalogue().kinds
    zip2017 = [
        "icd10cm_tabular.xsd",
        "icd10cm_drug_2017.xml",
        "icd10cm_eindex_2017.xml",
        "icd10cm_index_2017.xml",
        "icd10cm_neoplasm_2017.xml",
        "icd10cm_tabular_2017.xml",
        "icd10cm_drug_neoplasm.xsd",
        "icd10cm_index.xsd",
    ]
    picked = {k: kinds[k].pick(zip2017, "zip") for k in ("index", "neoplasm", "drug", "eindex")}
    assert picked == {
        "index": "icd10cm_index_2017.xml",
        "neoplasm": "icd10cm_neoplasm_2017.xml",
        "drug": "icd10cm_drug_2017.xml",
        "eindex": "icd10cm_eindex_2017.xml",
    }
    assert kinds["pcs"].pick(["icd10pcsOrderFile.pdf", "icd10pcs_order_2026.txt"], "z") == (
        "icd10pcs_order_2026.txt"
    )
    anweb = ["HCPC2025_OCT_ANWEB.xlsx", "HCPC2025_OCT_ANWEB.csv", "x_recordlayout.txt"]
    assert kinds["hcpcs"].pick(anweb, "z") == "HCPC2025_OCT_ANWEB.xlsx"
    with pytest.raises(FetchError, match="several"):
        kinds["pcs"].pick(["icd10pcs_order_2025.txt", "icd10pcs_order_2026.txt"], "z")


def test_bad_catalogue_and_kinds_refused() -> None:
    with pytest.raises(FetchError, match="kinds"):
        parse_catalogue({"releases": {}}, "x.yaml")
    with pytest.raises(FetchError, match="sha256"):
        parse_catalogue(
            {"kinds": {}, "releases": {"2026": {"cm": {"url": "https://a/b.zip", "sha256": "1"}}}},
            "x.yaml",
        )
    assert parse_kinds("hcpcs, index") == ["index", "hcpcs"]
    with pytest.raises(FetchError, match="choose among"):
        parse_kinds("index,cpt")


# -- fetch over HTTP --------------------------------------------------------------------------
def test_fetch_imports_records_provenance_and_caches(
    env: Path, server: Server, scratch: Path
) -> None:
    result = _fetch(scratch, env)
    assert result["year"] == "FY2026"
    assert [r["kind"] for r in result["imports"]] == SMALL_KINDS
    assert sorted(server.requests) == sorted(f"/{n}" for n in (CM_ZIP, PCS_ZIP, HCPCS_ZIP))
    kb = KnowledgeBase(scratch)
    pcs, hcpcs, cm = (kb.system_info(s) for s in ("ICD-10-PCS", "HCPCS", "ICD-10-CM"))
    assert pcs is not None and hcpcs is not None and cm is not None
    assert pcs.version == "FY2026" and pcs.n_codes > 1000 and kb.get("001607B") is not None
    assert hcpcs.version == "2025-10" and hcpcs.n_codes > 100
    assert kb.index_count("neoplasm") > 1000 and kb.index_count("eindex") == 0
    served = server.root
    assert pcs.extra["url"] == f"{server.url}/{PCS_ZIP}"
    assert pcs.extra["url_sha256"] == _digest(served / PCS_ZIP)
    assert pcs.extra["member"] == "icd10pcs_order_2026.txt"
    assert hcpcs.extra["url_sha256"] == _digest(served / HCPCS_ZIP)
    assert cm.extra["neoplasm_url"] == f"{server.url}/{CM_ZIP}"
    assert cm.extra["neoplasm_url_sha256"] == _digest(served / CM_ZIP)
    kb.close()
    cached = env / "downloads" / "FY2026"
    assert _digest(cached / CM_ZIP) == _digest(served / CM_ZIP)
    assert not [p for p in cached.iterdir() if p.name.startswith(".")]  # no temp files left
    # again: every file comes from the cache, no request reaches the server
    server.requests.clear()
    again = _fetch(scratch, env)
    assert server.requests == []
    assert [r["counts"] for r in again["imports"]] == [r["counts"] for r in result["imports"]]
    # a damaged cached file is downloaded again
    (cached / PCS_ZIP).write_bytes(b"PK\x03\x04 damaged")
    _fetch(scratch, env, kinds=["pcs"])
    assert server.requests == [f"/{PCS_ZIP}"]


def test_mirror_url(
    env: Path, server: Server, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = write_catalogue(env.parent / "moved.yaml", "https://cms.invalid/files")
    monkeypatch.setenv("CLINICODE_RELEASES_FILE", str(catalogue))
    get_settings.cache_clear()
    result = _fetch(scratch, env, source=server.url + "/", kinds=["hcpcs"])
    assert server.requests == [f"/{HCPCS_ZIP}"]
    assert result["imports"][0]["url"] == f"{server.url}/{HCPCS_ZIP}"


def test_missing_and_setup_helpers(env: Path, scratch: Path) -> None:
    assert missing_kinds(scratch) == list(FETCH_KINDS)
    _fetch(scratch, env, kinds=["pcs"])
    assert missing_kinds(scratch) == ["index", "neoplasm", "drug", "eindex", "hcpcs"]


def test_silent_server_times_out(env: Path, scratch: Path, tmp_path: Path) -> None:
    """A server that accepts the connection and never answers: the timeout ends the fetch."""
    import socket
    import time

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        cat = load_catalogue(write_catalogue(tmp_path / "silent.yaml", f"http://127.0.0.1:{port}"))
        t0 = time.monotonic()
        with pytest.raises(FetchError, match="timed out"):
            _fetch(scratch, env, kinds=["pcs"], catalogue=cat, timeout=1)
        assert time.monotonic() - t0 < 30
    assert not list((env / "downloads" / "FY2026").iterdir())  # no partial file left


# -- errors: exit code 2, nothing imported ----------------------------------------------------
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("corrupt-zip", "not a zip file|not a readable zip|damaged"),
        ("missing-member", "holds no drug file"),
        ("http-404", "HTTP 404"),
        ("checksum", "does not match the catalogue"),
    ],
)
def test_bad_release_refused_with_exit_2(
    env: Path,
    server: Server,
    scratch: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    message: str,
) -> None:
    args = ["--kinds", "neoplasm,pcs"]
    if case == "corrupt-zip":
        data = (server.root / PCS_ZIP).read_bytes()
        (server.root / PCS_ZIP).write_bytes(data[: len(data) // 2])
    elif case == "missing-member":
        args = ["--kinds", "pcs,drug"]  # the small Table and Index zip has no drug table
    elif case == "http-404":
        (server.root / HCPCS_ZIP).unlink()
        args = ["--kinds", "pcs,hcpcs"]
    else:
        sha = {"pcs": "0" * 64}
        cat = write_catalogue(tmp_path / "sha.yaml", server.url, sha)
        monkeypatch.setenv("CLINICODE_RELEASES_FILE", str(cat))
    before = _kb_state(scratch)
    out = _cli("codes", "fetch", "--force", *args, kb=scratch)  # cut files: fails for `case`
    assert out.returncode == 2, out.stdout + out.stderr
    assert "error:" in out.stderr and "Traceback" not in out.stderr
    assert re.search(message, " ".join(out.stderr.split())), out.stderr
    assert _kb_state(scratch) == before  # nothing imported, not even the good files
    cached = env / "downloads" / "FY2026"
    assert not (cached / PCS_ZIP).exists() or case not in ("corrupt-zip", "checksum")


# -- --from DIR -------------------------------------------------------------------------------
def test_from_dir_with_release_names(env: Path, release_dir: Path, scratch: Path) -> None:
    result = _fetch(scratch, env, source=str(release_dir), kinds=["eindex", "hcpcs"])
    assert [r["kind"] for r in result["imports"]] == ["eindex", "hcpcs"]
    assert result["imports"][1]["url"] == (release_dir / HCPCS_ZIP).resolve().as_uri()
    assert not (env / "downloads" / "FY2026" / HCPCS_ZIP).exists()  # read in place
    kb = KnowledgeBase(scratch)
    assert kb.index_count("eindex") > 1000 and kb.system_info("HCPCS") is not None
    kb.close()


def test_from_dir_with_loose_files(
    env: Path, release_dir: Path, scratch: Path, tmp_path: Path
) -> None:
    loose = tmp_path / "loose"
    (loose / "pcs").mkdir(parents=True)
    with zipfile.ZipFile(release_dir / PCS_ZIP) as z:
        (loose / "pcs" / "icd10pcs_order_2026.txt").write_bytes(z.read("icd10pcs_order_2026.txt"))
    result = _fetch(scratch, env, source=str(loose), kinds=["pcs"])
    rep = result["imports"][0]
    assert rep["kind"] == "pcs" and rep["counts"]["valid_codes"] > 1000
    assert rep["url"].startswith("file://") and rep["url"].endswith("icd10pcs_order_2026.txt")
    with pytest.raises(FetchError, match="holds neither"):
        _fetch(scratch, env, source=str(loose), kinds=["hcpcs"])


# -- clinicode setup --------------------------------------------------------------------------
def _setup(kb: Path, monkeypatch: pytest.MonkeyPatch, **env_vars: str) -> Any:
    """``clinicode setup`` in process, with the default-pack builder stubbed out (slow)."""
    from typer.testing import CliRunner

    from clinicode.cli import app
    from clinicode.training import default_pack

    monkeypatch.setattr(default_pack, "ensure_default_pack", lambda **_kw: None)
    for key, value in env_vars.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return CliRunner().invoke(app, ["setup", "--kb", str(kb)])


def test_setup_offline_prints_one_line_and_succeeds(
    env: Path, scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = Server(tmp_path)  # a port that nothing listens on once closed
    dead = closed.url
    closed.close()
    cat = write_catalogue(tmp_path / "dead.yaml", dead)
    res = _setup(
        scratch,
        monkeypatch,
        CLINICODE_FETCH_ON_SETUP="1",
        CLINICODE_FETCH_TIMEOUT_S="2",
        CLINICODE_RELEASES_FILE=str(cat),
    )
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if "missing official code sets" in ln]
    assert len(lines) == 1, res.output
    assert "index" in lines[0] and "pcs" in lines[0] and "hcpcs" in lines[0]
    assert "codes fetch --from DIR" in lines[0] and "codes import KIND FILE" in lines[0]
    assert missing_kinds(scratch) == list(FETCH_KINDS)
    off = _setup(scratch, monkeypatch, CLINICODE_FETCH_ON_SETUP="0")
    assert off.exit_code == 0 and "download on setup is off" in off.output


def test_setup_fetches_only_what_is_missing(
    env: Path, server: Server, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = KnowledgeBase(scratch, readonly=False)  # as if the Index and tables were imported
    for kind in ("index", "neoplasm", "drug", "eindex"):
        kb.replace_terms("ICD-10-CM", kind, [], info_extra={kind: "test"})
    kb.close()
    from clinicode.kb import importers

    real_import = importers.run_import  # the small release holds cut files: import them anyway
    monkeypatch.setattr(
        importers, "run_import", lambda *a, **kw: real_import(*a, **{**kw, "force": True})
    )
    res = _setup(scratch, monkeypatch, CLINICODE_FETCH_ON_SETUP="1")
    assert res.exit_code == 0, res.output
    assert sorted(server.requests) == sorted([f"/{PCS_ZIP}", f"/{HCPCS_ZIP}"])
    assert missing_kinds(scratch) == [] and "missing official" not in res.output
    server.requests.clear()
    again = _setup(scratch, monkeypatch, CLINICODE_FETCH_ON_SETUP="1")
    assert again.exit_code == 0 and server.requests == []


def test_setup_with_a_bad_release_imports_nothing_and_says_why(
    env: Path, server: Server, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _kb_state(scratch)
    res = _setup(scratch, monkeypatch, CLINICODE_FETCH_ON_SETUP="1")
    assert res.exit_code == 0, res.output
    line = " ".join(ln for ln in res.output.splitlines() if "missing official" in ln)
    assert "holds no index file" in line  # the small Table and Index zip has no index
    assert _kb_state(scratch) == before


# -- the full set -----------------------------------------------------------------------------
@pytest.mark.slow
def test_full_release_over_http(
    scratch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = Server(build_full_release(tmp_path / "www"))
    try:
        cat = write_catalogue(tmp_path / "cat.yaml", srv.url)
        monkeypatch.setenv("CLINICODE_RELEASES_FILE", str(cat))
        monkeypatch.setenv("CLINICODE_DATA_DIR", str(tmp_path / "data"))
        get_settings.cache_clear()
        out = _cli("codes", "fetch", "--json", kb=scratch)
        get_settings.cache_clear()
    finally:
        srv.close()
    assert out.returncode == 0, out.stderr
    reports = {r["kind"]: r for r in json.loads(out.stdout)["imports"]}
    assert list(reports) == list(FETCH_KINDS)
    assert reports["index"]["counts"]["entries"] > 70_000  # FY2017: 77,199 entries
    assert reports["pcs"]["counts"]["valid_codes"] == 79_115  # CMS FY2026 order file
    assert reports["hcpcs"]["counts"]["codes"] == 8_463  # CMS October 2025 ANWEB
    assert reports["hcpcs"]["counts"]["modifiers"] == 383
    assert sorted(srv.requests) == sorted(f"/{n}" for n in (CM_ZIP, PCS_ZIP, HCPCS_ZIP))
    assert missing_kinds(scratch) == []
