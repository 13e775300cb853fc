"""MTSamples reference bench: the engine on 40 hand-coded real US transcriptions.

    .venv/bin/python bench/bench_mtsamples.py [--model DIR] [--heldout | --dev]
        [--csv ../shared/data/mtsamples/mtsamples.csv]

Runs ``clinicode.load(model).suggest(text, setting=...)`` on one half of
``tests/regression/mtsamples_coded.yaml`` (``--dev``, the default, or ``--heldout``) and prints:

- recall of must items (an ``"A|B"`` item is found when either code is in ``codes``);
- precision of ``codes`` against the must items (a code that matches no must item is a false
  positive, so a correct code the coder did not list also counts against it);
- the share of notes with every must item and no must_not code;
- per-note failures (row index, specialty and codes only: never note text).

The held-out half is reported apart and is never tuned on: run it to measure, not to choose.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CSV = REPO.parent / "shared" / "data" / "mtsamples" / "mtsamples.csv"


def mtsamples_module() -> Any:
    """``tests/regression/mtsamples.py`` (test code, not shipped)."""
    from repo_modules import load_repo_module

    return load_repo_module("tests/regression/mtsamples.py", "clinicode_mtsamples_reference")


def run(engine: Any, cases: list[Any], label: str) -> None:
    mt = mtsamples_module()
    must_hit = must_total = matching = n_codes = passed = 0
    failures: list[str] = []
    t0 = time.perf_counter()
    for case in cases:
        row = case.row
        result = engine.suggest(case.text, setting=row.setting)
        s = mt.score_case(row, result)
        must_hit += s.must_hit
        must_total += s.must_total
        matching += s.codes_matching
        n_codes += s.codes_total
        passed += s.passed
        fails = mt.check_case(row, result)
        if fails:
            failures.append(
                f"  {row.index:>5} {row.setting:<10} {row.specialty[:28]:<28} "
                f"must {s.must_hit}/{s.must_total}, codes {s.codes_total}: {'; '.join(fails)}"
            )
    secs = time.perf_counter() - t0
    n = len(cases)
    print(f"MTSamples {label}: {n} notes, {must_total} must items, {n_codes} codes served")
    print(f"  recall of must items      {must_hit / must_total:.3f}  ({must_hit}/{must_total})")
    prec = matching / n_codes if n_codes else 0.0
    print(f"  precision of codes        {prec:.3f}  ({matching}/{n_codes})")
    print(f"  notes fully right         {passed / n:.3f}  ({passed}/{n})")
    print(f"  wall time                 {secs:.1f}s ({secs / n:.2f}s/note)")
    if failures:
        print("per-note failures:")
        print("\n".join(failures))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    half = ap.add_mutually_exclusive_group()
    half.add_argument("--heldout", action="store_true", help="the held-out half (measure only)")
    half.add_argument("--dev", action="store_true", help="the dev half (default)")
    ap.add_argument("--model", type=Path, default=None, help="model pack dir (default pack)")
    ap.add_argument("--csv", type=Path, default=CSV, help="mtsamples.csv")
    args = ap.parse_args(argv)
    if not args.csv.is_file():
        print(f"{args.csv} not found: the MTSamples bench needs ../shared/data")
        return 2
    mt = mtsamples_module()
    heldout = bool(args.heldout)
    cases = mt.load_cases(args.csv, heldout=heldout)
    import clinicode

    try:
        engine = clinicode.load(args.model)
    except Exception as exc:  # no engine module or no model pack yet
        print(f"cannot load the engine ({type(exc).__name__}: {exc}); nothing to bench")
        return 2
    run(engine, cases, "held out" if heldout else "dev")
    return 0


if __name__ == "__main__":
    sys.exit(main())
