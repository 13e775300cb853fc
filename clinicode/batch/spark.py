"""Batch coding as a PySpark job (``clinicode[spark]``): the one-machine path's per-note engine
inside ``mapInPandas``.

The driver reads the notes with Spark's reader, checks every row with the same
:func:`~clinicode.batch.rows.check_note` (bad rows and repeated ids go to the errors folder),
leaves out the ids a previous run wrote, and codes the rest with
:func:`~clinicode.batch.coding.code_notes`. Each output row is the JSON line
:func:`~clinicode.batch.rows.dumps_row` gives, the bytes the one-machine path writes; a Parquet
output parses it with the rows' Spark schema.

The pack and knowledge base are read from a path every executor sees (a shared file system), or
sent once to each executor with ``--ship-pack`` (``SparkFiles``). Each Python worker process loads
the engine once (:func:`worker_engine`, a module-level cache keyed by the pack and KB paths) and
keeps it for every later batch and task (Spark reuses Python workers). The job counts engine
loads and tasks in accumulators and reports them.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinicode.batch.coding import code_notes
from clinicode.batch.options import BatchOptions, BatchReport
from clinicode.batch.rows import SPARK_DDL, BadRow, Note, check_note, dumps_row
from clinicode.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from clinicode.engine import Engine

# The engines of this Python worker process, by (pack path, KB path): loaded once per process.
_ENGINES: dict[tuple[str, str | None], Engine] = {}

CHECKED_DDL = "id STRING, _pos BIGINT, text STRING, error STRING"
CODED_DDL = "id STRING, json STRING"
# Local mode's JVM only moves note text and row JSON for the Python workers that code: the
# quick-start JIT (no C2 compiler) and the serial collector leave the cores to the coders.
_LOCAL_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@dataclass(frozen=True)
class _Job:
    """What every task needs, sent with the task's closure (small: paths, not the pack)."""

    pack: str
    kb: str | None
    shipped: bool
    setting: str
    systems: tuple[str, ...] | None
    chunk: int
    loads: Any  # pyspark Accumulators (int): engine loads, tasks, rows coded and failed
    tasks: Any
    coded: Any
    failed: Any


