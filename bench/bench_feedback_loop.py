"""The feedback loop, measured end to end (issue 15, part 2).

    CLINICODE_DATA_DIR=... [CLINICODE_SHARED_DATA=../shared/data] \
        .venv/bin/python bench/bench_feedback_loop.py [--notes 300]
        [--curve 100] [--clients 16] [--out DIR]

1. starts the service (uvicorn, in this process, on a free port) with the data dir's serving
   pack (the default pack) and a fresh feedback database;
2. sends the first ``--notes`` CodiEsp train notes through ``POST /v1/suggest`` and acts as
   the coder with their gold codes through ``POST /v1/feedback`` (accept what is right, reject
   what is wrong, add what is missing; a CodiEsp 4-character ICD-10-PCS code is confirmed as
   the partial code it is, and codes the KB refuses (not billable in FY2026) are counted by
   reason in ``review.refused_reasons``);
3. exports (``GET /v1/feedback/export``), and retrains with the serving pack as ``--base`` on
   all of it and on its first ``--curve`` notes (the learning curve; the same decisions as a
   100-note review would make, since both review against the same pack);
4. promotes the ``--notes`` pack through ``POST /v1/admin/packs/promote`` while ``--clients``
   clients keep sending dev notes to ``/v1/suggest``, and counts the failed requests (any
   answer but 200, or no answer);
5. measures CodiEsp dev D and P MAP (ranker order, ``training.evaluate``) of the base and the
   retrained packs, and runs the guidelines note suite (``tests/regression``) on each.

The promotion is rolled back at the end (the data dir serves what it served before).
Timings on a shared machine are noisy; ``uptime`` is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLINICODE_SHARED_DATA", REPO.parent / "shared" / "data"))
USER_KEY = "bench-loop-user-key-0123456789"
ADMIN_KEY = "bench-loop-admin-key-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn in a thread, on the data dir's settings with bench keys."""

    def __init__(self, db: Path, deadline_s: float) -> None:
        import uvicorn

        from clinicode.serve.app import create_app
        from clinicode.settings import Settings

        self.settings = Settings(
            api_keys=USER_KEY,  # type: ignore[arg-type]
            admin_api_keys=ADMIN_KEY,  # type: ignore[arg-type]
            database_url=f"sqlite:///{db}",
            model_load_timeout_s=600,
            request_deadline_s=deadline_s,
        )
        self.port = _free_port()
        app = create_app(self.settings)
        cfg = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        import httpx

        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health/ready", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the server did not get ready")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def _load_under_promotion(url: str, texts: list[str], clients: int, promote: Any) -> dict[str, Any]:
    """``clients`` threads send notes until the promotion has switched and 3 s more."""
    import httpx

    stop = threading.Event()
    codes: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, timeout=120, headers={"X-API-Key": USER_KEY}) as c:
            j = i
            while not stop.is_set():
                body = {"text": texts[j % len(texts)], "setting": "outpatient"}
                j += clients
                try:
                    r = c.post("/v1/suggest", json=body)
                    status = str(r.status_code)
                    version = r.json()["model"]["version"] if r.status_code == 200 else None
                except httpx.HTTPError as exc:
                    status, version = type(exc).__name__, None
                with lock:
                    codes[status] += 1
                    if version:
                        versions[version] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(3)
    t0 = time.monotonic()
    row = promote()
    switched = time.monotonic() - t0
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()
    failed = sum(v for k, v in codes.items() if k != "200")
    return {
        "requests": sum(codes.values()),
        "failed": failed,
        "statuses": dict(codes),
        "served_by_version": dict(versions),
        "switch_s": round(switched, 1),
        "promoted": row["version"],
    }


