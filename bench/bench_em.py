"""E/M level bench: exact level and within one level on the hand-written visit notes.

    .venv/bin/python bench/bench_em.py [--heldout] [--direct] [--model DIR] [-v]

Runs each note of ``tests/models/em_notes.yaml`` (dev) or, with ``--heldout``,
``tests/models/em_notes_heldout.yaml`` (written before the calculator, never tuned on) end to
end through ``clinicode.load().suggest(text, setting=...)`` and takes the E/M code from the
CPT codes served (``--direct`` calls the calculator alone, without the NLP pipeline). Prints
exact level, within one level (same family, one level apart; a missed visit or a new vs
established mix-up is a miss), add-on and query agreement, and each miss with the rule path.
Bars (issue 12): exact >= 85%, within one >= 97%. The held-out figure is a measurement: run it
once per calculator version and change nothing after reading it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def _served(engine: Any, note: Any) -> tuple[str | None, list[str], list[str], list[str]]:
    """(E/M code, add-on codes, query axes, explanation) as ``suggest`` serves them."""
    suite = sys.modules["clinicode_em_suite"]
    res = engine.suggest(note.text, setting=note.setting)
    em = [s for s in res.codes if s.system == "CPT" and suite.family_of(s.code)]
    main = [s for s in em if suite.family_of(s.code)[0] != "prolonged"]
    adds = [s.code for s in em if suite.family_of(s.code)[0] == "prolonged"]
    if not main:
        return None, adds, [], []
    s = main[0]
    return s.code, adds, [s.query.axis] if s.query else [], s.explanation


def _direct(note: Any) -> tuple[str | None, list[str], list[str], list[str]]:
    from clinicode.models.em import decide

    lv = decide(note.text, note.setting)
    if lv is None:
        return None, [], [], []
    adds = [lv.addon[0]] if lv.addon else []
    return lv.code, adds, [q.axis for q in lv.queries][:1], lv.lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout", action="store_true", help="measure the held-out notes")
    ap.add_argument("--direct", action="store_true", help="the calculator alone, no engine")
    ap.add_argument("--model", default=None, help="pack folder (default: the default pack)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every note's path")
    args = ap.parse_args(argv)
    from repo_modules import load_repo_module

    suite = load_repo_module("tests/models/em_suite.py", "clinicode_em_suite")
    path = suite.HELDOUT if args.heldout else suite.DEV
    notes = suite.load_notes(path)
    if args.heldout != all(n.heldout for n in notes):
        print(f"error: {path} mixes held-out and dev notes", file=sys.stderr)
        return 2
    engine = None
    if not args.direct:
        import clinicode

        engine = clinicode.load(args.model)
    t0 = time.perf_counter()
    exact = near = extras = 0
    for n in notes:
        code, adds, queries, why = _direct(n) if engine is None else _served(engine, n)
        exact += code == n.code
        near += suite.within_one(n.code, code)
        extras_ok = adds == n.addons and queries[:1] == n.query[:1]
        extras += extras_ok
        if args.verbose or code != n.code or not extras_ok:
            mark = "ok  " if code == n.code else "MISS"
            print(
                f"{mark} {n.id}: expected {n.code} {n.addons or ''} {n.query or ''}"
                f" got {code} {adds or ''} {queries or ''}"
            )
            print(f"     why: {n.why}")
            for line in why:
                print(f"     | {line}")
    ms = (time.perf_counter() - t0) * 1000 / max(len(notes), 1)
    part = "held-out" if args.heldout else "dev"
    mode = "calculator alone" if engine is None else "end to end (suggest)"
    k = len(notes)
    print(f"\nE/M {part} notes: {k} ({mode}, {ms:.1f} ms/note)")
    print(f"  exact level      {exact}/{k} = {exact / k:.1%}  (bar 85%)")
    print(f"  within one level {near}/{k} = {near / k:.1%}  (bar 97%)")
    print(f"  add-ons and first query as expected {extras}/{k} = {extras / k:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
