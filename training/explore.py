"""What a labeled dataset's codes look like (the notebooks' exploration; no model needed).

Frequency of each code and chapter, codes per note, the long tail, and how many gold codes the
loaded code set holds. Tables are :class:`Table` objects: a list of dicts that a notebook shows
as HTML; plots are matplotlib ``Figure`` objects (matplotlib imported only when one is drawn).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from clinicode.training.compare import chapter_of
from clinicode.training.data import LabeledNote, Task

if TYPE_CHECKING:
    from clinicode.kb import KnowledgeBase


class Table(list[dict[str, Any]]):
    """Rows (dicts with the same keys) that show as an HTML table in a notebook."""

    def _repr_html_(self) -> str:
        if not self:
            return "<p><em>(no rows)</em></p>"
        cols = list(self[0])

        def cell(v: Any) -> str:
            return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))

        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in self
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _keys(note: LabeledNote, task: Task | None) -> list[str]:
    if task is None:
        return list(dict.fromkeys(f"{s}:{c}" for s, c in note.codes))
    return list(dict.fromkeys(note.codes_for(task)))


def code_frequencies(
    notes: Sequence[LabeledNote],
    task: Task | None = None,
    kb: KnowledgeBase | None = None,
    top: int | None = 30,
) -> Table:
    """Each code with the number and share of notes that carry it (most frequent first) and,
    with ``kb``, its title (empty where the loaded code set lacks it)."""
    counts = Counter(k for n in notes for k in _keys(n, task))
    idx = kb.code_index() if kb is not None else None
    rows = Table()
    for key, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
        system, code = key.split(":", 1)
        row: dict[str, Any] = {"code": code, "system": system, "notes": k,
                               "share": k / max(len(notes), 1)}  # fmt: skip
        if idx is not None:
            row["title"] = idx.title(system, code) or ""
        rows.append(row)
    return rows


def chapter_frequencies(
    notes: Sequence[LabeledNote], kb: KnowledgeBase | None, task: Task | None = "D"
) -> Table:
    """Gold (note, code) pairs and distinct codes per chapter (ICD-10-CM) or section / system."""
    pairs: Counter[str] = Counter()
    distinct: dict[str, set[str]] = {}
    cache: dict[str, str] = {}
    for n in notes:
        for key in _keys(n, task):
            ch = chapter_of(kb, key, cache)
            pairs[ch] += 1
            distinct.setdefault(ch, set()).add(key)
    total = max(sum(pairs.values()), 1)
    return Table(
        {"chapter": ch, "pairs": k, "share": k / total, "distinct codes": len(distinct[ch])}
        for ch, k in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def dataset_summary(
    notes: Sequence[LabeledNote], kb: KnowledgeBase | None = None
) -> dict[str, Any]:
    """Counts per task: notes, codes per note, distinct codes, codes seen once, and (with ``kb``)
    the gold pairs whose code the loaded code set lacks."""
    out: dict[str, Any] = {"notes": len(notes),
                           "mean_note_chars": sum(len(n.text) for n in notes) / max(len(notes), 1)}  # fmt: skip
    idx = kb.code_index() if kb is not None else None
    loaded = {s for s, _ in idx.billable} if idx is not None else set()
    for task in ("D", "P"):
        per_note = [len(_keys(n, task)) for n in notes]
        counts = Counter(k for n in notes for k in _keys(n, task))
        row: dict[str, Any] = {
            "notes_with_codes": sum(1 for k in per_note if k),
            "pairs": sum(per_note),
            "codes_per_note": sum(per_note) / max(len(notes), 1),
            "distinct_codes": len(counts),
            "codes_seen_once": sum(1 for k in counts.values() if k == 1),
        }
        if idx is not None:
            checked = [(k, c) for k, c in counts.items() if k.split(":", 1)[0] in loaded]
            row["pairs_checked_against_code_set"] = sum(c for _, c in checked)
            row["pairs_not_in_code_set"] = sum(
                c
                for k, c in checked
                if not idx.billable.get((k.split(":", 1)[0], k.split(":", 1)[1]))
            )
        out[task] = row
    return out


def sample(notes: Sequence[LabeledNote], n: int, seed: int = 0) -> list[LabeledNote]:
    """``n`` notes drawn without replacement (seeded), in their original order; all if fewer."""
    import random

    if n >= len(notes):
        return list(notes)
    keep = set(random.Random(seed).sample(range(len(notes)), n))
    return [x for i, x in enumerate(notes) if i in keep]


def unseen_codes(
    train: Sequence[LabeledNote], test: Sequence[LabeledNote], task: Task = "D"
) -> dict[str, Any]:
    """How many of ``test``'s gold pairs carry a code no ``train`` note has: a model that
    learns codes from the notes cannot rank those from the note classifier."""
    seen = {k for n in train for k in _keys(n, task)}
    pairs = [k for n in test for k in _keys(n, task)]
    unseen = [k for k in pairs if k not in seen]
    return {"test_pairs": len(pairs), "pairs_with_unseen_code": len(unseen),
            "share_unseen": len(unseen) / max(len(pairs), 1),
            "distinct_unseen_codes": len(set(unseen))}  # fmt: skip


def codes_per_note(notes: Iterable[LabeledNote], task: Task | None = None) -> list[int]:
    return [len(_keys(n, task)) for n in notes]


# -- plots ---------------------------------------------------------------------------------
def plot_dataset(notes: Sequence[LabeledNote], task: Task = "D") -> Any:
    """Two panels: codes per note (histogram) and the rank-frequency curve (the long tail)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    per = codes_per_note(notes, task)
    ax1.hist(per, bins=range(0, max(per, default=0) + 2), color="tab:blue")
    ax1.set_xlabel(f"{task} codes per note")
    ax1.set_ylabel("notes")
    ax1.set_title("Codes per note")
    freq = sorted(Counter(k for n in notes for k in _keys(n, task)).values(), reverse=True)
    ax2.loglog(range(1, len(freq) + 1), freq, ".", color="tab:orange")
    ax2.set_xlabel("code rank")
    ax2.set_ylabel("notes with the code")
    ax2.set_title("Rank-frequency (log-log): the long tail")
    fig.tight_layout()
    return fig


def plot_top_codes(table: Sequence[dict[str, Any]], n: int = 20) -> Any:
    """Horizontal bars of the ``n`` most frequent codes of a :func:`code_frequencies` table."""
    from matplotlib.figure import Figure

    rows = list(table)[:n][::-1]
    fig = Figure(figsize=(7, 0.28 * len(rows) + 1.2))
    ax = fig.subplots()
    ax.barh([r["code"] for r in rows], [r["notes"] for r in rows], color="tab:blue")
    ax.set_xlabel("notes")
    ax.set_title(f"The {len(rows)} most frequent codes")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig
