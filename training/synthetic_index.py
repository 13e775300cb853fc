"""Synthetic notes written from Alphabetic Index paths, for the default pack (no labeled notes).

The title-based synthetic notes (``training.default_pack``) name each code by one of its terms.
A coder meets codes the other way too: a main term with the subterms the note documents,
often spread over a note ("HTN" on one line, "CKD stage 3b" on the next: I12.9 by the Index's
"with"). These notes write Index paths as a physician would (modifiers before or after the
condition, a "with" condition in its own sentence or list line) and label the code the path
leads to (verified down to a billable code in the Tabular, unspecified where the path stops
above one), so the default ranker learns how far to trust the encoder's Index walk. A KB
without an imported Index gives none.
"""

from __future__ import annotations

import random
import re
from typing import Any

from clinicode.models.encoder.index_tree import IndexTree
from clinicode.models.encoder.tabular import TabularTree
from clinicode.models.encoder.words import Context
from clinicode.training.data import LabeledNote

_NEC = re.compile(r"\b(NEC|NOS)\b|\([^)]*\)|\s*-\s*see\b.*$", re.I)
_SEPARATE = (" {t}.", "\n- {t}", "\n2. {t}")


def index_notes(
    kb: Any, n_notes: int, seed: int, templates: tuple[str, ...]
) -> list[tuple[LabeledNote, list[str]]]:
    """``n_notes`` labeled notes of 1-3 Index paths each (deterministic for a seed)."""
    tree = kb.derived("encoder_index_tree", IndexTree.build)
    if not len(tree) or n_notes <= 0:
        return []
    tab = kb.derived("encoder_tabular_tree", TabularTree.build)
    eligible = [
        i
        for i in range(len(tree))
        if tree.parent[i] >= 0
        and tree.code[i]
        and (tree.code[i] or "")[:1] not in "VWXY"
        and tree.code[i] in tab.title
        and not tree.negative[i]
    ]
    rng = random.Random(seed)
    out: list[tuple[LabeledNote, list[str]]] = []
    while len(out) < n_notes:
        parts: list[str] = []
        codes: list[str] = []
        for i in rng.sample(eligible, rng.randint(1, 3)):
            code, _ = tab.descend(tree.code[i] or "", Context())
            if not tab.billable.get(code, False) or code in codes:
                continue
            parts.append(_render(tree, i, rng, templates))
            codes.append(code)
        if codes:
            note = LabeledNote(
                id=f"synthetic-index-{len(out)}",
                text=" ".join(parts).strip(),
                codes=[("ICD-10-CM", c) for c in codes],
            )
            out.append((note, []))
    return out


def _clean(term: str) -> str:
    return re.sub(r"\s+", " ", _NEC.sub("", term)).strip(" ,")


def _render(tree: IndexTree, i: int, rng: random.Random, templates: tuple[str, ...]) -> str:
    """One path as a physician might write it."""
    path = tree.path(i)
    head = _clean(tree.term[path[0]].split(",")[0])
    before: list[str] = []
    linked: list[str] = []
    for j in path[1:]:
        if tree.connector[j]:
            linked.append(tree.term[j])
            continue
        (linked if linked else before).append(_clean(tree.term[j]))
    if rng.random() < 0.5:
        phrase = " ".join([*reversed(before), head])
    else:
        phrase = ", ".join([head, *before])
    phrase = phrase.lower() if rng.random() < 0.8 else phrase
    tpl = rng.choice(templates)
    text = tpl.format(t=phrase, T=phrase[:1].upper() + phrase[1:])
    if linked:
        rest = " ".join(w for w in linked if w.lower() not in ("with", "in"))
        if tree.connector[path[-2] if len(path) > 1 else i] == "note" and rng.random() < 0.5:
            text += rng.choice(_SEPARATE).format(t=rest)
        else:
            text = text.rstrip(".") + f" {' '.join(linked)}."
    return text
