"""Golden outputs: the full ``suggest`` JSON of CodiEsp dev notes and of the guideline suite.

A refactor that must not change what a coder is served is checked by writing the outputs before
and after it and diffing them:

    .venv/bin/python bench/golden.py write /tmp/before.jsonl [--notes 50] [--model DIR]
    ... refactor ...
    .venv/bin/python bench/golden.py write /tmp/after.jsonl
    .venv/bin/python bench/golden.py diff /tmp/before.jsonl /tmp/after.jsonl

Each line is one note: ``{"id", "setting", "result"}`` with ``result`` the ``SuggestResult``
JSON less ``elapsed_ms`` (a timing). The files hold note text (evidence spans), so they are
written outside the project and never committed. ``diff`` prints, per differing note, which
top-level fields differ and the codes gained or lost in ``codes``, then a summary; it exits 1
when anything differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def suite_module() -> Any:
    """``tests/regression/suite.py`` (test code, not shipped)."""
    from repo_modules import load_repo_module

    return load_repo_module("tests/regression/suite.py", "clinicode_guideline_suite")


def _inputs(n_notes: int) -> list[tuple[str, str, str]]:
    load_suite = suite_module().load_suite
    out: list[tuple[str, str, str]] = []
    dev = SHARED / "codiesp" / "dev" / "text_files_en"
    if dev.is_dir():
        for p in sorted(dev.glob("*.txt"))[:n_notes]:
            out.append((f"codiesp:{p.stem}", "outpatient", p.read_text(encoding="utf-8")))
    else:
        print(f"warning: {dev} absent, CodiEsp notes skipped", file=sys.stderr)
    suite = REPO / "tests" / "regression" / "guideline_notes.yaml"
    for case in load_suite(suite):
        out.append((f"suite:{case.id}", case.setting, case.text))
    return out


def write(path: Path, n_notes: int, model: str | None) -> None:
    import clinicode

    engine = clinicode.load(model)
    with path.open("w", encoding="utf-8") as fh:
        for note_id, setting, text in _inputs(n_notes):
            res = engine.suggest(text, setting=setting).model_dump(mode="json")
            res.pop("elapsed_ms", None)
            row = {"id": note_id, "setting": setting, "result": res}
            fh.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


def _load(path: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return {r["id"]: r for r in rows}


def _codes(res: dict[str, Any], field: str = "codes") -> list[str]:
    return [f"{c['system']}:{c['code']}" for c in res.get(field, [])]


def diff(a: Path, b: Path) -> int:
    before, after = _load(a), _load(b)
    differ = 0
    for key in sorted(set(before) | set(after)):
        ra, rb = before.get(key), after.get(key)
        if ra is None or rb is None:
            print(f"{key}: only in {'after' if ra is None else 'before'}")
            differ += 1
            continue
        if ra == rb:
            continue
        differ += 1
        fields = sorted(
            f
            for f in set(ra["result"]) | set(rb["result"])
            if ra["result"].get(f) != rb["result"].get(f)
        )
        ca, cb = _codes(ra["result"]), _codes(rb["result"])
        gained = [c for c in cb if c not in ca]
        lost = [c for c in ca if c not in cb]
        print(f"{key}: fields {fields}; codes +{gained} -{lost}")
    print(f"{len(before)} before, {len(after)} after, {differ} differ")
    return 1 if differ else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("out", type=Path)
    w.add_argument("--notes", type=int, default=50)
    w.add_argument("--model", default=None)
    d = sub.add_parser("diff")
    d.add_argument("before", type=Path)
    d.add_argument("after", type=Path)
    args = ap.parse_args()
    if args.cmd == "write":
        write(args.out, args.notes, args.model)
    else:
        sys.exit(diff(args.before, args.after))


if __name__ == "__main__":
    main()
