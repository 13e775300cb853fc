"""The code-set knowledge base that nlp/, models/, serve/ and the CLI all read.

``open_kb()`` returns the SQLite-backed :class:`KnowledgeBase`, building ICD-10-CM from the
tabular XML in ``simple-icd-10-cm`` (and loading the built-in CPT starter set) on first use (a few
seconds), then loading in milliseconds. Official files (Alphabetic Index, tables, ICD-10-PCS,
HCPCS, licensed CPT) come in through :mod:`clinicode.kb.importers`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from clinicode.kb.health import KBDamaged
from clinicode.kb.records import CodeRecord, SearchHit, SystemInfo, Term
from clinicode.kb.store import IndexEntry, KBError, KnowledgeBase, needs_upgrade, normalize_code

__all__ = [
    "CodeRecord",
    "IndexEntry",
    "KBDamaged",
    "KBError",
    "KnowledgeBase",
    "SearchHit",
    "SystemInfo",
    "Term",
    "build_icd10cm",
    "default_kb_path",
    "normalize_code",
    "open_kb",
]

_lock = threading.Lock()
_cache: dict[Path, KnowledgeBase] = {}


def default_kb_path() -> Path:
    from clinicode.settings import get_settings

    return get_settings().kb_path


def build_icd10cm(path: Path, *, force: bool = False) -> SystemInfo:
    """(Re)build ICD-10-CM in the KB at ``path`` unless it already holds this exact release.

    Also loads the built-in CPT starter set when the KB has no CPT yet (or an older starter
    set); a licensed CPT file imported with ``clinicode codes import cpt`` is never replaced.
    A damaged KB file (empty, truncated, overwritten) raises :class:`KBDamaged` instead of being
    rebuilt over what was imported into it; with ``force`` it is moved aside and built anew.
    """
    from clinicode.hashing import sha256_file
    from clinicode.kb.health import kb_file_problem, set_aside
    from clinicode.kb.icd10cm import parse_tabular, tabular_path
    from clinicode.kb.importers.cpt import ensure_cpt_starter

    problem = kb_file_problem(path)
    if problem is not None:
        if not force:
            raise KBDamaged(Path(path), problem)
        set_aside(Path(path))
    kb = KnowledgeBase(path, readonly=False)
    try:
        current = kb.system_info("ICD-10-CM")
        src = tabular_path()
        if force or current is None or current.source_hash != sha256_file(src):
            parsed = parse_tabular(src)
            current = kb.replace_system(parsed.info, parsed.records, parsed.terms)
        ensure_cpt_starter(kb)
        return current
    finally:
        kb.close()


def open_kb(path: Path | str | None = None, *, build: bool = True) -> KnowledgeBase:
    """A read-only KB (cached per path); builds ICD-10-CM first if it is missing.
    :class:`KBDamaged` (naming the file) when the file is damaged: it is never rebuilt here."""
    from clinicode.kb.health import check_kb_file

    p = Path(path) if path is not None else default_kb_path()
    with _lock:
        kb = _cache.get(p)
        if kb is not None:
            return kb
        check_kb_file(p)
        if build and (not p.exists() or needs_upgrade(p) or _needs_icd10cm(p)):
            build_icd10cm(p)
        kb = KnowledgeBase(p, readonly=True)
        _cache[p] = kb
        return kb


def _needs_icd10cm(p: Path) -> bool:
    """True when ICD-10-CM is missing or the CPT starter set is missing or outdated."""
    from clinicode.kb.importers.cpt import starter_outdated

    try:
        kb = KnowledgeBase(p, readonly=True)
        try:
            return kb.system_info("ICD-10-CM") is None or starter_outdated(kb)
        finally:
            kb.close()
    except Exception:
        return True


def clear_cache() -> None:
    with _lock:
        for kb in _cache.values():
            kb.close()
        _cache.clear()