def _guideline_suite(pack: Path) -> tuple[int, int, list[str]]:
    sys.path.insert(0, str(REPO / "bench"))
    from repo_modules import load_repo_module

    import clinicode
    from clinicode.settings import get_settings

    suite = load_repo_module("tests/regression/suite.py", "clinicode_guideline_suite")
    cases = suite.load_suite(REPO / "tests" / "regression" / "guideline_notes.yaml")
    engine = clinicode.load(pack, kb_path=get_settings().kb_path)
    failing = [
        c.id for c in cases if suite.check_case(c, engine.suggest(c.text, setting=c.setting))
    ]
    return len(cases) - len(failing), len(cases), failing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--notes", type=int, default=300)
    ap.add_argument("--curve", type=int, default=100)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--out", type=Path, default=None, help="keep the export and report here")
    ap.add_argument(
        "--deadline",
        type=float,
        default=20.0,
        help="the server's request deadline in s (default: the product's 20 s; on a crowded "
        "shared machine a longer one separates load failures from promotion failures)",
    )
    args = ap.parse_args()
    os.environ.setdefault("CLINICODE_FETCH_ON_SETUP", "0")

    from clinicode.kb import open_kb
    from clinicode.models import pack_registry
    from clinicode.settings import get_settings
    from clinicode.training import loop
    from clinicode.training.data import load_codiesp

    train_dir, dev_dir = SHARED / "codiesp" / "train", SHARED / "codiesp" / "dev"
    if not train_dir.is_dir() or not dev_dir.is_dir():
        print(f"skipped: {train_dir} or {dev_dir} absent")
        return 0
    print(f"load average: {os.getloadavg()}")
    settings = get_settings()
    base_dir = pack_registry.serving_pack_dir(settings)
    base_name = base_dir.name
    train = [n for n in load_codiesp(train_dir) if n.codes][: args.notes]
    dev = load_codiesp(dev_dir)
    work = args.out or Path(tempfile.mkdtemp(prefix="clinicode-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    kb = open_kb()
    report: dict[str, Any] = {
        "base": str(base_dir),
        "notes": len(train),
        "request_deadline_s": args.deadline,
    }

    with Server(work / "feedback.sqlite", args.deadline) as srv:
        import httpx

        with httpx.Client(base_url=srv.url, timeout=120) as client:
            t0 = time.monotonic()
            stats = loop.review_notes(client, train, key=USER_KEY)
            report["review"] = {**stats.as_dict(), "s": round(time.monotonic() - t0, 1)}
            print(f"review: {json.dumps(report['review'])}")
            export = work / "export.jsonl"
            n_exported = loop.export_feedback(client, admin_key=ADMIN_KEY, out=export)
            rows = loop.read_jsonl(export)
            curve = work / "export_curve.jsonl"
            curve.write_text(
                "".join(json.dumps(r) + "\n" for r in rows[: args.curve]), encoding="utf-8"
            )
            print(f"exported {n_exported} reviewed notes")
            packs = {base_name: base_dir}
            for label, data in ((f"loop-{args.curve}", curve), (f"loop-{args.notes}", export)):
                t0 = time.monotonic()
                out = settings.packs_dir / label
                loop.retrain(data, base=base_dir, out=out, kb=kb, name=f"clinicode-{label}")
                packs[label] = out
                print(f"retrained {label} in {time.monotonic() - t0:.0f} s")
            texts = [n.text for n in dev[:60]]
            load = _load_under_promotion(
                srv.url,
                texts,
                args.clients,
                lambda: loop.promote(client, f"loop-{args.notes}", admin_key=ADMIN_KEY),
            )
            report["promotion_under_load"] = load
            print(f"promotion under {args.clients}-client load: {json.dumps(load)}")
    pack_registry.rollback(settings)

    figures = loop.evaluate_dirs(packs, dev)
    report["dev"] = figures
    base_fig = figures[base_name]
    for label in packs:
        if label == base_name:
            continue
        for task in ("D", "P"):
            if task in figures[label] and task in base_fig:
                gain = figures[label][task] - base_fig[task]
                report.setdefault("gains", {})[f"{label} {task}"] = gain
    suites = {}
    for label, d in packs.items():
        passed, total, failing = _guideline_suite(d)
        suites[label] = {"passed": passed, "total": total, "failing": failing}
    report["guideline_suite"] = suites
    (work / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")

    print(f"\nCodiEsp dev MAP (ranker order), {len(dev)} notes; load average {os.getloadavg()}")
    for label, fig in figures.items():
        line = "  ".join(f"{k} {v:.3f}" for k, v in fig.items())
        print(f"  {label:<12} {line}")
    for k, v in report.get("gains", {}).items():
        print(f"  gain {k}: {v:+.3f}")
    for label, s in suites.items():
        print(f"  guideline suite {label}: {s['passed']}/{s['total']} pass")
    print(
        f"  failed requests during promotion: {load['failed']} of {load['requests']} "
        f"({args.clients} clients, request deadline {args.deadline:.0f} s)"
    )
    print(f"report: {work / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
