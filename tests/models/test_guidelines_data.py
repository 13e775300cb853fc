"""The guideline tables (``models/resources/guidelines_rules.yaml``) against the code set and the
rule registry: every code they name exists in ICD-10-CM FY2026, every pattern matches a code,
every code a rule adds or replaces with is billable, every cue compiles, and ``rule_order`` names
each registered rule exactly once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from clinicode.models.guidelines import load_rules, registered, rule_order
from clinicode.models.guidelines.data import code_matches
from clinicode.models.guidelines.use_additional import RESOLVERS

ICD = "ICD-10-CM"
_CODE = r"[A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_SINGLE = re.compile(rf"{_CODE}")
_RANGE = re.compile(rf"({_CODE})-({_CODE})")
# keys whose values are regular expressions (searched case-insensitively by the rules)
_CUE_KEYS = re.compile(
    r"(^|_)(cue|cues)$|^(resolved_in_stay|current_cancer_treatment|"
    r"treatment_completed|principal_sections|axis_words|axis_values|unless)$"
)


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in the tables (dict keys too) with its path."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{path}/{k}", str(k)
            yield from _strings(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


@pytest.fixture(scope="module")
def icd_codes(kb: Any) -> list[str]:
    return sorted(kb.titles(ICD))


def test_rule_order_names_each_registered_rule_once() -> None:
    order = rule_order()
    assert len(order) == len(set(order)), "a rule appears twice in rule_order"
    assert sorted(order) == sorted(registered())


def test_every_code_exists_and_every_pattern_matches_a_code(kb: Any, icd_codes: list[str]) -> None:
    missing: list[str] = []
    empty: list[str] = []
    seen = 0
    for path, value in _strings(load_rules()):
        if _RANGE.fullmatch(value):
            lo, hi = _RANGE.fullmatch(value).groups()  # type: ignore[union-attr]
            missing += [f"{path}: {b}" for b in (lo, hi) if kb.get(b, ICD) is None]
            if not any(code_matches(value, c) for c in icd_codes):
                empty.append(f"{path}: {value}")
            seen += 1
        elif _SINGLE.fullmatch(value):
            if kb.get(value, ICD) is None:
                missing.append(f"{path}: {value}")
            seen += 1
    assert seen > 400  # the walk really sees the tables
    assert missing == []
    assert empty == []


def _emitted(rules: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, code) for every code a rule can add or replace with."""
    for table in ("family_history", "personal_history", "long_term_drugs", "screening"):
        for row in rules[table]:
            yield table, str(row["code"])
    for org in rules["organisms"]:
        for key in ("code", "sepsis", "pneumonia"):
            if key in org:
                yield f"organisms.{key}", str(org[key])
    for ref in rules["refinements"]:
        for code in ref["codes"]:
            for ch in ref["choices"]:
                yield (
                    f"refinements.{ref['name']}",
                    str(ch["code"]).format(base=code[:-1], tail=code[3:]),
                )
    for row in rules["combination_pairs"]:
        yield "combination_pairs", str(row["code"])
    for row in rules["diabetes_complications"]:  # E11 has them all; other categories are checked
        yield "diabetes_complications", "E11" + str(row["suffix"])  # by the rule (billable only)
    for row in rules["hypertension"]["combinations"]:
        for t in row["targets"]:
            yield "hypertension", str(t["code"])
    yield "copd_infection", str(rules["copd_infection"]["combination"])
    flu = rules["influenza_pneumonia"]
    for cat in flu["influenza"]:
        for key in ("with_specified", "with_unspecified"):
            yield "influenza_pneumonia", str(flu["fixed"].get(cat) or flu[key].format(category=cat))
    asthma = rules["asthma"]
    for sev in asthma["severity_codes"]:
        for status in [*asthma["status_characters"], asthma["uncomplicated"]]:
            code = next(
                (
                    x["code"]
                    for x in asthma["exceptions"]
                    if (x["severity"], x["status"]) == (sev, status)
                ),
                sev + status,
            )
            yield "asthma", str(code)
    ckd = rules["ckd_stage"]
    yield from (("ckd_stage", str(c)) for c in [ckd["esrd_code"], ckd["unspecified"]])
    yield from (("ckd_stage", str(c)) for c in ckd["stages"].values())
    gest = rules["gestation"]
    yield "gestation", str(gest["fewer_than"]["code"])
    yield "gestation", str(gest["more_than"]["code"])
    for weeks in range(gest["fewer_than"]["weeks"], gest["more_than"]["weeks"] + 1):
        yield "gestation", gest["code"].format(weeks=weeks)
    low = 0
    for band in rules["bmi"]["bands"]:
        high = band["below"] if band["below"] is not None else low + 1
        for whole in range(int(low), int(high)):
            yield "bmi", str(band["code"]).format(whole=whole)
        low = high


def test_every_code_a_rule_emits_is_billable(kb: Any) -> None:
    emitted = list(_emitted(load_rules()))
    assert len(emitted) > 150
    bad = [(w, c) for w, c in emitted if (r := kb.get(c, ICD)) is None or not r.billable]
    assert bad == []


def test_queried_codes_exist(kb: Any) -> None:
    assert [c for c in load_rules()["queries"] if kb.get(c, ICD) is None] == []


def test_every_cue_compiles() -> None:
    n = 0
    for path, value in _strings(load_rules()):
        key = path.rsplit("/", 1)[-1].split("[")[0]
        if _CUE_KEYS.search(key) or "/axis_" in path:
            re.compile(value, re.I)
            n += 1
    assert n > 40


def test_use_additional_resolvers_exist() -> None:
    rows = load_rules()["use_additional"]
    assert [r["resolver"] for r in rows if r["resolver"] not in RESOLVERS] == []
    assert sorted(r["resolver"] for r in rows) == sorted(RESOLVERS)


def test_apply_runs_the_registered_rules_in_the_data_order(kb: Any) -> None:
    from clinicode.models.guidelines import Guidelines

    assert Guidelines(kb).pipeline == [registered()[name] for name in rule_order()]


def test_an_unknown_or_repeated_rule_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from clinicode.models.guidelines import rules

    monkeypatch.setattr(rules, "load_rules", lambda: {"rule_order": ["assertion_policy", "nope"]})
    with pytest.raises(ValueError, match="nope"):
        rules.ordered_rules()
    twice = {"rule_order": ["excludes1", "excludes1"]}
    monkeypatch.setattr(rules, "load_rules", lambda: twice)
    with pytest.raises(ValueError, match="more than once"):
        rules.ordered_rules()


def test_what_a_rule_derives_from_the_code_set_is_worked_out_once_per_code(kb: Any) -> None:
    from clinicode.models.guidelines import Guidelines
    from clinicode.models.guidelines.specificity import _axis_siblings

    g = Guidelines(kb)
    calls: list[str] = []

    def build(code: str) -> str:
        calls.append(code)
        return code.lower()

    assert [g.memo("t", c, build) for c in ("A", "B", "A", "A")] == ["a", "b", "a", "a"]
    assert calls == ["A", "B"]
    # an unspecified code whose siblings differ on laterality: the same answer, found once
    axis, sibs = _axis_siblings(g, "H66.90")
    assert axis == "laterality" and {"H66.91", "H66.92"} <= {r.code for r in sibs}
    assert _axis_siblings(g, "H66.90")[1] is sibs
