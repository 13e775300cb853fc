"""Labeled notes for training and evaluation: the CodiEsp folder layout and JSONL.

CodiEsp: a split folder holding ``text_files_en/*.txt`` and ``{split}D.tsv`` / ``{split}P.tsv``
(``doc<TAB>code``, lower-case codes such as ``n44.8`` or ``bw03zzz``). JSONL: one
``{"id": ..., "text": ..., "codes": [...]}`` per line, where a code is ``"E11.22"``,
``"ICD-10-PCS:0DTJ4ZZ"`` or ``{"system": ..., "code": ...}``.

The feedback export (``GET /v1/feedback/export``) is JSONL too, with more per note: ``rejected``
(codes the coder turned down: explicit negatives), ``unreviewed`` (codes the engine proposed
that got no decision: neither positive nor negative), ``partial_codes`` (partial ICD-10-PCS
codes the coder confirmed: labels, read into ``codes`` as CodiEsp's 4-character codes are) and
``code_sets`` (the code-set versions the note was coded with).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from clinicode.errors import InputError

Format = Literal["codiesp", "jsonl", "mimic-iv"]
FORMATS: tuple[str, ...] = ("codiesp", "jsonl", "mimic-iv")
Task = Literal["D", "P"]

_ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
_PCS = re.compile(r"^[0-9A-HJ-NP-Z]{3,7}$")
_CPT = re.compile(r"^[0-9]{4}[0-9A-Z]$")
_HCPCS = re.compile(r"^[A-V][0-9]{4}$")


@dataclass
class LabeledNote:
    id: str
    text: str
    codes: list[tuple[str, str]] = field(default_factory=list)  # (system, code), display form
    # from a coder's review: codes turned down (explicit negatives), codes proposed but not
    # decided on (no label either way), and the code-set versions the note was coded with
    rejected: list[tuple[str, str]] = field(default_factory=list)
    unreviewed: list[tuple[str, str]] = field(default_factory=list)
    code_sets: dict[str, str] = field(default_factory=dict)

    def codes_for(self, task: Task) -> list[str]:
        """Codes of one task: D = ICD-10-CM, P = procedures (PCS, CPT, HCPCS), keyed system:code."""
        want = ("ICD-10-CM",) if task == "D" else ("ICD-10-PCS", "CPT", "HCPCS")
        return [f"{s}:{c}" for s, c in self.codes if s in want]


def task_systems(task: Task) -> tuple[str, ...]:
    return ("ICD-10-CM",) if task == "D" else ("ICD-10-PCS", "CPT", "HCPCS")


def normalize_label(code: str, system: str) -> str:
    """Display form: upper case; ICD-10-CM with its dot after the category."""
    c = code.strip().upper().replace(" ", "")
    if system == "ICD-10-CM" and len(c) > 3 and "." not in c:
        c = c[:3] + "." + c[3:]
    return c


def guess_system(code: str, hint: Task | None = None) -> str:
    """The code system a bare code most likely belongs to (``hint`` settles D/P ambiguity)."""
    c = code.strip().upper()
    if hint == "D":
        return "ICD-10-CM"
    if hint == "P":
        if _CPT.match(c):
            return "CPT"
        if _HCPCS.match(c):
            return "HCPCS"
        return "ICD-10-PCS"
    if "." in c or (_ICD10CM.match(c) and len(c) <= 4):
        return "ICD-10-CM"
    if _CPT.match(c):
        return "CPT"
    if len(c) == 7 and _PCS.match(c):
        return "ICD-10-PCS"
    if _HCPCS.match(c):
        return "HCPCS"
    return "ICD-10-CM"


def _read_tsv(path: Path, system_hint: Task) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.strip().split("\t")
        if len(parts) < 2 or not parts[1].strip():
            continue
        system = guess_system(parts[1], system_hint)
        code = normalize_label(parts[1], system)
        codes = out.setdefault(parts[0].strip(), [])
        if (system, code) not in codes:
            codes.append((system, code))
    return out


def load_codiesp(folder: Path) -> list[LabeledNote]:
    """One CodiEsp split folder (``.../codiesp/train``): English texts with D and P codes."""
    folder = Path(folder)
    text_dir = folder / "text_files_en"
    if not text_dir.is_dir():
        raise InputError(f"{folder} is not a CodiEsp split folder (no text_files_en/ inside)")
    d_files = sorted(folder.glob("*D.tsv"))
    p_files = sorted(folder.glob("*P.tsv"))
    if not d_files and not p_files:
        raise InputError(f"{folder} holds no {{split}}D.tsv or {{split}}P.tsv gold file")
    gold: dict[str, list[tuple[str, str]]] = {}
    for path, hint in [(f, "D") for f in d_files] + [(f, "P") for f in p_files]:
        for doc, codes in _read_tsv(path, hint).items():  # type: ignore[arg-type]
            gold.setdefault(doc, []).extend(codes)
    notes = []
    for path in sorted(text_dir.glob("*.txt")):
        notes.append(
            LabeledNote(
                id=path.stem, text=path.read_text(encoding="utf-8"), codes=gold.get(path.stem, [])
            )
        )
    if not notes:
        raise InputError(f"{text_dir} holds no .txt notes")
    return notes


def _parse_code(item: object, line_no: int) -> tuple[str, str]:
    if isinstance(item, dict):
        code = str(item.get("code", ""))
        system = str(item.get("system") or guess_system(code))
    elif isinstance(item, str):
        if ":" in item:
            system, code = item.split(":", 1)
        else:
            code, system = item, guess_system(item)
    else:
        raise InputError(f"line {line_no}: a code must be a string or an object, got {item!r}")
    if not code.strip():
        raise InputError(f"line {line_no}: empty code")
    return system, normalize_label(code, system)


def load_jsonl(path: Path) -> list[LabeledNote]:
    """``{"id","text","codes"}`` per line (a folder: every ``*.jsonl`` inside)."""
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise InputError(f"no JSONL file at {path}")
    notes: list[LabeledNote] = []
    for f in files:
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{f.name} line {i}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or "text" not in obj:
                raise InputError(f"{f.name} line {i}: needs an object with 'id', 'text', 'codes'")
            notes.append(_note_of(obj, f"{f.stem}-{i}", i))
    if not notes:
        raise InputError(f"{path} holds no notes")
    return notes


def _codes(obj: dict[str, object], name: str, line_no: int) -> list[tuple[str, str]]:
    items = obj.get(name) or []
    if not isinstance(items, list):
        raise InputError(f"line {line_no}: {name!r} must be a list of codes")
    return [_parse_code(c, line_no) for c in items]


def _note_of(obj: dict[str, object], default_id: str, line_no: int) -> LabeledNote:
    code_sets = obj.get("code_sets") or {}
    if not isinstance(code_sets, dict):
        raise InputError(f"line {line_no}: 'code_sets' must be an object of system: version")
    return LabeledNote(
        id=str(obj.get("id", default_id)),
        text=str(obj["text"]),
        # a confirmed partial ICD-10-PCS code is a label as CodiEsp's 4-character codes are
        codes=list(
            dict.fromkeys(_codes(obj, "codes", line_no) + _codes(obj, "partial_codes", line_no))
        ),
        rejected=_codes(obj, "rejected", line_no),
        unreviewed=_codes(obj, "unreviewed", line_no),
        code_sets={str(k): str(v) for k, v in code_sets.items()},
    )


def load_notes(
    path: Path,
    fmt: Format,
    *,
    split_file: Path | None = None,
    split: str | None = None,
    kb: Any = None,
    stats: Any = None,
) -> list[LabeledNote]:
    """Labeled notes of ``path`` in ``fmt``; ``split_file``/``split``/``kb``/``stats`` are
    MIMIC-IV's (see :mod:`clinicode.training.mimic`)."""
    if fmt == "codiesp":
        return load_codiesp(path)
    if fmt == "jsonl":
        return load_jsonl(path)
    if fmt == "mimic-iv":
        from clinicode.training.mimic import load_mimic_iv

        return load_mimic_iv(path, split_file=split_file, split=split, kb=kb, stats=stats)
    raise InputError(f"unknown data format {fmt!r}; choose codiesp, jsonl or mimic-iv")


def fingerprint(notes: list[LabeledNote]) -> str:
    """A hash of the training data (ids, texts, codes) recorded in the pack manifest."""
    h = hashlib.sha256()
    for n in sorted(notes, key=lambda n: n.id):
        h.update(n.id.encode())
        h.update(hashlib.sha256(n.text.encode()).digest())
        h.update(json.dumps(sorted(n.codes)).encode())
        if n.rejected or n.unreviewed:  # (plain labeled notes keep their former fingerprint)
            h.update(json.dumps([sorted(n.rejected), sorted(n.unreviewed)]).encode())
    return "sha256:" + h.hexdigest()