def spark_available() -> str | None:
    """None when pyspark, pandas and pyarrow import and Java runs; else what is missing."""
    import importlib.util
    import shutil

    for mod in ("pyspark", "pandas", "pyarrow"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install 'clinicode[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").exists()) and not shutil.which("java"):
        return "Java is not installed (Spark needs Java 17 or later)"
    return None


def worker_engine(pack: str, kb: str | None) -> tuple[Engine, bool]:
    """This process's engine for ``pack`` over ``kb``, and whether this call loaded it."""
    key = (pack, kb)
    engine = _ENGINES.get(key)
    if engine is not None:
        return engine, False
    from clinicode.engine import load
    from clinicode.gcpause import freeze_long_lived
    from clinicode.threads import one_thread

    one_thread()  # one Spark task = one core
    engine = load(pack, kb_path=kb)
    engine.warm_up()
    freeze_long_lived()  # a reused Python worker codes partitions until Spark ends it
    _ENGINES[key] = engine
    return engine, True


def _paths(job: _Job) -> tuple[str, str | None]:
    if not job.shipped:
        return job.pack, job.kb
    from pyspark import SparkFiles

    kb = SparkFiles.get(Path(job.kb).name) if job.kb else None
    return SparkFiles.get(Path(job.pack).name), kb


def check_partition(
    max_chars: int, fmt: str, id_col: str, text_col: str, batches: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """``mapInPandas``: each row checked (``error`` set on a bad one); no engine. JSON lines
    arrive as raw bytes (``value``), other formats as id and text bytes, so that bytes that are
    not UTF-8 reach :func:`check_note` as they are."""
    import pandas as pd

    from clinicode.batch.io import parse_json_line

    for pdf in batches:
        out: dict[str, list[Any]] = {"id": [], "text": [], "error": []}
        if fmt == "jsonl":
            checked = [
                parse_json_line(raw, None, id_col, text_col, max_chars) for raw in pdf["value"]
            ]
        else:
            checked = [
                check_note(_decode(i), _none(t), None, max_chars)
                for i, t in zip(pdf["id"], pdf["text"], strict=True)
            ]
        for c in checked:
            out["id"].append(c.id)
            out["text"].append(c.text if isinstance(c, Note) else None)
            out["error"].append(c.error if isinstance(c, BadRow) else None)
        yield pd.DataFrame(
            {"id": out["id"], "_pos": pdf["_pos"], **{k: out[k] for k in ("text", "error")}}
        )


def _none(value: Any) -> Any:
    """pandas' missing values as None."""
    return None if value is None or (isinstance(value, float) and value != value) else value


def _decode(value: Any) -> Any:
    """An id read as bytes, as text (bytes that are not UTF-8 make it a bad row)."""
    value = _none(value)
    return value.decode("utf-8", errors="surrogateescape") if isinstance(value, bytes) else value


def code_partition(job: _Job, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``mapInPandas``: the output rows of a partition's notes, ``job.chunk`` notes a call."""
    import pandas as pd

    pack, kb = _paths(job)
    engine, loaded = worker_engine(pack, kb)
    if loaded:
        job.loads.add(1)
    job.tasks.add(1)
    for pdf in batches:
        notes = [Note(i, t, 0) for i, t in zip(pdf["id"], pdf["text"], strict=True)]
        for start in range(0, len(notes), job.chunk):
            rows = code_notes(engine, notes[start : start + job.chunk], job.setting, job.systems)
            failed = sum(1 for r in rows if not r["ok"])
            job.failed.add(failed)
            job.coded.add(len(rows) - failed)
            yield pd.DataFrame(
                {"id": [r["id"] for r in rows], "json": [dumps_row(r) for r in rows]}
            )


def spark_session(master: str | None, workers: int, progress: bool = False) -> Any:
    """The active session, else a new one: ``master``, else spark-submit's, else local mode
    with ``workers`` cores (few shuffle partitions: a local job's shuffles are small)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("clinicode-batch")
    builder = builder.config("spark.ui.showConsoleProgress", str(progress).lower())
    if master is not None:
        builder = builder.master(master)
    elif "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit: local mode
        builder = builder.master(f"local[{workers}]").config("spark.ui.enabled", "false")
        builder = builder.config("spark.sql.shuffle.partitions", str(max(2, 2 * workers)))
        builder = builder.config("spark.driver.extraJavaOptions", _LOCAL_JVM_OPTIONS)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _read(spark: Any, opts: BatchOptions) -> Any:
    """The input as raw rows: JSON lines as bytes (``value``), else id and text as bytes."""
    from pyspark.sql import functions as F

    path = opts.input_uri
    if opts.input_format == "jsonl":
        df = spark.read.text(path)
        df = df.where(F.trim(F.col("value")) != "").select(F.col("value").cast("binary"))
    else:
        if opts.input_format == "csv":
            reader = spark.read.option("header", True).option("multiLine", True)
            df = reader.option("escape", '"').csv(path)
        else:
            df = spark.read.parquet(path)
        for c in (opts.id_column, opts.text_column):
            if c not in df.columns:
                raise InputError(
                    f"column {c!r} not in {opts.input} (columns: {', '.join(df.columns)}); "
                    "name the columns with --id-column and --text-column"
                )
        df = df.select(
            F.col(opts.id_column).cast("string").cast("binary").alias("id"),
            F.col(opts.text_column).cast("binary").alias("text"),
        )
    return df.withColumn("_pos", F.monotonically_increasing_id())


def _fs_glob(spark: Any, pattern: str) -> bool:
    """Whether any file matches ``pattern`` on the file system of its URI (local, HDFS, S3...)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(pattern)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    found = fs.globStatus(path)
    return found is not None and len(found) > 0


def _done_ids(spark: Any, opts: BatchOptions, errors_uri: str) -> Any | None:
    """The ids an earlier run committed (output and errors), or None on a first run."""
    from pyspark.sql import functions as F

    parts = []
    if _fs_glob(spark, opts.output_uri.rstrip("/") + "/part-*"):
        if opts.output_format == "jsonl":
            out = spark.read.text(opts.output_uri)
            parts.append(out.select(F.get_json_object("value", "$.id").alias("id")))
        else:
            parts.append(spark.read.parquet(opts.output_uri).select("id"))
    if _fs_glob(spark, errors_uri.rstrip("/") + "/part-*"):
        err = spark.read.text(errors_uri)
        parts.append(err.select(F.get_json_object("value", "$.id").alias("id")))
    if not parts:
        return None
    done = parts[0]
    for p in parts[1:]:
        done = done.unionByName(p)
    return done.where(F.col("id").isNotNull()).distinct()


def run_spark(
    opts: BatchOptions,
    *,
    master: str | None = None,
    partitions: int | None = None,
    ship_pack: bool = False,
    spark: Any = None,
) -> BatchReport:
    """Code every note of ``opts.input`` not already in ``opts.output`` (a folder of part
    files, JSON lines or Parquet) with a Spark job; bad rows go to ``<output stem>.errors/``."""
    opts.checked()
    missing = spark_available()
    if missing is not None:
        raise InputError(f"--engine spark needs {missing}")
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from clinicode.engine import _resolve_dir
    from clinicode.kb import default_kb_path

    if "://" not in opts.input_uri and not opts.input.exists():
        raise InputError(f"input not found: {opts.input}")
    pack_dir = _resolve_dir(opts.model).resolve()
    if not (pack_dir / "manifest.json").is_file():
        raise InputError(f"no model pack at {pack_dir}; pass --model DIR")
    kb = (opts.kb or default_kb_path()).resolve()
    stem = opts.output_uri.rstrip("/")
    errors_uri = opts.errors_uri or stem[: len(stem) - len(opts.output.suffix)] + ".errors"
    t0 = time.perf_counter()
    progress = sys.stderr.isatty() if opts.progress is None else opts.progress
    spark = spark or spark_session(master, opts.workers, progress)
    sc = spark.sparkContext
    if ship_pack:
        sc.addFile(str(pack_dir), recursive=True)
        sc.addFile(str(kb))
    job = _Job(
        pack=str(pack_dir),
        kb=str(kb),
        shipped=ship_pack,
        setting=opts.setting,
        systems=opts.systems,
        chunk=opts.chunk,
        loads=sc.accumulator(0),
        tasks=sc.accumulator(0),
        coded=sc.accumulator(0),
        failed=sc.accumulator(0),
    )
    raw = _read(spark, opts)
    assert opts.input_format is not None
    check = partial(
        check_partition, opts.max_chars, opts.input_format, opts.id_column, opts.text_column
    )
    checked = raw.mapInPandas(check, CHECKED_DDL)
    first = Window.partitionBy("id").orderBy("_pos")
    checked = checked.withColumn(
        "error",
        F.when(
            F.col("error").isNull() & (F.row_number().over(first) > 1), F.lit("duplicate id")
        ).otherwise(F.col("error")),
    )
    done = _done_ids(spark, opts, errors_uri)
    if done is not None:
        checked = checked.join(done, on="id", how="left_anti")
    checked = checked.persist(StorageLevel.MEMORY_AND_DISK)  # read and checked once
    bad = checked.where(F.col("error").isNotNull())
    n_bad = _write_errors(bad, errors_uri)
    good = checked.where(F.col("error").isNull()).select("id", "text")
    n = partitions or max(sc.defaultParallelism * 4, good.rdd.getNumPartitions())
    coded = good.repartition(n).mapInPandas(partial(code_partition, job), CODED_DDL)
    if opts.output_format == "jsonl":
        coded.select("json").write.mode("append").text(opts.output_uri)
    else:
        rows = coded.select(F.from_json("json", SPARK_DDL).alias("r")).select("r.*")
        rows.write.mode("append").parquet(opts.output_uri)
    checked.unpersist()
    return BatchReport(
        engine="spark",
        coded=int(job.coded.value),
        failed=int(job.failed.value),
        bad=n_bad,
        seconds=time.perf_counter() - t0,
        extra={
            "master": sc.master,
            "partitions": n,
            "spark_tasks": int(job.tasks.value),
            "engine_loads": int(job.loads.value),
        },
    )


def _write_errors(bad: Any, errors_uri: str) -> int:
    from pyspark.sql import functions as F

    lines = bad.select(
        F.to_json(
            F.struct("id", F.lit(None).cast("long").alias("line"), "error"),
            {"ignoreNullFields": "false"},
        ).alias("v")
    )
    n = int(lines.count())
    if n:
        lines.write.mode("append").text(errors_uri)
    return n
