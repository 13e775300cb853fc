"""Reading notes (JSONL, CSV, Parquet) and writing rows so that a kill never loses one.

Readers yield :class:`~clinicode.batch.rows.Note` or :class:`~clinicode.batch.rows.BadRow` in
input order. Bytes that are not UTF-8 are decoded with ``surrogateescape`` and refused per row by
:func:`~clinicode.batch.rows.check_note`, so one bad row never stops the file.

Writers are append-only and resumable: a JSONL file gets whole lines, flushed and fsync'd per
chunk, and a line cut by a kill is dropped on the next run (its note is coded again); a Parquet
output is a folder of part files, each written under a temporary name and renamed when complete.
``done_ids`` reads back what a previous run finished.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clinicode.batch.rows import BadRow, Note, arrow_schema, check_note
from clinicode.errors import InputError

FORMATS_IN = ("jsonl", "csv", "parquet")
FORMATS_OUT = ("jsonl", "parquet")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: Path, given: str | None, allowed: tuple[str, ...], what: str) -> str:
    """The format named by ``given``, else by the file's suffix (a folder is Parquet)."""
    fmt = given or _SUFFIXES.get(path.suffix.lower())
    if fmt is None and what == "input" and path.is_dir():
        fmt = "parquet"
    if fmt is None:
        raise InputError(
            f"cannot tell the {what} format of {path} from its suffix; "
            f"pass --{what}-format ({' | '.join(allowed)})"
        )
    if fmt not in allowed:
        raise InputError(f"{what} format must be one of {', '.join(allowed)}, not {fmt!r}")
    return fmt


# --------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------
def read_notes(
    path: Path, fmt: str, id_col: str, text_col: str, max_chars: int
) -> Iterator[Note | BadRow]:
    """Every row of the input, checked, in order. Raises :class:`InputError` only for what
    makes the whole file unreadable (missing, no such column)."""
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if fmt == "jsonl":
        return _read_jsonl(path, id_col, text_col, max_chars)
    if fmt == "csv":
        _check_csv_header(path, id_col, text_col)
        return _read_csv(path, id_col, text_col, max_chars)
    return _read_parquet(_parquet_dataset(path, id_col, text_col), id_col, text_col, max_chars)


def count_rows(path: Path, fmt: str) -> int | None:
    """How many rows the input holds (for the progress bar's ETA), or None when unknown."""
    try:
        if fmt == "jsonl":
            with path.open("rb") as fh:
                return sum(1 for line in fh if line.strip())
        if fmt == "csv":
            return sum(1 for _ in _csv_rows(path))
        import pyarrow.dataset as ds

        return int(ds.dataset(str(path), format="parquet").count_rows())
    except (OSError, csv.Error, ValueError):
        return None


def parse_json_line(
    raw: bytes, line: int | None, id_col: str, text_col: str, max_chars: int
) -> Note | BadRow:
    """One JSONL row, checked (both engines read JSON lines with this)."""
    try:
        obj = json.loads(raw.decode("utf-8", errors="surrogateescape"))
    except ValueError:
        return BadRow(None, line, "not a JSON object")
    if not isinstance(obj, dict):
        return BadRow(None, line, "not a JSON object")
    return check_note(obj.get(id_col), obj.get(text_col), line, max_chars)


def _read_jsonl(path: Path, id_col: str, text_col: str, max_chars: int) -> Iterator[Note | BadRow]:
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if raw.strip():
                yield parse_json_line(raw, n, id_col, text_col, max_chars)


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    csv.field_size_limit(sys.maxsize)  # oversized notes are refused by length, not by csv
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh)
        n = 1
        for row in reader:
            n += 1
            yield n, row


def _check_csv_header(path: Path, id_col: str, text_col: str) -> None:
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
        header = next(csv.reader(fh), None)
    missing = [c for c in (id_col, text_col) if c not in (header or [])]
    if missing:
        raise InputError(
            f"column {missing[0]!r} not in {path} (columns: {', '.join(header or []) or 'none'}); "
            "name the columns with --id-column and --text-column"
        )


