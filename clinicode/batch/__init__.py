"""Batch coding: a file of notes in, one row per note out, on one machine or on Apache Spark.

``run_local`` codes the notes in the process that loaded the engine and in worker processes
forked from it (:mod:`clinicode.batch.coders`);
``run_spark`` (``clinicode[spark]``) runs the same per-note engine in a PySpark job. Both write
the rows of :mod:`clinicode.batch.rows`. Importing this package does no I/O and imports
neither pandas nor pyspark.
"""

from __future__ import annotations

from clinicode.batch.local import run_local
from clinicode.batch.options import BatchOptions, BatchReport

__all__ = ["BatchOptions", "BatchReport", "run_local"]
