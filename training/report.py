"""The HTML comparison report of ``clinicode evaluate --report out.html``.

One self-contained page: the tables of :func:`clinicode.training.compare.compare_runs` and the
plots drawn with matplotlib (precision-recall curves, calibration curve, score histograms, codes
gained and lost), embedded as base64 PNG. No script, no stylesheet or font from elsewhere: the
file opens offline and can be mailed as is.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from clinicode.errors import ClinicodeError

if TYPE_CHECKING:
    from clinicode.training.compare import PackRun

MISSING_MATPLOTLIB = (
    "--report needs matplotlib: pip install 'clinicode[report]' (matplotlib==3.11.2)"
)


def require_matplotlib() -> None:
    """Raise a clear error (CLI exit 2) where matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ClinicodeError(MISSING_MATPLOTLIB) from None


# -- curves (pure numpy: tested without drawing) ----------------------------------------------
def pooled(
    gold: Mapping[str, Sequence[str]], scored: Mapping[str, Sequence[tuple[str, float]]]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores and labels of every (note, candidate) pair of the notes with gold codes, and the
    number of gold pairs (those never ranked count against recall)."""
    scores: list[float] = []
    labels: list[int] = []
    n_gold = 0
    for d, codes in gold.items():
        g = set(codes)
        if not g:
            continue
        n_gold += len(g)
        seen: set[str] = set()
        for c, s in scored.get(d, []):
            if c in seen:
                continue
            seen.add(c)
            scores.append(s)
            labels.append(int(c in g))
    return np.asarray(scores, float), np.asarray(labels, int), n_gold


def precision_recall(
    scores: np.ndarray, labels: np.ndarray, n_gold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of "code every pair scoring >= s" for each distinct score s."""
    if len(scores) == 0 or n_gold == 0:
        return np.zeros(0), np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    k = np.arange(1, len(y) + 1)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last index of each score tie
    return tp[last] / k[last], tp[last] / n_gold


def reliability_bins(
    scores: np.ndarray, labels: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean score, observed frequency and count of each non-empty score bin of equal width."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    mean, freq, count = [], [], []
    for b in range(bins):
        m = which == b
        if m.any():
            mean.append(float(scores[m].mean()))
            freq.append(float(labels[m].mean()))
            count.append(int(m.sum()))
    return np.asarray(mean), np.asarray(freq), np.asarray(count)


# -- plots ---------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(w: float = 6.4, h: float = 4.4) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def figure_pr(gold: Mapping[str, Sequence[str]], runs: Sequence[PackRun]) -> Any:
    fig = _figure()
    ax = fig.subplots()
    for r in runs:
        s, y, n = pooled(gold, r.scored)
        p, rec = precision_recall(s, y, n)
        (line,) = ax.plot(rec, p, label=r.label)
        at = s >= r.threshold
        if n and at.any():
            ax.plot(
                [y[at].sum() / n], [y[at].mean()], "o", color=line.get_color(), label="_nolegend_"
            )
    ax.set_xlabel("recall (of all gold codes)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall (dot: the pack's threshold)")
    ax.legend(fontsize=8)
    return fig


def figure_calibration(gold: Mapping[str, Sequence[str]], runs: Sequence[PackRun]) -> Any:
    fig = _figure()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for r in runs:
        s, y, _ = pooled(gold, r.scored)
        mean, freq, _count = reliability_bins(s, y)
        ax.plot(mean, freq, "o-", label=r.label)
    ax.set_xlabel("score (10 bins)")
    ax.set_ylabel("share of candidates that are gold")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Calibration")
    ax.legend(fontsize=8)
    return fig


def figure_histograms(gold: Mapping[str, Sequence[str]], runs: Sequence[PackRun]) -> Any:
    fig = _figure(6.4, 2.4 * len(runs))
    axes = np.atleast_1d(fig.subplots(len(runs), 1, sharex=True))
    bins = np.linspace(0, 1, 41)
    for ax, r in zip(axes, runs, strict=True):
        s, y, _ = pooled(gold, r.scored)
        ax.hist(s[y == 0], bins=bins, alpha=0.6, label="not gold", log=True)
        ax.hist(s[y == 1], bins=bins, alpha=0.6, label="gold", log=True)
        ax.axvline(r.threshold, color="black", linestyle="--", linewidth=1, label="threshold")
        ax.set_title(r.label, fontsize=9)
        ax.legend(fontsize=7)
    axes[-1].set_xlabel("score")
    fig.suptitle("Score histograms (log count)")
    fig.tight_layout()
    return fig


def figure_gained_lost(change: Mapping[str, Any], n: int = 15) -> Any:
    gained = list(change["gained"])[:n]
    lost = list(change["lost"])[:n]
    rows = [(c, k) for c, k in gained] + [(c, -k) for c, k in lost]
    fig = _figure(6.4, max(2.0, 0.28 * len(rows) + 1.2))
    ax = fig.subplots()
    if rows:
        ypos = np.arange(len(rows))[::-1]
        ax.barh(
            ypos,
            [v for _, v in rows],
            color=["tab:green" if v > 0 else "tab:red" for _, v in rows],
        )
        ax.set_yticks(ypos, [c.split(":", 1)[1] for c, _ in rows], fontsize=7)
    else:
        ax.text(0.5, 0.5, "no gold code gained or lost", ha="center", va="center")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("gold (note, code) pairs: gained > 0, lost < 0")
    ax.set_title(f"Codes gained and lost: {change['pack']} vs {change['vs']}", fontsize=9)
    return fig


# -- page ----------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th:first-child,td:first-child{text-align:left}
.neg{color:#b00}.pos{color:#070}figure{margin:1em 0}figcaption{font-size:13px;color:#555}
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _num(x: float, signed: bool = False) -> str:
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _img(plot_id: str, b64: str, caption: str) -> str:
    return (
        f'<figure><img id="{plot_id}" class="plot" alt="{_e(caption)}" '
        f'src="data:image/png;base64,{b64}"><figcaption>{_e(caption)}</figcaption></figure>'
    )


def _breakdown_table(rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> str:
    head = ["name", "gold"]
    for i, lab in enumerate(labels):
        head += [f"{lab} TP", "FP", "FN", "F1"] + (["ΔF1"] if i else [])
    out = []
    for r in rows:
        cells: list[object] = [r["name"], r["support"]]
        for i, p in enumerate(r["packs"]):
            cells += [p["tp"], p["fp"], p["fn"], _num(p["f1"])]
            if i:
                cells.append(_num(p["f1_diff"], True))
        out.append(cells)
    return _table(head, out)


def render_report(
    comparison: Mapping[str, Any],
    runs: Sequence[PackRun],
    gold: Mapping[str, Sequence[str]],
    *,
    title: str = "Clinicode pack comparison",
) -> str:
    """The whole HTML page (a string): tables and embedded PNG plots."""
    require_matplotlib()
    labels = [r.label for r in runs]
    boot = comparison["bootstrap"]
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>",
        f"<p>{comparison['documents']} notes with gold codes; task {_e(comparison.get('task', ''))}"
        f", order {_e(comparison.get('order', ''))}. Micro P/R/F1 are of each pack's coded set "
        "(its own threshold).</p>",
        "<h2>Packs</h2>",
        _table(
            ["pack", "version", "threshold", "MAP", "micro P", "micro R", "micro F1", "R@50"],
            [
                [
                    p["label"],
                    p["model"]["version"],
                    _num(p["threshold"]),
                    _num(p["map"]),
                    _num(p["micro_precision"]),
                    _num(p["micro_recall"]),
                    _num(p["micro_f1"]),
                    _num(p["r_at_50"]),
                ]
                for p in comparison["packs"]
            ],
        ),
    ]
    if comparison["differences"]:
        parts.append(
            f"<h2>Differences vs {_e(labels[0])}</h2><p>Paired bootstrap over notes: "
            f"{boot['n_boot']} resamples, seed {boot['seed']}, {100 * boot['level']:.0f}% "
            "percentile interval. An interval that contains 0 does not show a difference.</p>"
        )
        rows = []
        for d in comparison["differences"]:
            for m in ("map", "micro_f1"):
                iv = d[m]
                rows.append(
                    [
                        d["pack"],
                        "MAP" if m == "map" else "micro F1",
                        _num(iv["difference"], True),
                        f"[{_num(iv['low'], True)}, {_num(iv['high'], True)}]",
                        "yes" if iv["excludes_zero"] else "no",
                    ]
                )
        parts.append(
            '<div id="intervals">'
            + _table(["pack", "metric", "difference", "95% interval", "excludes 0"], rows)
            + "</div>"
        )
    parts.append("<h2>Plots</h2>")
    parts.append(_img("plot-pr", _png(figure_pr(gold, runs)), "Precision-recall curves"))
    parts.append(
        _img("plot-calibration", _png(figure_calibration(gold, runs)), "Calibration curve")
    )
    parts.append(_img("plot-histograms", _png(figure_histograms(gold, runs)), "Score histograms"))
    for i, ch in enumerate(comparison["codes_gained_lost"]):
        parts.append(
            _img(
                f"plot-gained-lost-{i + 1}",
                _png(figure_gained_lost(ch)),
                f"Codes gained and lost: {ch['pack']} vs {ch['vs']} "
                f"(+{ch['gained_pairs']} / -{ch['lost_pairs']} gold pairs)",
            )
        )
    parts.append("<h2>Per chapter</h2>")
    parts.append(_breakdown_table(comparison["per_chapter"], labels))
    parts.append(f"<h2>Per code (the {len(comparison['per_code'])} most frequent)</h2>")
    parts.append(_breakdown_table(comparison["per_code"], labels))
    parts.append("</body></html>")
    return "".join(parts)
