"""Pack comparison: the paired bootstrap interval, the tables, and ``evaluate --model A --model B
--report`` on two packs that differ only by the title features (HTML opened in Chromium)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from clinicode.training.compare import (
    DocStats,
    PackRun,
    breakdown,
    compare_runs,
    doc_stats,
    gained_lost,
    micro_f1,
    paired_bootstrap,
)
from clinicode.training.report import precision_recall, reliability_bins
from tests.training.test_evaluate_orders import MORE
from tests.training.tiny_pack import tiny_notes

CHROMIUM = os.environ.get("CLINICODE_CHROMIUM", "/usr/bin/chromium")


def _stats(ap: list[float], tp: list[int] | None = None, fp: list[int] | None = None,
           fn: list[int] | None = None) -> DocStats:  # fmt: skip
    n = len(ap)
    z = [0] * n
    return DocStats(
        [f"d{i:04d}" for i in range(n)],
        np.asarray(ap, float),
        *(np.asarray(x if x is not None else z, float) for x in (tp, fp, fn)),
    )


# -- the interval ---------------------------------------------------------------------------
def test_identical_packs_give_an_interval_of_width_zero_at_zero() -> None:
    rng = np.random.default_rng(1)
    n = 120
    a = _stats(
        list(rng.random(n)),
        list(rng.integers(0, 4, n)),
        list(rng.integers(0, 4, n)),
        list(rng.integers(0, 4, n)),
    )
    res = paired_bootstrap(a, a, n_boot=500, seed=3)
    for m in ("map", "micro_f1"):
        assert res[m]["difference"] == 0.0
        assert res[m]["low"] == 0.0 and res[m]["high"] == 0.0
        assert res[m]["excludes_zero"] is False


def test_a_constant_shift_gives_exactly_that_shift() -> None:
    rng = np.random.default_rng(2)
    ap = rng.random(80) * 0.8
    res = paired_bootstrap(_stats(list(ap)), _stats(list(ap + 0.1)), n_boot=300, seed=0)
    iv = res["map"]
    assert iv["difference"] == pytest.approx(0.1)
    assert iv["low"] == pytest.approx(0.1) and iv["high"] == pytest.approx(0.1)
    assert iv["excludes_zero"] is True


def test_interval_matches_the_normal_approximation_of_a_known_difference() -> None:
    """Per-note difference 1 on half the notes, 0 on the rest: the bootstrap distribution of the
    mean difference is that of a sample proportion, 0.5 +- 1.96 * sqrt(0.25 / n)."""
    n = 400
    a = _stats([0.0] * n)
    b = _stats([1.0, 0.0] * (n // 2))
    iv = paired_bootstrap(a, b, n_boot=4000, seed=7)["map"]
    half = 1.96 * np.sqrt(0.25 / n)  # 0.049
    assert iv["difference"] == pytest.approx(0.5)
    assert iv["low"] == pytest.approx(0.5 - half, abs=0.01)
    assert iv["high"] == pytest.approx(0.5 + half, abs=0.01)
    # paired: a shift common to both packs changes nothing
    shifted = paired_bootstrap(
        _stats([0.3] * n), _stats([1.3, 0.3] * (n // 2)), n_boot=4000, seed=7
    )
    assert shifted["map"]["low"] == pytest.approx(iv["low"])


def test_micro_f1_difference_is_that_of_the_summed_counts() -> None:
    a = _stats([0.5] * 4, tp=[1, 0, 2, 1], fp=[1, 1, 0, 0], fn=[0, 1, 1, 1])
    b = _stats([0.5] * 4, tp=[1, 1, 2, 2], fp=[0, 1, 0, 0], fn=[0, 0, 1, 0])
    res = paired_bootstrap(a, b, n_boot=400, seed=0)["micro_f1"]
    f_a = 2 * 4 / (2 * 4 + 2 + 3)
    f_b = 2 * 6 / (2 * 6 + 1 + 1)
    assert res["difference"] == pytest.approx(f_b - f_a)
    assert res["low"] <= res["difference"] <= res["high"]
    assert micro_f1(np.asarray([0.0]), np.asarray([0.0]), np.asarray([0.0]))[0] == 0.0


def test_bootstrap_is_seeded_and_needs_the_same_notes() -> None:
    rng = np.random.default_rng(0)
    a, b = _stats(list(rng.random(50))), _stats(list(rng.random(50)))
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)
    assert paired_bootstrap(a, b, seed=5) != paired_bootstrap(a, b, seed=6)
    other = _stats(list(rng.random(50)))
    other.docs = [f"x{i}" for i in range(50)]
    with pytest.raises(ValueError, match="same notes"):
        paired_bootstrap(a, other)


# -- tables and curves ----------------------------------------------------------------------
def _run(label: str, scored: dict[str, list[tuple[str, float]]], t: float = 0.5) -> PackRun:
    chosen = {d: [c for c, s in p if s >= t] for d, p in scored.items()}
    return PackRun(label, label, t, scored, chosen, {})


GOLD = {"n1": ["ICD-10-CM:I10", "ICD-10-CM:E11.9"], "n2": ["ICD-10-CM:J18.9"], "n3": []}
A = _run("A", {"n1": [("ICD-10-CM:I10", 0.9), ("ICD-10-CM:R50.9", 0.6)],
               "n2": [("ICD-10-CM:J18.9", 0.7)]})  # fmt: skip
B = _run("B", {"n1": [("ICD-10-CM:E11.9", 0.8), ("ICD-10-CM:I10", 0.4)],
               "n2": [("ICD-10-CM:J18.9", 0.9)]})  # fmt: skip


def test_doc_stats_gained_lost_and_per_code_counts() -> None:
    s = doc_stats(GOLD, A)
    assert s.docs == ["n1", "n2"]  # n3 has no gold code
    assert list(s.ap) == [0.5, 1.0]
    assert list(s.tp) == [1, 1] and list(s.fp) == [1, 0] and list(s.fn) == [1, 0]
    gl = gained_lost(GOLD, A, B)
    assert gl == {"gained": [("ICD-10-CM:E11.9", 1)], "lost": [("ICD-10-CM:I10", 1)]}
    rows = {r["name"]: r for r in breakdown(GOLD, [A, B], lambda k: k, None)}
    assert rows["ICD-10-CM:I10"]["packs"][0]["tp"] == 1
    assert rows["ICD-10-CM:I10"]["packs"][1]["fn"] == 1
    assert rows["ICD-10-CM:I10"]["packs"][1]["f1_diff"] == -1.0
    assert (
        rows["ICD-10-CM:R50.9"]["support"] == 0 and rows["ICD-10-CM:R50.9"]["packs"][0]["fp"] == 1
    )
    cmp = compare_runs([A, B], GOLD, n_boot=200)
    assert cmp["documents"] == 2
    assert cmp["codes_gained_lost"][0]["gained_pairs"] == 1
    chapters = {r["name"] for r in cmp["per_chapter"]}
    assert chapters == {"I (not in the code set)", "E (not in the code set)", "J (not in the code set)",
                        "R (not in the code set)"}  # fmt: skip


def test_precision_recall_and_reliability() -> None:
    scores = np.asarray([0.9, 0.8, 0.8, 0.3])
    labels = np.asarray([1, 0, 1, 0])
    p, r = precision_recall(scores, labels, n_gold=4)  # two gold never ranked
    assert list(p) == pytest.approx([1.0, 2 / 3, 0.5])
    assert list(r) == pytest.approx([0.25, 0.5, 0.5])
    mean, freq, count = reliability_bins(scores, labels, bins=10)
    assert list(count) == [1, 2, 1]
    assert list(freq) == pytest.approx([0.0, 0.5, 1.0])
    assert list(mean) == pytest.approx([0.3, 0.8, 0.9])


# -- the CLI and the HTML report in Chromium -------------------------------------------------
def _write_notes(path: Path) -> None:
    rows = [
        {"id": n.id, "text": n.text, "codes": [f"{s}:{c}" for s, c in n.codes]}
        for n in tiny_notes()
    ]
    rows += [
        {"id": f"m{i}", "text": text, "codes": [f"ICD-10-CM:{c}" for c in codes]}
        for i, (text, codes) in enumerate(MORE)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def two_packs(kb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two packs trained on the same 30 notes, with and without the title features."""
    from clinicode.kb import open_kb
    from clinicode.training.data import load_jsonl
    from clinicode.training.default_pack import TITLE_FEATURES
    from clinicode.training.train import TrainConfig, train_pack

    root = tmp_path_factory.mktemp("compare")
    data = root / "notes.jsonl"
    _write_notes(data)
    kb = open_kb(kb_path)
    cfg: dict[str, Any] = {"n_folds": 3, "generators": (), "ranker_max_iter": 30,
                           "ranker_folds": 2, "doc_k": 5}  # fmt: skip
    notes = load_jsonl(data)
    with_t, without_t = root / "with-title", root / "no-title"
    train_pack(notes, kb=kb, out=with_t, cfg=TrainConfig(name="title", **cfg), progress=False)
    train_pack(
        notes,
        kb=kb,
        out=without_t,
        cfg=TrainConfig(name="notitle", drop_features=TITLE_FEATURES, **cfg),
        progress=False,
    )
    names = [json.loads((p / "config.json").read_text())["feature_names"]
             for p in (with_t, without_t)]  # fmt: skip
    assert "title_cover" in names[0] and "title_cover" not in names[1]
    assert set(names[0]) - set(names[1]) <= set(TITLE_FEATURES)
    return data, with_t, without_t


