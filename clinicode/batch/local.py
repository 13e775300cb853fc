"""Batch coding on one machine: the parent and forked worker processes (:mod:`.coders`).

Notes are read in order and coded in chunks of ``--chunk`` notes, each by whichever coder is free;
two chunks per coder are in flight, so no coder waits for the slowest note of another's chunk.
Rows are written in input order as chunks finish (the finished ones together: one write and one
fsync). A rerun reads what the output and the errors file hold
and skips those notes; a second row with an id already seen is a bad row ("duplicate id").
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING

from clinicode.batch.coders import Coded, Coders
from clinicode.batch.io import JsonlAppender, ParquetParts, count_rows, read_notes
from clinicode.batch.options import BatchOptions, BatchReport
from clinicode.batch.rows import BadRow, Note, dumps_row

if TYPE_CHECKING:
    from clinicode.engine import Engine


class _Output:
    """The output, JSONL file or Parquet folder, behind one interface."""

    def __init__(self, opts: BatchOptions) -> None:
        self.jsonl = JsonlAppender(opts.output) if opts.output_format == "jsonl" else None
        self.parquet = (
            ParquetParts(opts.output, opts.rows_per_file)
            if opts.output_format == "parquet"
            else None
        )

    def done_ids(self) -> set[str]:
        if self.jsonl is not None:
            return {str(r["id"]) for r in self.jsonl.done()}
        assert self.parquet is not None
        return set(self.parquet.done_ids())

    def write(self, lines: list[str]) -> None:
        """Rows given as their JSON lines (:func:`~clinicode.batch.rows.dumps_row`)."""
        if self.jsonl is not None:
            self.jsonl.write_lines(lines)
        elif self.parquet is not None:
            self.parquet.write([json.loads(line) for line in lines])

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


def _chunks(
    rows: Iterator[Note | BadRow],
    opts: BatchOptions,
    done: set[str],
    reported: set[tuple[str | None, int | None]],
    errors: JsonlAppender,
    report: BatchReport,
    tick: Callable[[int], None],
) -> Iterator[list[Note]]:
    """Chunks of the notes still to code; bad rows go to the errors file as they are met."""
    seen: dict[str, int] = {}
    size = opts.chunk
    chunk: list[Note] = []
    for item in rows:
        report.read += 1
        if isinstance(item, Note) and item.id in seen:
            item = BadRow(item.id, item.line, "duplicate id")
        if isinstance(item, BadRow):
            if (item.id, item.line) not in reported:
                errors.write_lines([dumps_row(item.as_json())])
                report.bad += 1
            tick(1)
            continue
        seen[item.id] = item.line
        if item.id in done:
            report.skipped += 1
            tick(1)
            continue
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_local(opts: BatchOptions, engine: Engine | None = None) -> BatchReport:
    """Code every note of ``opts.input`` not already in ``opts.output``; see the module doc."""
    from tqdm import tqdm

    from clinicode.engine import load

    opts.checked()
    assert opts.input_format is not None
    rows = read_notes(
        opts.input, opts.input_format, opts.id_column, opts.text_column, opts.max_chars
    )
    out = _Output(opts)
    errors = JsonlAppender(opts.errors_path)
    done = out.done_ids()
    reported = {(r.get("id"), r.get("line")) for r in errors.done(key="error")}
    engine = engine if engine is not None else load(opts.model, kb_path=opts.kb)
    report = BatchReport(engine="local", extra={"workers": opts.workers})
    total = count_rows(opts.input, opts.input_format)
    bar = tqdm(
        total=total,
        unit=" notes",
        file=sys.stderr,
        disable=(not sys.stderr.isatty()) if opts.progress is None else not opts.progress,
        dynamic_ncols=True,
        smoothing=0.05,
    )
    t0 = time.perf_counter()
    in_flight: deque[Future[list[Coded]]] = deque()
    depth = 2 * opts.workers

    def finish(block: bool) -> None:
        """Write the rows of the finished chunks at the head (wait for the first if ``block``)."""
        lines: list[str] = []
        while in_flight and (in_flight[0].done() or (block and not lines)):
            coded = in_flight.popleft().result()
            lines.extend(line for line, _ in coded)
            failed = sum(1 for _, ok in coded if not ok)
            report.failed += failed
            report.coded += len(coded) - failed
        out.write(lines)
        bar.update(len(lines))

    coders = None
    try:
        coders = Coders(engine, opts.workers, opts.setting, opts.systems)
        for chunk in _chunks(rows, opts, done, reported, errors, report, bar.update):
            in_flight.append(coders.submit(chunk))
            finish(block=len(in_flight) >= depth)
        while in_flight:
            finish(block=True)
        out.close()
    finally:
        bar.close()
        if coders is not None:
            coders.close()
        engine.close()
    report.seconds = time.perf_counter() - t0
    return report
