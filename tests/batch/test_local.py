"""``clinicode batch`` on one machine: same results as ``Engine.suggest``, bad rows reported and
skipped, resumable, every format."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from clinicode.batch import BatchOptions, run_local
from clinicode.batch.rows import normalize_row
from tests.batch.notes import clinical_notes, read_jsonl, write_csv, write_jsonl, write_parquet


def _opts(inp: Path, out: Path, pack: Path, kb: Path, **kw: Any) -> BatchOptions:
    return BatchOptions(input=inp, output=out, model=pack, kb=kb, progress=False, **kw)


def _expected(engine: Any, text: str) -> dict[str, Any]:
    """What ``Engine.suggest`` says of a note, in the fields a batch row carries."""
    r = engine.suggest(text)
    return {
        "model": [r.model.name, r.model.version],
        "code_sets": r.code_sets,
        "codes": [
            [s.system, s.code, s.score, s.rank, s.status, [[e.start, e.end] for e in s.evidence]]
            for s in r.codes
        ],
        "warnings": r.warnings,
    }


def _got(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": [row["model"], row["model_version"]],
        "code_sets": row["code_sets"],
        "codes": [
            [
                c["system"],
                c["code"],
                c["score"],
                c["rank"],
                c["status"],
                [[e["start"], e["end"]] for e in c["evidence"]],
            ]
            for c in row["codes"]
        ],
        "warnings": row["warnings"],
    }


@pytest.mark.skipif(sys.platform == "win32", reason="worker processes need fork")
def test_fifty_notes_same_as_engine_suggest(
    engine: Any, tiny_pack: Path, kb_path: Path, tmp_path: Path
) -> None:
    notes = clinical_notes(50)
    inp = write_jsonl(tmp_path / "in.jsonl", notes)
    out = tmp_path / "out.jsonl"
    # two workers, small chunks: several chunks in flight, rows written as chunks finish
    report = run_local(_opts(inp, out, tiny_pack, kb_path, workers=2, chunk=3), engine=engine)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [nid for nid, _ in notes]  # input order, each once
    assert report.coded == 50 and report.bad == 0 and report.failed == 0
    assert any(r["codes"] for r in rows)
    for row, (_, text) in zip(rows, notes, strict=True):
        assert row["ok"] is True and row["error"] is None
        assert _got(row) == _expected(engine, text)
    assert "Visit" not in out.read_text()  # no note text in the output


def test_bad_rows_go_to_the_errors_file(
    engine: Any, tiny_pack: Path, kb_path: Path, tmp_path: Path
) -> None:
    notes = clinical_notes(6)
    extra = (
        b'{"id": "empty", "text": "  \\n "}\n'
        b'{"id": "big", "text": "' + b"x" * 900 + b'"}\n'
        b'{"id": "latin1", "text": "caf\xe9 au lait spots"}\n'
        b'{"text": "no id here"}\n'
        b'{"id": "no-text"}\n'
        b"not json at all\n"
        b"\n"
        b'["a", "list"]\n' + json.dumps({"id": "note-0001", "text": "again"}).encode() + b"\n"
    )
    inp = write_jsonl(tmp_path / "in.jsonl", notes, extra)
    out = tmp_path / "out.jsonl"
    report = run_local(_opts(inp, out, tiny_pack, kb_path, max_chars=500), engine=engine)
    assert [r["id"] for r in read_jsonl(out)] == [nid for nid, _ in notes]
    errors = read_jsonl(tmp_path / "out.errors.jsonl")
    got = [(e["id"], e["line"], e["error"]) for e in errors]
    assert got == [
        ("empty", 7, "empty text"),
        ("big", 8, "text has 900 characters, more than 500"),
        ("latin1", 9, "text is not valid UTF-8"),
        (None, 10, "missing id"),
        ("no-text", 11, "missing text"),
        (None, 12, "not a JSON object"),
        (None, 14, "not a JSON object"),
        ("note-0001", 15, "duplicate id"),
    ]
    assert report.bad == 8 and report.coded == 6
    # a rerun finds nothing to do and reports nothing twice
    again = run_local(_opts(inp, out, tiny_pack, kb_path, max_chars=500), engine=engine)
    assert again.coded == 0 and again.bad == 0 and again.skipped == 6
    assert len(read_jsonl(tmp_path / "out.errors.jsonl")) == 8


def test_rerun_codes_only_what_is_missing_and_drops_a_cut_line(
    engine: Any, tiny_pack: Path, kb_path: Path, tmp_path: Path
) -> None:
    notes = clinical_notes(12)
    out = tmp_path / "out.jsonl"
    run_local(
        _opts(write_jsonl(tmp_path / "a.jsonl", notes[:7]), out, tiny_pack, kb_path), engine=engine
    )
    full = out.read_bytes()
    lines = full.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:5]) + lines[5][:40])  # killed while writing row 6
    inp = write_jsonl(tmp_path / "all.jsonl", notes)
    report = run_local(_opts(inp, out, tiny_pack, kb_path), engine=engine)
    assert report.skipped == 5 and report.coded == 7
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [nid for nid, _ in notes]
    assert out.read_bytes().startswith(full[: len(b"".join(lines[:6]))])


def test_an_output_that_is_not_ours_is_refused(
    engine: Any, tiny_pack: Path, kb_path: Path, tmp_path: Path
) -> None:
    from clinicode.errors import InputError

    out = tmp_path / "out.jsonl"
    out.write_text("hello\n")
    inp = write_jsonl(tmp_path / "in.jsonl", clinical_notes(2))
    with pytest.raises(InputError, match="not a row written by clinicode batch"):
        run_local(_opts(inp, out, tiny_pack, kb_path), engine=engine)
    assert out.read_text() == "hello\n"


def test_csv_and_parquet_in_parquet_out(
    engine: Any, tiny_pack: Path, kb_path: Path, tmp_path: Path
) -> None:
    pytest.importorskip("pyarrow")
    notes = clinical_notes(9)
    ref = tmp_path / "ref.jsonl"
    run_local(
        _opts(write_jsonl(tmp_path / "in.jsonl", notes), ref, tiny_pack, kb_path), engine=engine
    )
    expected = read_jsonl(ref)
    cols = {"id_column": "note_id", "text_column": "body"}
    csv_in = write_csv(tmp_path / "in.csv", notes, "note_id", "body")
    pq_in = write_parquet(tmp_path / "in.parquet", notes, "note_id", "body")
    out_csv = tmp_path / "from_csv.jsonl"
    run_local(_opts(csv_in, out_csv, tiny_pack, kb_path, **cols), engine=engine)
    assert read_jsonl(out_csv) == expected
    out_pq = tmp_path / "out.parquet"
    run_local(_opts(pq_in, out_pq, tiny_pack, kb_path, rows_per_file=4, **cols), engine=engine)
    import pyarrow.parquet as pq

    parts = sorted(p.name for p in out_pq.iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    rows = [normalize_row(r) for r in pq.read_table(out_pq).to_pylist()]
    assert rows == expected
    again = run_local(_opts(pq_in, out_pq, tiny_pack, kb_path, **cols), engine=engine)
    assert again.skipped == 9 and again.coded == 0


def test_a_note_the_engine_fails_on_is_an_error_row(
    engine: Any, tiny_pack: Path, kb_path: Path, tmp_path: Path
) -> None:
    class Flaky:
        """The engine, failing on one note (as a bug would) whichever way it is called."""

        info, code_sets = engine.info, engine.code_sets

        def suggest_many(self, texts: list[str], *a: Any, **kw: Any) -> Any:
            if any("BOOM" in t for t in texts):
                raise RuntimeError("note text BOOM")
            return engine.suggest_many(texts, *a, **kw)

        def suggest(self, text: str, *a: Any, **kw: Any) -> Any:
            return self.suggest_many([text], *a, **kw)[0]

        def warm_up(self) -> None:
            engine.warm_up()

        def close(self) -> None:
            pass

    notes = clinical_notes(5)
    notes[2] = ("boom", "Visit. BOOM. Essential hypertension.")
    out = tmp_path / "out.jsonl"
    report = run_local(
        _opts(write_jsonl(tmp_path / "in.jsonl", notes), out, tiny_pack, kb_path, chunk=5),
        engine=Flaky(),  # type: ignore[arg-type]
    )
    rows = read_jsonl(out)
    assert [r["ok"] for r in rows] == [True, True, False, True, True]
    assert rows[2]["error"] == "engine error: RuntimeError" and rows[2]["codes"] == []
    assert "BOOM" not in out.read_text()
    assert report.failed == 1 and report.coded == 4


def test_cli_errors_exit_2(run_cli: Any, tmp_path: Path) -> None:
    code, _, err = run_cli("batch", str(tmp_path / "missing.jsonl"), str(tmp_path / "o.jsonl"))
    assert code == 2 and "input not found" in err
    inp = write_jsonl(tmp_path / "in.jsonl", clinical_notes(2))
    code, _, err = run_cli("batch", str(inp), str(tmp_path / "out.txt"))
    assert code == 2 and "--output-format" in err
    code, _, err = run_cli("batch", str(inp), str(tmp_path / "o.jsonl"), "--engine", "dask")
    assert code == 2 and "--engine must be local or spark" in err
    code, _, err = run_cli("batch", str(inp), str(tmp_path / "o.jsonl"), "--workers", "0")
    assert code == 2 and "--workers" in err
    csv_in = write_csv(tmp_path / "in.csv", clinical_notes(2), "id", "body")
    code, _, err = run_cli("batch", str(csv_in), str(tmp_path / "o.jsonl"))
    assert code == 2 and "column 'text' not in" in err and "--text-column" in err


def test_spark_engine_without_spark_exits_2(
    run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clinicode.batch.spark as spark_mod

    monkeypatch.setattr(spark_mod, "spark_available", lambda: "Java is not installed (Spark ...)")
    inp = write_jsonl(tmp_path / "in.jsonl", clinical_notes(2))
    code, _, err = run_cli("batch", str(inp), str(tmp_path / "o.jsonl"), "--engine", "spark")
    assert code == 2 and "--engine spark needs Java is not installed" in err
