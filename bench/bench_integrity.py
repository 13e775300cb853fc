"""Issue 13, failures 3-7, reproduced: each case prints what the service or the CLI does now.

    python bench/bench_integrity.py              # all sections
    python bench/bench_integrity.py --only 3,5   # some of them

3. invalid coding decisions (want: 422 naming the reason, none in the export; ids that
   disagree: 409);
4. a reused note id (want: both texts kept, each decision paired with its own text; tenants);
5. a damaged kb.sqlite (want: 503 naming the file, /health/ready names it, no path; setup
   refuses a 0-byte KB with exit 2 and leaves it as it was);
6. truncated official files (want: exit 2, the KB unchanged);
7. keys created and revoked on a running 2-worker server (want: live within 5 s), a damaged
   api_keys.json (named), an edited lexicon cache (refused), query text in the access log
   (none), absolute paths in /health/ready (none), the retention purge.

Sections 3-5 run the service in-process (FastAPI's TestClient, the test suite's fake engine,
the code sets of your data dir); 6 and 7 run the real CLI and a real uvicorn. Everything
happens in temporary folders; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SHARED = REPO.parent / "shared" / "data"
USER_KEY, ADMIN_KEY = "bench-user-key-0123456789", "bench-admin-key-0123456789"
NOTE = "HPI: type 2 diabetes mellitus on metformin.\nAssessment: hypertension. No pneumonia.\n"


_USER_KB: list[Path] = []


def user_kb() -> Path:
    """Your knowledge base (read once, before the bench points CLINICODE_DATA_DIR elsewhere)."""
    if not _USER_KB:
        from clinicode.settings import Settings

        path = Settings().kb_path
        if not path.exists():
            raise SystemExit(f"no knowledge base at {path}: run `clinicode setup` first")
        _USER_KB.append(path)
    return _USER_KB[0]


def row(*cells: object, widths: tuple[int, ...] = (44, 8)) -> None:
    parts = [str(c).ljust(w) for c, w in zip(cells, widths, strict=False)]
    parts += [str(c) for c in cells[len(widths) :]]
    print("  " + " ".join(parts).rstrip())


@contextmanager
def service(data: Path, engine_factory: Callable[[], Any] | None = None) -> Iterator[Any]:
    """The app with the fake engine over ``data``, as a TestClient (user key by default)."""
    from fastapi.testclient import TestClient
    from repo_modules import load_repo_module

    from clinicode.kb import KnowledgeBase
    from clinicode.serve.app import create_app
    from clinicode.settings import Settings

    fakes = load_repo_module("tests/serve/conftest.py", "clinicode_serve_fakes")
    settings = Settings(
        data_dir=data,
        api_keys=USER_KEY,  # type: ignore[arg-type]
        admin_api_keys=ADMIN_KEY,  # type: ignore[arg-type]
        model_load_timeout_s=30,
    )
    kb = KnowledgeBase(data / "kb.sqlite")
    factory = engine_factory or (lambda: fakes.FakeEngine(kb=kb))
    with TestClient(create_app(settings, engine_factory=factory)) as client:
        client.headers["X-API-Key"] = USER_KEY
        yield client


def suggest(client: Any, note_id: str, text: str = NOTE, key: str = USER_KEY) -> int:
    body = {"text": text, "setting": "outpatient", "note_id": note_id}
    return int(client.post("/v1/suggest", json=body, headers={"X-API-Key": key}).status_code)


def export(client: Any, key: str = ADMIN_KEY) -> list[dict[str, Any]]:
    r = client.get("/v1/feedback/export", headers={"X-API-Key": key})
    return [json.loads(line) for line in r.text.splitlines()]


# -- 3 ----------------------------------------------------------------------------------------
DECISIONS: list[tuple[str, dict[str, Any]]] = [
    ("add E11 (category)", {"action": "add", "code": "E11"}),
    ("add R07 (category)", {"action": "add", "code": "R07"}),
    ("add I00-I99 (chapter)", {"action": "add", "code": "I00-I99"}),
    ("add NOTACODE1 in HCPCS", {"action": "add", "code": "NOTACODE1", "system": "HCPCS"}),
    ("add XXXXXXX in ICD-10-PCS", {"action": "add", "code": "XXXXXXX", "system": "ICD-10-PCS"}),
    ("modify I10 -> A00-B99", {"action": "modify", "code": "I10", "final_code": "A00-B99"}),
    ("modify I10 -> E08-E13", {"action": "modify", "code": "I10", "final_code": "E08-E13"}),
    ("modify I10 -> S72.001 (no 7th char)", {"action": "modify", "code": "I10", "final_code": "S72.001"}),
]  # fmt: skip


def section_3(tmp: Path) -> None:
    print("3. invalid coding decisions (want 422 naming the reason; none exported)")
    with service(_data_dir(tmp / "s3")) as client:
        body = {"text": NOTE, "setting": "outpatient", "note_id": "fb-3"}
        sid = client.post("/v1/suggest", json=body).json()["codes"][0]["suggestion_id"]
        suggest(client, "other-3", "Fever and chest pain.")
        ok = 0
        for name, payload in DECISIONS:
            r = client.post("/v1/feedback", json={"note_id": "fb-3", **payload})
            ok += r.status_code == 422
            row(name, r.status_code, str(r.json().get("detail"))[:90])
        r = client.post(
            "/v1/feedback", json={"suggestion_id": sid, "note_id": "other-3", "action": "accept"}
        )
        row("note_id disagreeing with suggestion_id", r.status_code, r.json().get("detail")[:90])
        exported = [c for rec in export(client) for c in rec["codes"]]
    print(f"  => {ok}/{len(DECISIONS)} got 422; conflicting ids: {r.status_code}; codes in the "
          f"export: {len(exported)}")  # fmt: skip


# -- 4 ----------------------------------------------------------------------------------------
def section_4(tmp: Path) -> None:
    print("4. reusing a note id (want both texts kept, decisions paired with their text)")
    text_a, text_b = "Type 2 diabetes mellitus. Hypertension.", "Fever. Chest pain."
    with service(_data_dir(tmp / "s4")) as client:
        suggest(client, "fb-1", text_a)
        client.post("/v1/feedback", json={"note_id": "fb-1", "code": "E11.9", "action": "accept"})
        suggest(client, "fb-1", text_b, key=ADMIN_KEY)  # another key
        client.post("/v1/feedback", json={"note_id": "fb-1", "code": "R50.9", "action": "accept"})
        rows = export(client)
        for rec in rows:
            codes = ",".join(c["code"] for c in rec["codes"])
            row(f"export {rec['id']} (version {rec['version']})", codes, repr(rec["text"][:40]))
        both = {rec["text"] for rec in rows} == {text_a, text_b}
        paired = all(
            (rec["text"] == text_a) == (rec["codes"][0]["code"] == "E11.9") for rec in rows
        )
    print(f"  => both texts kept: {both}; each decision with its own text: {paired}")
    _tenants(tmp / "s4t")


def _tenants(data_root: Path) -> None:
    from clinicode.serve.auth import KeyRing, create_key
    from clinicode.settings import Settings

    data = _data_dir(data_root)
    settings = Settings(data_dir=data)
    k1, _ = create_key(settings, role="admin", tenant="clinic-a")
    k2, _ = create_key(settings, role="admin", tenant="clinic-b")
    with service(data) as client:
        client.app.state.service.keys = KeyRing.from_settings(settings, reload_s=0)
        suggest(client, "shared-id", "Hypertension.", key=k1)
        r = client.post(
            "/v1/feedback",
            json={"note_id": "shared-id", "code": "I10", "action": "accept"},
            headers={"X-API-Key": k2},
        )
        row("tenant B deciding on tenant A's note", r.status_code, r.json().get("detail"))


# -- 5 ----------------------------------------------------------------------------------------
def section_5(tmp: Path) -> None:
    print("5. a damaged kb.sqlite (want 503 naming the file, no path; never rebuilt)")
    from repo_modules import load_repo_module

    from clinicode.kb import KnowledgeBase

    data = _data_dir(tmp / "s5", copy_kb=True)
    fakes = load_repo_module("tests/serve/conftest.py", "clinicode_serve_fakes")

    class Reading(fakes.FakeEngine):  # type: ignore[misc,name-defined]
        def suggest(self, text: str, setting: str = "outpatient", **kw: Any) -> Any:
            self.kb.get("E11.9", "ICD-10-CM")
            return super().suggest(text, setting, **kw)

    kb_file = data / "kb.sqlite"
    engine = Reading(kb=KnowledgeBase(kb_file))
    with service(data, lambda: engine) as client:
        os.truncate(kb_file, kb_file.stat().st_size // 2)
        for name, method, url, body in (
            ("search", "GET", "/v1/codes/search?q=diabetes", None),
            ("lookup", "GET", "/v1/codes/ICD-10-CM/E11.9", None),
            ("suggest", "POST", "/v1/suggest", {"text": "Hypertension.", "setting": "outpatient"}),
            ("/health/ready (no key)", "GET", "/health/ready", None),
        ):  # fmt: skip
            r = client.request(method, url, json=body)
            msg = r.json().get("detail") or r.json().get("reason")
            leak = str(data) in r.text
            row(f"truncated KB: {name}", r.status_code, f"path shown: {leak}; {str(msg)[:80]}")
    empty = _data_dir(tmp / "s5e", copy_kb=True) / "kb.sqlite"
    empty.write_bytes(b"")
    out = clinicode("setup", "--kb", str(empty))
    row("0-byte KB: clinicode setup", f"exit {out.returncode}", _last_line(out.stderr)[:100])
    print(f"  => 0-byte KB left as it was: {empty.stat().st_size == 0}")


# -- 6 ----------------------------------------------------------------------------------------
def section_6(tmp: Path) -> None:
    print("6. truncated official files (want exit 2 and the KB unchanged)")
    pcs = SHARED / "pcs" / "icd10pcs_order_2026.txt"
    hcpcs = SHARED / "hcpcs-2025" / "HCPC2025_OCT_ANWEB.csv"
    index = SHARED / "icd10cm-index-2025" / "ICD10CM_2025_Index.csv"
    xml_zip = SHARED / "icd10cm-index-fy2017-xml" / "ICD10CM_FY2017_Full_XML.zip"
    if not pcs.exists():
        print(f"  skipped: needs {SHARED}")
        return
    kb = _data_dir(tmp / "s6", copy_kb=True) / "kb.sqlite"
    cuts = tmp / "cuts"
    cuts.mkdir()

    def lines(src: Path, n: int) -> Path:
        with src.open("rb") as f:
            data = b"".join(next(f) for _ in range(n))
        return _write(cuts / f"{n}" / src.name, data)

    def fraction(src: Path, frac: float, at_line_end: bool) -> Path:
        data = src.read_bytes()
        n = int(len(data) * frac)
        n = data.rindex(b"\n", 0, n) + 1 if at_line_end else n
        return _write(cuts / f"{frac}-{at_line_end}" / src.name, data[:n])

    pcs_mid = pcs.read_bytes()
    mid = pcs_mid.index(b"\n", 40_000 * 100) - 30  # inside a long title
    cases = [
        ("pcs", "PCS cut to 40,000 lines", lines(pcs, 40_000)),
        ("pcs", "PCS cut mid-line (a title cut short)", _write(cuts / "mid" / pcs.name, pcs_mid[:mid])),
        ("hcpcs", "HCPCS cut in half", fraction(hcpcs, 0.5, True)),
        ("index", "Index CSV cut to 90%", fraction(index, 0.9, True)),
        ("index", "Index CSV cut mid-line", fraction(index, 0.9, False)),
        ("drug", "FY2017 XML zip cut to 60%", fraction(xml_zip, 0.6, False)),
    ]  # fmt: skip
    clinicode("codes", "build", "--kb", str(kb))  # bring the copy up to this version first
    refused = unchanged = 0
    for kind, name, path in cases:
        before = _kb_state(kb)
        out = clinicode("codes", "import", kind, str(path), "--kb", str(kb))
        refused += out.returncode == 2
        same = _kb_state(kb) == before
        unchanged += same
        row(name, f"exit {out.returncode}", f"KB unchanged: {same}; {_last_line(out.stderr)[:90]}")
    print(f"  => {refused}/{len(cases)} refused with exit 2; KB unchanged after "
          f"{unchanged}/{len(cases)}")  # fmt: skip


# -- 7 ----------------------------------------------------------------------------------------
def section_7(tmp: Path) -> None:
    print("7. keys live on 2 workers, damaged key file, sealed caches, logs, paths, retention")
    _keys_live(tmp / "s7")
    bad = tmp / "s7k"
    bad.mkdir()
    (bad / "api_keys.json").write_text('{"keys": [ {"hash": ')
    out = clinicode("keys", "list", env={"CLINICODE_DATA_DIR": str(bad)})
    row("damaged api_keys.json: keys list", f"exit {out.returncode}", _last_line(out.stderr)[:100])
    _lexicon(tmp / "s7l")
    _retention(tmp / "s7r")


def _keys_live(data: Path) -> None:
    server = Uvicorn(_data_dir(data), workers=2)
    try:
        server.wait_ready(120)
        from clinicode.serve.auth import create_key, revoke_key
        from clinicode.settings import Settings

        settings = Settings(data_dir=server.data)
        written = time.time()  # what `clinicode keys create` / `revoke` call
        key, kid = create_key(settings, role="user", label="bench")
        t_live = server.until(key, lambda s: s == 200) - written
        written = time.time()
        revoke_key(settings, kid)
        t_dead = server.until(key, lambda s: s == 401) - written
        row("new key accepted by both workers after", f"{t_live:.1f} s", "(from the file write)")
        row("revoked key refused by both workers after", f"{t_dead:.1f} s", "(from the write)")
        q = "hiv positive patient"
        httpx.get(server.base + "/v1/codes/search", params={"q": q}, headers=server.auth)
        ready = httpx.get(server.base + "/health/ready").text
        time.sleep(0.5)
        log = server.log.read_text(errors="replace")
        row("search query text in the access log", "hiv" in log, _grep(log, "/v1/codes/search"))
        row("absolute path in /health/ready", str(server.data) in ready)
    finally:
        server.stop()


def _lexicon(tmp: Path) -> None:
    from clinicode.errors import ClinicodeError
    from clinicode.nlp import lexicon as lex

    terms = [
        ("ICD-10-CM", "J18.9", "Pneumonia, unspecified organism", "title"),
        ("ICD-10-CM", "A00.9", "Cholera, unspecified", "title"),
    ]
    entries, max_words = lex.build_entries(terms, set())
    path = lex.write_lexicon(entries, max_words, tmp / "lexicon-bench.json")
    data = json.loads(path.read_text())
    cholera = next(v for v in data["entries"].values() if "A00.9" in v)
    data["entries"] = {k: (cholera if "J18.9" in v else v) for k, v in data["entries"].items()}
    path.write_text(json.dumps(data))
    lex.load_lexicon.cache_clear()
    try:
        lex.load_lexicon(str(path))
        row("edited lexicon cache (pneumonia -> cholera)", "LOADED")
    except ClinicodeError as exc:
        row("edited lexicon cache (pneumonia -> cholera)", "refused", str(exc)[:90])


def _retention(tmp: Path) -> None:
    from clinicode.serve.store import FeedbackStore

    store = FeedbackStore(f"sqlite:///{tmp / 'feedback.sqlite'}")
    store.put_note(note_id="r1", text_=NOTE, setting="outpatient", key_id="k")
    store.close()
    env = {"CLINICODE_DATA_DIR": str(tmp), "CLINICODE_NOTE_RETENTION_DAYS": "0"}
    out = clinicode("feedback", "purge", env=env)
    row("retention 0 days: feedback purge", f"exit {out.returncode}", out.stdout.strip())


class Uvicorn:
    """The service with the fake engine under a real uvicorn (access log on), own data dir."""

    def __init__(self, data: Path, workers: int) -> None:
        from bench_api_load import free_port

        self.data, self.port = data, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.auth = {"X-API-Key": USER_KEY}
        env = _env(
            {
                "CLINICODE_DATA_DIR": str(data),
                "CLINICODE_API_KEYS": USER_KEY,
                "CLINICODE_ADMIN_API_KEYS": ADMIN_KEY,
            }
        )
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "bench_api_load:fake_app",
            "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(workers), "--log-level", "info",
        ]  # fmt: skip
        self.log = data / "server.log"
        with self.log.open("wb") as fh:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=fh, stderr=fh, start_new_session=True, cwd=REPO
            )

    def wait_ready(self, timeout: float) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if httpx.get(self.base + "/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit(f"server not ready:\n{self.log.read_text()[-2000:]}")

    def until(self, key: str, done: Callable[[int], bool], limit: float = 30.0) -> float:
        """The wall-clock time of the first of 20 requests in a row (new connections, so spread
        over the workers) that all satisfy ``done``; inf when that never happens."""
        t0 = time.time()
        streak, since = 0, t0
        while time.time() - t0 < limit and streak < 20:
            sent = time.time()
            with httpx.Client(base_url=self.base) as c:  # a new connection: any worker
                s = c.get("/v1/me", headers={"X-API-Key": key}).status_code
            if done(s):
                since = sent if streak == 0 else since
                streak += 1
            else:
                streak = 0
            time.sleep(0.02)
        return since if streak >= 20 else float("inf")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)


# -- helpers ----------------------------------------------------------------------------------
def _data_dir(path: Path, copy_kb: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if copy_kb:
        shutil.copyfile(user_kb(), path / "kb.sqlite")
    else:
        (path / "kb.sqlite").symlink_to(user_kb())
    return path


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICODE_")}
    env.update(CLINICODE_FETCH_ON_SETUP="0", **extra)
    return env


def clinicode(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "clinicode.cli", *args]
    run_env = _env(env or {"CLINICODE_DATA_DIR": tempfile.mkdtemp(prefix="clinicode-bench-")})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=run_env)


def _last_line(text: str) -> str:
    return " ".join(text.split()) or "(nothing)"


def _grep(text: str, needle: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if needle in ln), "(no line)")[:90]


def _kb_state(path: Path) -> list[tuple[Any, ...]]:
    from clinicode.kb import KnowledgeBase

    kb = KnowledgeBase(path)
    try:
        state = [(s.system, s.version, s.source_hash, s.n_codes) for s in kb.systems()]
        return [*state, ("index", kb.index_count("index"))]
    finally:
        kb.close()


SECTIONS = {"3": section_3, "4": section_4, "5": section_5, "6": section_6, "7": section_7}


def main() -> None:
    sys.path.insert(0, str(BENCH_DIR))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(SECTIONS), help="Sections, e.g. 3,5.")
    args = ap.parse_args()
    print(f"code sets: {user_kb()}\n")
    with tempfile.TemporaryDirectory(prefix="clinicode-integrity-") as tmp:
        os.environ["CLINICODE_DATA_DIR"] = str(Path(tmp) / "home")
        os.environ["CLINICODE_FETCH_ON_SETUP"] = "0"
        for name in args.only.split(","):
            t0 = time.monotonic()
            SECTIONS[name.strip()](Path(tmp))
            print(f"  ({time.monotonic() - t0:.1f} s)\n")


if __name__ == "__main__":
    main()
