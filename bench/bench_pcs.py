"""ICD-10-PCS builder bench: exact 7-character and first-four-character match on the
hand-written inpatient procedure statements (tests/models/pcs_statements.yaml).

    .venv/bin/python bench/bench_pcs.py [--kb KB] [--heldout] [--verbose]

Each statement has one expected code. A statement counts as an exact match when the builder
returns that code among its codes for the statement, and as a first-four match when one of
its codes shares the expected code's first four characters (section, body system, root
operation, body part). Also printed: the share of statements whose first code is the expected
one, the codes per statement (what a coder would have to reject), and how many of the
matching codes carry a query.

Without ``--kb`` the bench imports ../shared/data/pcs/icd10pcs_order_2026.txt into a
temporary KB. The development statements are printed with their misses (``--verbose``:
every one); ``--heldout`` adds the held-out statements' figures, which are a measurement:
run it once per builder version and change nothing after reading them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
STATEMENTS = REPO / "tests" / "models" / "pcs_statements.yaml"
ORDER_FILE = REPO.parent / "shared" / "data" / "pcs" / "icd10pcs_order_2026.txt"


def open_kb(path: str | None, tmp: Path) -> Any:
    from clinicode.kb import KnowledgeBase
    from clinicode.kb.importers import run_import

    if path:
        return KnowledgeBase(path)
    if not ORDER_FILE.exists():
        sys.exit(f"needs {ORDER_FILE} or --kb with ICD-10-PCS imported")
    kb_path = tmp / "kb.sqlite"
    run_import("pcs", ORDER_FILE, kb_path)
    return KnowledgeBase(kb_path)


def measure(coder: Any, statements: list[dict[str, Any]], *, show: bool, verbose: bool) -> None:
    exact = first4 = top = n_codes = queried = 0
    start = time.perf_counter()
    for s in statements:
        out = coder.code(s["text"], [], setting="inpatient")
        codes = [c.code for c in out]
        hit = s["code"] in codes
        exact += hit
        first4 += any(c[:4] == s["code"][:4] for c in codes)
        top += bool(codes) and codes[0] == s["code"]
        n_codes += len(codes)
        queried += hit and next(c for c in out if c.code == s["code"]).status == "needs_query"
        if show and (verbose or not hit):
            mark = "ok  " if hit else "MISS"
            print(f"  {mark} {s['id']} expected {s['code']} got {codes or '-'}")
    n = len(statements)
    ms = (time.perf_counter() - start) * 1000 / max(n, 1)
    print(
        f"  n={n}  exact {exact / n:.1%} ({exact}/{n})  first four {first4 / n:.1%}"
        f" ({first4}/{n})  first code exact {top / n:.1%}  codes/statement {n_codes / n:.2f}"
        f"  exact with a query {queried}  {ms:.1f} ms/statement"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kb", help="a KB with ICD-10-PCS imported (default: import the order file)")
    ap.add_argument("--heldout", action="store_true", help="also measure the held-out statements")
    ap.add_argument("--verbose", action="store_true", help="print every development statement")
    args = ap.parse_args()
    from clinicode.models.pcs.coder import PcsCoder

    data = yaml.safe_load(STATEMENTS.read_text(encoding="utf-8"))["statements"]
    with tempfile.TemporaryDirectory() as tmp:
        kb = open_kb(args.kb, Path(tmp))
        coder = PcsCoder(kb)
        print(f"ICD-10-PCS builder, tables: {coder.builder.tables.source}")
        print("development statements:")
        dev = [s for s in data if not s.get("heldout")]
        measure(coder, dev, show=True, verbose=args.verbose)
        if args.heldout:
            print("held-out statements (written before the builder; never tuned on):")
            measure(coder, [s for s in data if s.get("heldout")], show=False, verbose=False)
        kb.close()


if __name__ == "__main__":
    main()
