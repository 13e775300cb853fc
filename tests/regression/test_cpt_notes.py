"""The CPT/HCPCS procedure notes: their shape and codes (dev and held-out), and the dev notes
through the rule coders. Held-out results are measured only by ``bench/bench_cpt.py --heldout``."""

from __future__ import annotations

import csv
import re
from importlib import resources
from typing import Any

import pytest

from clinicode.models.rule_cpt import CPTCoder
from tests.conftest import shared_path
from tests.regression.cpt_cases import DEV, HELDOUT, load_cases, score_cpt

_KEY = re.compile(r"^(\d{5})((?:-(?:RT|LT|50|XS|59|25|LD|LC|RC|LM|RI))*)$")
DEV_CASES = load_cases(DEV)
HELDOUT_CASES = load_cases(HELDOUT)


def _starter_codes() -> set[str]:
    text = resources.files("clinicode.kb.data").joinpath("cpt_starter.csv").read_text("utf-8")
    return {r["code"] for r in csv.DictReader(text.splitlines())}


def test_notes_shape_and_codes_in_the_starter_set() -> None:
    cases = DEV_CASES + HELDOUT_CASES
    assert len(cases) >= 40 and len(HELDOUT_CASES) >= 15
    assert all(c.heldout for c in HELDOUT_CASES) and not any(c.heldout for c in DEV_CASES)
    assert len({c.id for c in cases}) == len(cases)
    codes = _starter_codes()
    for c in cases:
        assert c.setting in ("inpatient", "outpatient"), c.id
        assert len(c.text.split()) >= 15, f"{c.id}: write it as a real note"
        for k in c.must:
            m = _KEY.match(k)
            assert m, f"{c.id}: {k} is not CODE[-MOD]"
            assert m.group(1) in codes, f"{c.id}: {m.group(1)} is not in cpt_starter.csv"
    assert sum(len(c.must) for c in cases) >= 50
    assert sum(bool(c.hcpcs) for c in cases) >= 8


def test_hcpcs_codes_of_the_notes_are_active_codes() -> None:
    path = shared_path("hcpcs-2025", "HCPC2025_OCT_ANWEB.csv")
    with path.open(encoding="latin-1", newline="") as f:
        active = {
            r["HCPC"].strip()
            for r in csv.DictReader(f)
            if r["RECID"] == "3" and not r["TERM DT"].strip()
        }
    for c in DEV_CASES + HELDOUT_CASES:
        for code, units in c.hcpcs.items():
            assert code in active, f"{c.id}: {code}"
            assert units >= 1


def test_dev_notes_recall_and_precision(kb: Any) -> None:
    coder = CPTCoder(kb)
    sc = score_cpt(DEV_CASES, lambda t, s: coder.code(t, [], setting=s))
    assert sc.recall >= 0.85, sc.misses
    assert sc.precision >= 0.80, sc.extras


@pytest.mark.parametrize("case", [c for c in DEV_CASES if not c.must], ids=lambda c: c.id)
def test_traps_give_no_code(kb: Any, case: Any) -> None:
    assert CPTCoder(kb).code(case.text, [], setting=case.setting) == []
