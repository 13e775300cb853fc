"""Re-measure the dev guideline suite's known-failure markers on a model pack.

    CLINICODE_DATA_DIR=<bare data dir> .venv/bin/python bench/guideline_markers.py \\
        --model <default pack built from a bare KB> [--write] [--label TEXT]

Runs every note of ``tests/regression/guideline_notes.yaml`` through
``clinicode.load(model).suggest`` (the served path) and prints how many pass, which notes pass
now although they carry a ``known_failure`` marker, and which fail without one. With ``--write``
it edits the file in place, line by line (comments and layout kept): a passing note loses its
marker, a failing note without one gains ``known_failure: "<label>: <failures>"``, and a failing
note whose failures changed gets the new ones (a marker whose failures are unchanged is kept
as written, with its hand-written reason). The markers must be measured on the default pack a
fresh clone builds (``clinicode setup`` on a KB without the Index): the tests run on it. The
held-out file is never read here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "tests" / "regression" / "guideline_notes.yaml"
LABEL = "default pack (ranker/NLP upstream of the layer)"
_ID = re.compile(r"^- id: (\S+)\s*$")
_MARKER = re.compile(r"^  known_failure: ")


def measure(engine: Any, suite: Path) -> dict[str, list[str]]:
    """``{case id: failures}`` of every dev case (empty list: it passes)."""
    from golden import suite_module

    sm = suite_module()
    return {
        c.id: sm.check_case(c, engine.suggest(c.text, setting=c.setting))
        for c in sm.load_suite(suite)
    }


def rewrite(lines: list[str], fails: dict[str, list[str]], label: str) -> list[str]:
    """The suite file's lines with each case's marker set from its measured failures."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        m = _ID.match(line)
        if m is None:
            continue
        got = fails.get(m.group(1), [])
        old = lines[i] if i < len(lines) and _MARKER.match(lines[i]) else None
        if old is not None:
            i += 1
        if not got:
            continue
        text = "; ".join(got)
        if old is not None and old.rstrip().endswith(json.dumps(text)[1:]):
            out.append(old)  # same failures: keep its reason as written
        else:
            out.append(f"  known_failure: {json.dumps(f'{label}: {text}')}\n")
    return out


def marked(lines: list[str]) -> set[str]:
    ids, current = set(), None
    for line in lines:
        m = _ID.match(line)
        if m is not None:
            current = m.group(1)
        elif current is not None and _MARKER.match(line):
            ids.add(current)
    return ids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="model pack dir (default pack)")
    ap.add_argument("--suite", type=Path, default=SUITE)
    ap.add_argument("--label", default=LABEL, help="reason written before a new marker's failures")
    ap.add_argument("--write", action="store_true", help="edit the suite file's markers")
    args = ap.parse_args(argv)
    import clinicode

    fails = measure(clinicode.load(args.model), args.suite)
    lines = args.suite.read_text(encoding="utf-8").splitlines(keepends=True)
    before = marked(lines)
    failing = {k for k, v in fails.items() if v}
    print(f"dev suite: {len(fails) - len(failing)}/{len(fails)} notes pass")
    lost = sorted(before - failing)
    gained = sorted(failing - before)
    print(f"pass now, marker dropped ({len(lost)}): {', '.join(lost) or '-'}")
    print(f"fail now, marker added ({len(gained)}): {', '.join(gained) or '-'}")
    for k in gained:
        print(f"  {k}: {'; '.join(fails[k])}")
    if args.write:
        args.suite.write_text("".join(rewrite(lines, fails, args.label)), encoding="utf-8")
        print(f"markers written to {args.suite}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