@pytest.fixture
def app(kb_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    from clinicode.cli import _register_plugins
    from clinicode.cli import app as root
    from clinicode.settings import get_settings

    monkeypatch.setenv("CLINICODE_DATA_DIR", str(kb_path.parent))
    get_settings.cache_clear()
    _register_plugins()
    return root


def _invoke(app: typer.Typer, args: list[str]) -> dict[str, Any]:
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out: dict[str, Any] = json.loads(r.stdout)
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield b
        b.close()


@pytest.mark.slow
def test_one_model_prints_what_evaluate_printed(
    app: typer.Typer, two_packs: tuple[Path, Path, Path]
) -> None:
    data, with_t, _ = two_packs
    out = _invoke(app, ["evaluate", "--data", str(data), "--format", "jsonl",
                        "--model", str(with_t), "--quiet"])  # fmt: skip
    assert {"task", "model", "order", "map", "micro_f1", "orders", "gold_codes"} <= set(out)
    assert "differences" not in out and "packs" not in out


@pytest.mark.slow
@pytest.mark.browser
def test_report_of_two_packs_differing_by_title_features(
    app: typer.Typer, two_packs: tuple[Path, Path, Path], tmp_path: Path, browser: Any
) -> None:
    data, with_t, without_t = two_packs
    html = tmp_path / "out.html"
    args = ["evaluate", "--data", str(data), "--format", "jsonl", "--model", str(with_t),
            "--model", str(without_t), "--report", str(html), "--quiet", "--bootstrap", "500"]  # fmt: skip
    out = _invoke(app, args)
    assert [p["label"] for p in out["packs"]] == ["with-title", "no-title"]
    (diff,) = out["differences"]
    assert diff["pack"] == "no-title" and diff["vs"] == "with-title"
    for m in ("map", "micro_f1"):
        iv = diff[m]
        assert iv["low"] <= iv["difference"] <= iv["high"]
        assert iv["difference"] == pytest.approx(out["packs"][1][m] - out["packs"][0][m], abs=1e-9)
    assert out["per_chapter"] and out["per_code"]
    text = html.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text  # nothing fetched from elsewhere

    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(html.resolve().as_uri())
    plots = page.eval_on_selector_all(
        "img.plot", "els => els.map(e => [e.id, e.complete, e.naturalWidth, e.naturalHeight])"
    )
    ids = {p[0] for p in plots}
    assert ids == {"plot-pr", "plot-calibration", "plot-histograms", "plot-gained-lost-1"}
    for plot_id, complete, w, h in plots:
        assert complete and w > 0 and h > 0, plot_id
    intervals = page.inner_text("#intervals")
    assert "MAP" in intervals and "micro F1" in intervals and "[" in intervals
    assert all(u.startswith(("file:", "data:")) for u in requested), requested
    page.close()


def test_report_without_matplotlib_is_a_clear_error(
    run_cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    data = tmp_path / "notes.jsonl"
    _write_notes(data)
    code, _out, err = run_cli("evaluate", "--data", str(data), "--format", "jsonl",
                              "--report", str(tmp_path / "r.html"))  # fmt: skip
    assert code == 2
    assert "matplotlib" in err and "clinicode[report]" in err
