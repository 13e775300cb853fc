"""The E/M visit notes: loading and scoring (shared by tests/models/test_em.py and
``bench/bench_em.py``).

Two files share this format: ``tests/models/em_notes.yaml`` (dev notes, run by the tests) and
``tests/models/em_notes_heldout.yaml`` (held out, every one ``heldout: true``, written before
the calculator and read only by ``bench/bench_em.py --heldout``). Each note has ``id``,
``setting``, ``code`` (the expected E/M code, or null for a note that is not a visit),
optional ``addons`` (prolonged-service codes) and ``query`` (query axes expected), ``why`` and
``text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from clinicode.models.em.data import load_em_rules

HERE = Path(__file__).resolve().parent
DEV = HERE / "em_notes.yaml"
HELDOUT = HERE / "em_notes_heldout.yaml"


@dataclass
class EMNote:
    id: str
    setting: str
    code: str | None
    text: str
    why: str
    addons: list[str] = field(default_factory=list)
    query: list[str] = field(default_factory=list)
    heldout: bool = False


def load_notes(path: Path | str) -> list[EMNote]:
    rows = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    notes = []
    for row in rows:
        heldout = row.get("heldout", False)
        if not isinstance(heldout, bool):
            raise ValueError(f"{row.get('id')}: heldout must be true or false, not {heldout!r}")
        code = row.get("code")
        notes.append(
            EMNote(
                id=str(row["id"]),
                setting=str(row["setting"]),
                code=None if code is None else str(code),
                text=str(row["text"]),
                why=str(row["why"]),
                addons=[str(c) for c in row.get("addons", [])],
                query=[str(c) for c in row.get("query", [])],
                heldout=heldout,
            )
        )
    if len({n.id for n in notes}) != len(notes):
        raise ValueError(f"duplicate note ids in {path}")
    return notes


def family_of(code: str) -> tuple[str, int] | None:
    """``(family, position)`` of an E/M code in its family's ordered list, or None."""
    for fam, codes in load_em_rules()["family_codes"].items():
        if code in codes:
            return fam, codes.index(code)
    return None


def within_one(expected: str | None, got: str | None) -> bool:
    """Same code, or the same family one level apart (no visit vs a code is a miss)."""
    if expected is None or got is None:
        return expected == got
    a, b = family_of(expected), family_of(got)
    return a is not None and b is not None and a[0] == b[0] and abs(a[1] - b[1]) <= 1
