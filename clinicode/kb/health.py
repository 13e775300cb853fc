"""Is the knowledge-base file whole? A cheap check the builders, the CLI and the service run
before trusting (or rebuilding) ``kb.sqlite``.

:func:`kb_file_problem` reads the SQLite header (magic, page size, page count) and compares the
size the file should have with the size it has, then reads the ``systems`` table: a truncated,
emptied or overwritten file is named with what is wrong, in milliseconds, without reading the
whole file. The answer is cached per (path, size, mtime).

A damaged KB is never rebuilt silently: it may hold imported official files (Index, tables,
ICD-10-PCS, HCPCS, licensed CPT) that the shipped tabular cannot restore. :class:`KBDamaged`
says how to restore or rebuild it (``--force``, which keeps the damaged file aside).
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from clinicode.kb.records import KBError

_MAGIC = b"SQLite format 3\x00"
_lock = threading.Lock()
_cache: dict[tuple[str, int, int], str | None] = {}


class KBDamaged(KBError):
    """The knowledge-base file exists but cannot be trusted; the message names it."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(
            f"the code-set knowledge base {self.path} {problem}. It may hold imported official "
            "files, so it is not rebuilt silently: restore it from a backup, or rebuild it with "
            "`clinicode setup --force` (the damaged file is kept aside) and import the official "
            "files again (`clinicode codes fetch` or `clinicode codes import`)"
        )

    @property
    def short(self) -> str:
        """The problem naming only the file (for responses that must not show paths)."""
        return f"the code-set knowledge base {self.path.name} {self.problem}"


def kb_file_problem(path: Path | str) -> str | None:
    """What is wrong with the KB file at ``path`` ("is empty (0 bytes)", "is truncated ...",
    "is not an SQLite database", "cannot be read: ..."), or None when it looks whole. A missing
    file is not a problem here (it is built on first use)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _lock:
        if key in _cache:
            return _cache[key]
    problem = _check(p, st.st_size)
    with _lock:
        _cache[key] = problem
    return problem


def _check(p: Path, size: int) -> str | None:
    if size == 0:
        return "is empty (0 bytes)"
    try:
        with p.open("rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if len(head) < 100 or not head.startswith(_MAGIC):
        return "is not an SQLite database (damaged or overwritten)"
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    counter_valid = head[24:28] == head[92:96]
    expected = page_size * pages
    if counter_valid and pages and size < expected:
        return f"is truncated ({size:,} of {expected:,} bytes)"
    try:
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            conn.execute("SELECT COUNT(*) FROM systems").fetchone()
            conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"cannot be read ({exc})"
    return None


def check_kb_file(path: Path | str) -> None:
    """Raise :class:`KBDamaged` when the KB file at ``path`` is damaged."""
    problem = kb_file_problem(path)
    if problem is not None:
        raise KBDamaged(Path(path), problem)


def set_aside(path: Path) -> Path:
    """Move a damaged KB file (and its journal) out of the way, keeping it for recovery;
    returns where it went."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(target)
    for suffix in ("-journal", "-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target
