"""Coding guidelines layer: from ranked candidate codes to the code set a certified coder would sign.

Sits after the ranker and before output (``GuidelinesLayer`` in ``models/types.py``). Every change
a rule makes to a code appends a line to that code's ``explanation`` naming the rule's guideline
section, e.g. ``"I.C.9.a.2: hypertension with CKD presumed linked"``. Section numbers quote the
ICD-10-CM Official Guidelines FY2026.

Layout:

* :mod:`.data` -- :func:`load_rules`, the one loader of ``models/resources/guidelines_rules.yaml``
  (every clinical table, code and cue the rules read), and the code patterns it is written in;
* :mod:`.state` -- the per-note working state and the helpers the rules read it with (negation
  and sentence bounds come from :mod:`clinicode.nlp.cues`);
* :mod:`.layer` -- :class:`Guidelines`: KB lookups, ``apply``, the add/drop/replace edits, the
  result;
* :mod:`.rules` -- the ``@rule(name)`` registry;
* :mod:`.titles` -- what a code title needs a note to state (read by the rules below);
* one module per rule family: :mod:`.documented` (candidates the note states word for word,
  and the most specific code of a category the note states), :mod:`.assertion`,
  :mod:`.evidence` (evidence that holds), :mod:`.refinements`, :mod:`.combinations`,
  :mod:`.use_additional`, :mod:`.drug_table` (the Table of Drugs: poisoning, adverse effect,
  underdosing), :mod:`.statements` (codes a statement documents by itself: vaccine given,
  exposure, screening), :mod:`.specificity` (with I.B.13, both sides where no bilateral code
  exists), :mod:`.symptoms`, :mod:`.excludes`, :mod:`.sequencing`.

The order the rules run in (each sees the result of the previous one) is ``rule_order`` in
``models/resources/guidelines_rules.yaml``, and nowhere else.

Benchmark switch (``benchmark=True``): CodiEsp annotators coded negated and other non-present
mentions too, and follow their own conventions, so on the benchmark path the layer neither
removes nor reorders the ranker's codes. ``codes`` is the same set as on the normal path; every
other input code (suppressed, replaced by a combination code, integral symptom, Excludes1 loser)
stays in ``candidates``; ``suppressed`` is empty. Both lists, and ``rank`` over ``codes +
candidates``, follow the ranker's input order, with codes the rules added after all input codes.
The ranking MAP is scored on is therefore the ranker's own with additions at its tail, so the
layer cannot lower MAP (an earlier version demoted suppressed codes by score: it cost 0.027 dev
MAP with the CodiEsp-trained pack).
"""

from __future__ import annotations

# the rule families register their rules when imported; the layer runs them in the data's order
from . import (  # noqa: F401
    assertion,
    combinations,
    demographics,
    documented,
    drug_table,
    evidence,
    excludes,
    refinements,
    sequencing,
    specificity,
    statements,
    symptoms,
    use_additional,
)
from .data import (
    ICD,
    any_match,
    code_matches,
    first_rule,
    load_rules,
    note_refs,
)
from .layer import Guidelines
from .rules import registered, rule, rule_order
from .state import Item, NoteState
from .use_additional import bmi_code

__all__ = [
    "ICD",
    "Guidelines",
    "Item",
    "NoteState",
    "any_match",
    "bmi_code",
    "code_matches",
    "first_rule",
    "load_rules",
    "note_refs",
    "registered",
    "rule",
    "rule_order",
]
