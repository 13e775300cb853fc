"""``NoteState.overlapping``: the mentions over a span, in list order, as a walk over all."""

from __future__ import annotations

import random

import pytest

from clinicode.models.guidelines.state import NoteState, mention_at
from clinicode.schema import Mention

KIND = "condition"


def mentions(seed: int, n: int, ordered: bool) -> list[Mention]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        start = rng.randrange(0, 2000)
        end = start + rng.randrange(1, 60)
        text = "x" * (end - start)
        out.append(Mention(text=text, normalized=text, start=start, end=end, kind=KIND))
    if ordered:
        out.sort(key=lambda m: m.start)
    return out


@pytest.mark.parametrize(("seed", "ordered"), [(s, o) for s in range(4) for o in (True, False)])
def test_overlapping_is_a_walk_over_all_mentions(seed: int, ordered: bool) -> None:
    ms = mentions(seed, 300, ordered)
    note = NoteState(text=" " * 2100, mentions=ms, setting="outpatient", threshold=0.5)
    rng = random.Random(seed + 100)
    for _ in range(300):
        start = rng.randrange(0, 2050)
        end = start + rng.randrange(1, 80)
        walk = [m for m in ms if m.start < end and start < m.end]
        assert list(note.overlapping(start, end)) == walk
        assert mention_at(note, start, end) == (walk[0] if walk else None)
