"""``clinicode batch --engine spark`` in local mode: the one-machine path's rows, byte for byte;
the engine loaded once per Python worker, not per task or batch; resumable."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from clinicode.batch import BatchOptions, run_local
from clinicode.batch.rows import normalize_row
from tests.batch.notes import clinical_notes, read_jsonl, write_jsonl, write_parquet
from tests.conftest import installed_default_pack, shared_path

pytestmark = pytest.mark.slow

BAD_ROWS = (
    b'{"id": "empty", "text": "   "}\n'
    b'{"id": "big", "text": "' + b"y" * 3000 + b'"}\n'
    b'{"id": "latin1", "text": "caf\xe9 au lait"}\n'
    b'{"text": "no id"}\n'
    b"not json\n"
    b'{"id": "note-0003", "text": "a second note-0003"}\n'
)


def _opts(inp: Path, out: Path, pack: Path, kb: Path, **kw: Any) -> BatchOptions:
    return BatchOptions(input=inp, output=out, model=pack, kb=kb, progress=False, **kw)


def _spark_lines(folder: Path) -> list[str]:
    return sorted(
        line for part in folder.glob("part-*") for line in part.read_text("utf-8").splitlines()
    )


def _errors(path: Path) -> Counter[tuple[Any, Any]]:
    files = sorted(path.glob("part-*")) if path.is_dir() else [path]
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    return Counter((r["id"], r["error"]) for r in rows)


def test_300_notes_same_rows_as_one_machine(
    spark: Any, engine: Any, tiny_pack: Path, kb_path: Path, tmp_path: Path
) -> None:
    from clinicode.batch.spark import run_spark

    inp = write_jsonl(tmp_path / "in.jsonl", clinical_notes(300), BAD_ROWS)
    local_out = tmp_path / "local.jsonl"
    run_local(_opts(inp, local_out, tiny_pack, kb_path, max_chars=2000), engine=engine)
    out = tmp_path / "spark.jsonl"
    report = run_spark(
        _opts(inp, out, tiny_pack, kb_path, max_chars=2000, chunk=16), partitions=6, spark=spark
    )
    assert out.is_dir()
    assert _spark_lines(out) == sorted(local_out.read_text("utf-8").splitlines())
    assert _errors(tmp_path / "spark.errors") == _errors(tmp_path / "local.errors.jsonl")
    assert report.coded == 300 and report.bad == 6
    # six tasks of several batches each; at most one engine load per Python worker (2 cores)
    assert report.extra["spark_tasks"] == 6
    assert int(report.extra["engine_loads"]) <= 2


def test_parquet_output_resumes_and_matches(
    spark: Any, engine: Any, tiny_pack: Path, kb_path: Path, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from clinicode.batch.spark import run_spark

    notes = clinical_notes(60)
    ref = tmp_path / "ref.jsonl"
    run_local(
        _opts(write_jsonl(tmp_path / "in.jsonl", notes), ref, tiny_pack, kb_path), engine=engine
    )
    cols = {"id_column": "nid", "text_column": "note"}
    first = write_parquet(tmp_path / "first.parquet", notes[:25], "nid", "note")
    full = write_parquet(tmp_path / "full.parquet", notes, "nid", "note")
    out = tmp_path / "out.parquet"
    a = run_spark(_opts(first, out, tiny_pack, kb_path, **cols), partitions=2, spark=spark)
    b = run_spark(_opts(full, out, tiny_pack, kb_path, **cols), partitions=2, spark=spark)
    c = run_spark(_opts(full, out, tiny_pack, kb_path, **cols), partitions=2, spark=spark)
    assert (a.coded, b.coded, c.coded) == (25, 35, 0)
    rows = [normalize_row(r) for r in pq.read_table(out).to_pylist()]
    assert sorted(rows, key=lambda r: r["id"]) == read_jsonl(ref)


def test_ship_pack_sends_pack_and_kb_with_sparkfiles(
    spark: Any, engine: Any, tiny_pack: Path, kb_path: Path, tmp_path: Path
) -> None:
    from clinicode.batch.spark import run_spark

    inp = write_jsonl(tmp_path / "in.jsonl", clinical_notes(12))
    local_out = tmp_path / "local.jsonl"
    run_local(_opts(inp, local_out, tiny_pack, kb_path), engine=engine)
    out = tmp_path / "spark.jsonl"
    run_spark(_opts(inp, out, tiny_pack, kb_path), partitions=2, ship_pack=True, spark=spark)
    assert _spark_lines(out) == sorted(local_out.read_text("utf-8").splitlines())


@pytest.mark.shared
def test_300_codiesp_notes_with_the_default_pack(spark: Any, tmp_path: Path) -> None:
    """The same check with the real default pack on 300 CodiEsp background notes."""
    from clinicode.batch.spark import run_spark

    pack = installed_default_pack()
    kb = pack.parents[1] / "kb.sqlite"
    files = sorted(shared_path("codiesp", "background", "text_files_en").glob("*.txt"))[:300]
    notes = [(f.stem, f.read_text(encoding="utf-8")) for f in files]
    inp = write_jsonl(tmp_path / "in.jsonl", notes)
    local_out = tmp_path / "local.jsonl"
    run_local(_opts(inp, local_out, pack, kb, workers=2))
    out = tmp_path / "spark.jsonl"
    report = run_spark(_opts(inp, out, pack, kb), partitions=4, spark=spark)
    assert report.coded == 300
    local_lines = sorted(local_out.read_text("utf-8").splitlines())
    assert sum(1 for line in local_lines if '"codes":[]' not in line) > 200
    assert _spark_lines(out) == local_lines
