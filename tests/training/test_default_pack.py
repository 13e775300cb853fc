"""The default pack's synthetic notes: deterministic, labeled with real codes, with distractors."""

from __future__ import annotations

from typing import Any

from clinicode.training.default_pack import synthetic_notes


def test_synthetic_notes_are_deterministic_and_labeled(kb: Any) -> None:
    a = synthetic_notes(kb, n_notes=30, seed=3)
    b = synthetic_notes(kb, n_notes=30, seed=3)
    assert [n.text for n in a] == [n.text for n in b]
    assert [n.text for n in a] != [n.text for n in synthetic_notes(kb, n_notes=30, seed=4)]
    for note in a:
        assert 2 <= len(note.codes) <= 7
        for system, code in note.codes:
            assert system == "ICD-10-CM"
            assert kb.get(code, system) is not None
            assert code[0] not in "VWXY"
    # some notes carry negated or family-history distractors whose codes are not labels
    assert any(("No evidence of" in n.text or "Denies" in n.text) for n in a)