def _read_csv(path: Path, id_col: str, text_col: str, max_chars: int) -> Iterator[Note | BadRow]:
    rows = _csv_rows(path)
    n = 1
    while True:
        try:
            n, row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            yield BadRow(None, n + 1, f"CSV row cannot be read ({exc})")
            return
        yield check_note(row.get(id_col), row.get(text_col), n, max_chars)


def _parquet_dataset(path: Path, id_col: str, text_col: str) -> Any:
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        data = ds.dataset(str(path), format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path} is not a Parquet file or folder ({exc})") from None
    names = data.schema.names
    for c in (id_col, text_col):
        if c not in names:
            raise InputError(
                f"column {c!r} not in {path} (columns: {', '.join(names)}); "
                "name the columns with --id-column and --text-column"
            )
    return data


def _read_parquet(data: Any, id_col: str, text_col: str, max_chars: int) -> Iterator[Note | BadRow]:
    import pyarrow as pa

    n = 0
    for batch in data.to_batches(columns=[id_col, text_col], batch_size=1024):
        ids = batch.column(0).to_pylist()
        col = batch.column(1)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = col.cast(pa.large_binary())  # decoded per row: one bad value is one bad row
        for raw_id, text in zip(ids, col.to_pylist(), strict=True):
            n += 1
            yield check_note(raw_id, text, n, max_chars)


# --------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------
class JsonlAppender:
    """Appends whole JSON lines to a file; what a kill cut short is dropped on reopening."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def done(self, key: str = "id") -> list[dict[str, Any]]:
        """The complete rows already in the file; a last line cut by a kill is removed."""
        if not self.path.exists():
            return []
        rows: list[dict[str, Any]] = []
        good_end = 0
        with self.path.open("rb") as fh:
            for n, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    break  # the tail a kill cut: its note is coded again
                try:
                    obj = json.loads(raw)
                except ValueError:
                    obj = None
                if not isinstance(obj, dict) or key not in obj:
                    raise InputError(
                        f"{self.path} line {n} is not a row written by clinicode batch; "
                        "give another output path"
                    )
                rows.append(obj)
                good_end = fh.tell()
        if good_end != self.path.stat().st_size:
            with self.path.open("r+b") as fh:
                fh.truncate(good_end)
        return rows

    def write_lines(self, lines: list[str]) -> None:
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(line + "\n" for line in lines).encode("utf-8", errors="surrogateescape")
        with self.path.open("ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


class ParquetParts:
    """A folder of ``part-NNNNN.parquet`` files, each renamed into place once complete."""

    def __init__(self, folder: Path, rows_per_file: int) -> None:
        self.folder = folder
        self.rows_per_file = max(1, rows_per_file)
        self._buffer: list[dict[str, Any]] = []

    def _parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))

    def done_ids(self) -> list[str]:
        import pyarrow.parquet as pq

        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"{self.folder} is a file; a Parquet output is a folder")
        ids: list[str] = []
        for tmp in self.folder.glob(".part-*.tmp"):
            tmp.unlink()  # a part a kill cut short: its notes are coded again
        for part in self._parts():
            ids.extend(pq.read_table(part, columns=["id"]).column(0).to_pylist())
        return ids

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._buffer.extend(rows)
        while len(self._buffer) >= self.rows_per_file:
            self._flush(self._buffer[: self.rows_per_file])
            self._buffer = self._buffer[self.rows_per_file :]

    def close(self) -> None:
        if self._buffer:
            self._flush(self._buffer)
            self._buffer = []

    def _flush(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.folder.mkdir(parents=True, exist_ok=True)
        parts = self._parts()
        n = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
        final = self.folder / f"part-{n:05d}.parquet"
        tmp = self.folder / f".part-{n:05d}.tmp"
        pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
