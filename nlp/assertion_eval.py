"""Assertion on NegEx-format files: ``clinicode nlp assertions --tsv FILE`` and the negex bench.

A NegEx-format file is a UTF-8 TSV with a header row and at least the columns ``concept`` and
``sentence`` (negex-dev also has ``report``, ``negation``, ``temporality``, ``experiencer``).
As in the NegEx protocol the target concept is given; it may differ from the sentence in case,
spacing and punctuation. :func:`main_tsv` writes every input row, all input columns kept in
order, plus ``pred_negation`` (Affirmed/Negated), ``pred_temporality`` (Recent/Historical/Not
particular) and ``pred_experiencer`` (Patient/Family member/Other).
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from clinicode.errors import InputError

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span

PRED_COLUMNS: tuple[str, ...] = ("pred_negation", "pred_temporality", "pred_experiencer")
GOLD_COLUMNS: tuple[str, ...] = ("negation", "temporality", "experiencer")
REQUIRED_COLUMNS: tuple[str, ...] = ("concept", "sentence")
NEGATION_LABELS: tuple[str, ...] = ("Affirmed", "Negated")
SPLIT_SALT = "negex-split-"

_WORD = re.compile(r"[0-9a-z]+")


@dataclass(frozen=True)
class Prediction:
    negation: str
    temporality: str
    experiencer: str
    concept_found: bool


def read_negex_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a NegEx-format TSV; :class:`InputError` when it is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path} is a directory, not a TSV file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    lines = [line.rstrip("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise InputError(f"{path} is empty: expected a header row with concept and sentence")
    header = [h.strip() for h in lines[0].split("\t")]
    lowered = [h.lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in lowered]
    if missing:
        raise InputError(
            f"{path}: header lacks column(s) {', '.join(missing)}; expected a tab-separated "
            f"header such as 'report<TAB>concept<TAB>sentence' (found {len(header)} column(s))"
        )
    clash = [c for c in PRED_COLUMNS if c in lowered]
    if clash:
        raise InputError(f"{path}: input already has column(s) {', '.join(clash)}")
    rows: list[list[str]] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise InputError(
                f"{path}, line {lineno}: {len(fields)} tab-separated field(s), the header has "
                f"{len(header)}"
            )
        rows.append(fields)
    return header, rows


def _normalized_with_map(text: str) -> tuple[str, list[int]]:
    """Lower-cased alphanumerics of ``text`` (words joined by one space) and their offsets."""
    chars: list[str] = []
    offsets: list[int] = []
    for m in _WORD.finditer(text.lower()):
        if chars:
            chars.append(" ")
            offsets.append(m.start())
        for i in range(m.start(), m.end()):
            chars.append(text[i].lower())
            offsets.append(i)
    return "".join(chars), offsets


def locate_concept(sentence: str, concept: str) -> tuple[int, int] | None:
    """Character span of ``concept`` in ``sentence``, ignoring case, spacing and punctuation.

    Tries, in order: the exact text, the text ignoring case, then word sequences (alphanumeric
    runs) so that ``"MVP with regurg"`` finds ``"MVP WITH   REGURG"`` and ``"s/p CABG"`` finds
    ``"s/p. CABG"``. Returns None when the concept's words do not occur in order.
    """
    concept = concept.strip()
    if not concept:
        return None
    lowered, low_concept = sentence.lower(), concept.lower()
    hits = [m.start() for m in re.finditer(re.escape(low_concept), lowered)]
    if hits and len(lowered) == len(sentence):
        # NegEx-style files upper-case the target occurrence where the concept recurs.
        marked = [i for i in hits if sentence[i : i + len(concept)] == concept.upper()]
        exact = [i for i in hits if sentence[i : i + len(concept)] == concept]
        i = (marked or exact or hits)[0] if sentence != sentence.upper() else hits[0]
        return i, i + len(concept)
    norm_sent, offsets = _normalized_with_map(sentence)
    norm_concept, _ = _normalized_with_map(concept)
    if not norm_concept:
        return None
    # Whole-word match first, then a match inside words ("regurg" in "regurgitation").
    m = re.search(r"(?<![0-9a-z])" + re.escape(norm_concept) + r"(?![0-9a-z])", norm_sent)
    j = m.start() if m else norm_sent.find(norm_concept)
    if j < 0:
        # Words joined differently ("lymph nodes" vs "lymphnodes", "s/p" vs "sp").
        squeezed = norm_sent.replace(" ", "")
        sq_offsets = [o for c, o in zip(norm_sent, offsets, strict=True) if c != " "]
        target = norm_concept.replace(" ", "")
        k = squeezed.find(target)
        if k < 0:
            return None
        return sq_offsets[k], sq_offsets[k + len(target) - 1] + 1
    return offsets[j], offsets[j + len(norm_concept) - 1] + 1


BASELINE = "medspacy_baseline"


@lru_cache(maxsize=4)
def _nlp(rules: str) -> Language:
    """A blank English pipeline with the assertion step (or plain medspaCy ConText)."""
    import spacy

    nlp = spacy.blank("en")
    if rules == BASELINE:
        import medspacy.context  # noqa: F401  (registers medspacy_context)

        nlp.add_pipe(
            "medspacy_context",
            name="assertion",
            config={"rules": "default", "input_span_type": "group", "span_group_name": "mentions"},
        )
    else:
        from clinicode.nlp import assertion  # noqa: F401  (registers the factory)

        nlp.add_pipe(
            "clinicode_assertion",
            name="assertion",
            config={"rules": rules, "use_sections": False},
        )
    return nlp


def _axes(span: Span, rules: str) -> tuple[str, str, str]:
    if rules == BASELINE:
        # medspaCy's own attributes, mapped to the NegEx vocabulary.
        temporality = (
            "Not particular"
            if span._.is_hypothetical
            else "Historical"
            if span._.is_historical
            else "Recent"
        )
        experiencer = "Family member" if span._.is_family else "Patient"
        return ("Negated" if span._.is_negated else "Affirmed", temporality, experiencer)
    return (
        "Negated" if span._.negated else "Affirmed",
        span._.temporality,
        span._.experiencer,
    )


def _sentence_axes(doc: Doc, component: Any) -> tuple[str, str, str]:
    """Axes from every cue in the sentence: the fallback when the concept is not found."""
    if hasattr(component, "cue_categories"):
        cats = component.cue_categories(doc)
    else:  # medspaCy's ConText ran with the whole sentence as the target
        cats = {
            m.category
            for m in doc._.context_graph.modifiers
            if m.direction not in ("PSEUDO", "TERMINATE")
        }
    negation = "Negated" if "NEGATED_EXISTENCE" in cats else "Affirmed"
    temporality = (
        "Not particular"
        if "HYPOTHETICAL" in cats
        else "Historical"
        if "HISTORICAL" in cats
        else "Recent"
    )
    experiencer = (
        "Family member"
        if "FAMILY" in cats
        else "Other"
        if "OTHER_EXPERIENCER" in cats
        else "Patient"
    )
    return negation, temporality, experiencer


def predict(pairs: Iterable[tuple[str, str]], rules: str = "clinicode") -> list[Prediction]:
    """Negation, temporality and experiencer of each (sentence, concept) pair.

    Each sentence is one ConText scope (the NegEx protocol gives sentences). Where the concept
    cannot be found, every cue in the sentence counts (``concept_found`` False). ``rules`` names
    a rule set of the ``clinicode_assertion`` step (``clinicode``, ``medspacy_default`` or a JSON
    path) or is ``medspacy_baseline``: medspaCy's own ConText with its default rules.
    """
    nlp = _nlp(rules)
    component = nlp.get_pipe("assertion")
    out: list[Prediction] = []
    for sentence, concept in pairs:
        doc = nlp.make_doc(sentence)
        if len(doc) == 0:
            out.append(Prediction("Affirmed", "Recent", "Patient", False))
            continue
        for k, tok in enumerate(doc):
            tok.is_sent_start = k == 0
        loc = locate_concept(sentence, concept)
        span = doc.char_span(*loc, label="condition", alignment_mode="expand") if loc else None
        found = span is not None and len(span) > 0
        if not found:
            span = doc[0 : len(doc)]
            span.label_ = "condition"
        assert span is not None
        doc.spans["mentions"] = [span]
        component(doc)
        axes = _axes(doc.spans["mentions"][0], rules) if found else _sentence_axes(doc, component)
        out.append(Prediction(*axes, found))
    return out


def main_tsv(path: Path, out: TextIO, rules: str = "clinicode") -> None:
    """Write the rows of the NegEx-format file ``path`` with predicted columns appended."""
    header, rows = read_negex_tsv(path)
    lowered = [h.lower() for h in header]
    i_concept, i_sentence = lowered.index("concept"), lowered.index("sentence")
    preds = predict(((r[i_sentence], r[i_concept]) for r in rows), rules=rules)
    out.write("\t".join([*header, *PRED_COLUMNS]) + "\n")
    for row, p in zip(rows, preds, strict=True):
        out.write("\t".join([*row, p.negation, p.temporality, p.experiencer]) + "\n")
    missing = sum(1 for p in preds if not p.concept_found)
    if missing:
        sys.stderr.write(
            f"warning: concept not found in its sentence for {missing} of {len(preds)} row(s); "
            "every cue in the whole sentence was used instead\n"
        )


def split_of(report: str) -> str:
    """``"tune"`` or ``"heldout"``: the fixed half of negex-dev a report id belongs to.

    Rules are developed on the tuning half only; the bench reports both halves and the full set.
    """
    digest = hashlib.sha256((SPLIT_SALT + report.strip()).encode("utf-8")).hexdigest()
    return "tune" if int(digest, 16) % 2 == 0 else "heldout"


@dataclass(frozen=True)
class Scores:
    n: int
    negation_precision: float
    negation_recall: float
    negation_f1: float
    temporality_accuracy: float
    experiencer_accuracy: float


def score(gold: Sequence[tuple[str, str, str]], pred: Sequence[Prediction]) -> Scores:
    """Negation P/R/F1 (Negated is the positive class) and temporality/experiencer accuracy."""
    if len(gold) != len(pred):
        raise ValueError("gold and predictions differ in length")
    tp = sum(1 for g, p in zip(gold, pred, strict=True) if g[0] == p.negation == "Negated")
    fp = sum(1 for g, p in zip(gold, pred, strict=True) if p.negation == "Negated" != g[0])
    fn = sum(1 for g, p in zip(gold, pred, strict=True) if g[0] == "Negated" != p.negation)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    n = len(gold)
    temp = (
        sum(1 for g, p in zip(gold, pred, strict=True) if g[1] == p.temporality) / n if n else 0.0
    )
    exp = sum(1 for g, p in zip(gold, pred, strict=True) if g[2] == p.experiencer) / n if n else 0.0
    return Scores(n, prec, rec, f1, temp, exp)
