"""Peak memory of loading MIMIC-IV with ``--format mimic-iv`` (synthetic data, real layout).

Writes ``--notes`` synthetic admissions (default 120,000, the size of MIMIC-IV's ICD-10 set;
one discharge note of about ``--chars`` characters each, 5-20 diagnosis and 0-4 procedure rows)
in the exact MIMIC-IV layout in a temporary folder, then loads it in a fresh process for each
mode and prints that process's peak RSS:

* ``stream``: :func:`iter_mimic_iv` over every note, keeping none (what a streaming consumer
  holds: the code tables and one note);
* ``list``: :func:`load_mimic_iv`, every note in memory (what ``clinicode train`` holds), codes
  checked against the KB when one is found in the data dir.

Bar (issue 15): loading 120k synthetic rows stays under 2 GB RSS.

    python bench/bench_mimic.py [--notes 120000] [--chars 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAR_BYTES = 2 * 1024**3


def _child(folder: str, mode: str) -> None:
    from clinicode.training.mimic import MimicStats, iter_mimic_iv, load_mimic_iv

    t = time.perf_counter()
    stats = MimicStats()
    split_file = Path(folder) / "split.csv"
    kb = None
    if mode == "list":
        try:
            from clinicode.kb import open_kb

            kb = open_kb()
        except Exception:  # no KB in this data dir: codes are kept unchecked
            kb = None
        notes = load_mimic_iv(folder, split_file=split_file, kb=kb, stats=stats)
        n, chars = len(notes), sum(len(x.text) for x in notes)
    else:
        n = chars = 0
        for note in iter_mimic_iv(folder, split_file=split_file, stats=stats):
            n += 1
            chars += len(note.text)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({"mode": mode, "notes": n, "text_chars": chars, "peak_rss": peak,
                      "seconds": time.perf_counter() - t, "kb_checked": kb is not None,
                      "stats": stats.as_dict()}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=int, default=120_000)
    ap.add_argument("--chars", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, default=None, help="write the set here and keep it")
    ap.add_argument("--child", nargs=2, metavar=("DIR", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from repo_modules import load_repo_module

    fixture = load_repo_module("tests/training/mimic_fixture.py", "clinicode_mimic_fixture")
    with tempfile.TemporaryDirectory(prefix="mimic-synth-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        fixture.write_large(root, args.notes, chars=args.chars)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"wrote {args.notes} synthetic admissions (~{args.chars} chars a note), "
              f"{size / 1e6:.0f} MB gzipped, in {time.perf_counter() - t:.0f} s")  # fmt: skip
        ok = True
        for mode in ("stream", "list"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(root), mode],
                check=True, capture_output=True, text=True, env=os.environ.copy(),
            )  # fmt: skip
            r = json.loads(out.stdout.strip().splitlines()[-1])
            within = r["peak_rss"] < BAR_BYTES
            ok &= within
            print(f"{mode:>6}: {r['notes']} notes, {r['text_chars'] / 1e9:.2f} G chars of text, "
                  f"peak RSS {r['peak_rss'] / 1024**3:.2f} GiB ({'<' if within else '>='} 2 GiB), "
                  f"{r['seconds']:.0f} s, codes checked against a KB: {r['kb_checked']}, "
                  f"split counts {r['stats']['split_counts']}")  # fmt: skip
        print(f"load average {os.getloadavg()[0]:.1f}; bar (< 2 GiB peak RSS): "
              f"{'met' if ok else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
