"""CPT and HCPCS rule coders on the hand-written procedure notes: recall of the must codes (with
their modifiers) and precision of every code given, dev and held-out apart.

    .venv/bin/python bench/bench_cpt.py              # dev notes
    .venv/bin/python bench/bench_cpt.py --heldout    # dev, then the held-out notes
    .venv/bin/python bench/bench_cpt.py --engine     # CPT through clinicode.load().suggest
                                                     # (the default pack unless --model DIR)

Bar (issue 12): recall >= 0.85 at precision >= 0.80. A code counts only with the modifiers the
note's coder appended (``20610-RT``); the "code only" column ignores modifiers. HCPCS codes
count only with the right billing units; they need the HCPCS file in ../shared/data (imported
into a scratch copy of the KB). The rule coders get the NLP pipeline's mentions, as served.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from repo_modules import load_repo_module

REPO = Path(__file__).resolve().parents[1]
HCPCS_FILE = REPO.parent / "shared" / "data" / "hcpcs-2025" / "HCPC2025_OCT_ANWEB.csv"


def _kb_with_hcpcs(tmp: Path) -> Any:
    """The default KB, with HCPCS imported into a scratch copy when the file is there."""
    from clinicode.kb import KnowledgeBase, default_kb_path, open_kb
    from clinicode.kb.importers import run_import

    kb = open_kb()
    if kb.system_info("HCPCS") is not None or not HCPCS_FILE.exists():
        return kb
    path = tmp / "kb.sqlite"
    shutil.copyfile(default_kb_path(), path)
    run_import("hcpcs", HCPCS_FILE, path)
    return KnowledgeBase(path, readonly=True)


def _line(name: str, sc: Any, n_notes: int) -> str:
    return (
        f"{name:<22} notes {n_notes:>3}  must {sc.n_must:>3}  given {sc.n_pred:>3}  "
        f"recall {sc.recall:.3f}  precision {sc.precision:.3f}  (code only: recall "
        f"{sc.recall_code:.3f})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heldout", action="store_true", help="also the held-out notes")
    ap.add_argument("--engine", action="store_true", help="CPT through the engine (a pack)")
    ap.add_argument("--model", type=Path, default=None, help="model pack for --engine")
    ap.add_argument("--verbose", "-v", action="store_true", help="list misses and extras")
    args = ap.parse_args()
    os.environ.setdefault("CLINICODE_FETCH_ON_SETUP", "0")
    cases_mod = load_repo_module("tests/regression/cpt_cases.py", "clinicode_cpt_cases")
    sets = [("dev", cases_mod.load_cases(cases_mod.DEV))]
    if args.heldout:
        sets.append(("held-out", cases_mod.load_cases(cases_mod.HELDOUT)))

    from clinicode.models.rule_cpt import CPTCoder, is_em_code
    from clinicode.models.rule_hcpcs import HCPCSCoder
    from clinicode.nlp import load_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        kb = _kb_with_hcpcs(Path(tmp))
        nlp = load_pipeline(kb)
        cpt, hcpcs = CPTCoder(kb), HCPCSCoder(kb)
        engine = None
        if args.engine:
            import clinicode

            engine = clinicode.load(args.model)
            print(
                f"engine: pack {engine.info.name} {engine.info.version}, systems {engine.systems}"
            )

        def cpt_codes(text: str, setting: str) -> list[Any]:
            if engine is not None:  # the visit level is the E/M coder's, not scored here
                codes = engine.suggest(text, setting).codes
                return [s for s in codes if s.system == "CPT" and not is_em_code(s.code)]
            return cpt.code(text, nlp.extract(text), setting=setting)

        def hcpcs_codes(text: str, setting: str) -> list[Any]:
            return hcpcs.code(text, nlp.extract(text), setting=setting)

        has_hcpcs = kb.system_info("HCPCS") is not None
        for name, cases in sets:
            t0 = time.perf_counter()
            sc = cases_mod.score_cpt(cases, cpt_codes)
            ms = (time.perf_counter() - t0) * 1000 / max(len(cases), 1)
            print(_line(f"CPT {name}", sc, len(cases)) + f"  {ms:.1f} ms/note")
            if args.verbose:
                print(f"  misses: {sc.misses}\n  extras: {sc.extras}")
            if has_hcpcs:
                hs = cases_mod.score_hcpcs(cases, hcpcs_codes)
                print(_line(f"HCPCS {name} (+units)", hs, len(cases)))
                if args.verbose:
                    print(f"  misses: {hs.misses}\n  extras: {hs.extras}")
            else:
                print(f"HCPCS {name}: skipped (HCPCS not loaded and {HCPCS_FILE} absent)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
