"""SIGKILL ``clinicode batch`` (and its worker processes) half-way, run it again: every note is in
the output exactly once, none lost, none twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.batch.notes import clinical_notes, write_jsonl

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork are POSIX"),
]


def _complete_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return path.read_bytes().count(b"\n")


def test_killed_half_way_and_rerun_loses_and_repeats_nothing(
    tiny_pack: Path, kb_path: Path, tmp_path: Path
) -> None:
    notes = clinical_notes(240)
    inp = write_jsonl(tmp_path / "in.jsonl", notes, b'{"id": "empty", "text": ""}\n')
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "clinicode.cli", "batch", str(inp), str(out)]
    cmd += ["--model", str(tiny_pack), "--kb", str(kb_path), "--workers", "2", "--chunk", "2"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while _complete_lines(out) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its forked workers
    proc.wait()
    written = _complete_lines(out)
    assert 40 <= written < len(notes), written

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    report = json.loads(again.stdout)
    lines = out.read_text(encoding="utf-8").splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert Counter(ids) == Counter(nid for nid, _ in notes)  # each note once
    assert ids == [nid for nid, _ in notes]  # and in input order
    assert (
        report["skipped_done"] >= written and report["coded"] == len(notes) - report["skipped_done"]
    )
    errors = (tmp_path / "out.errors.jsonl").read_text().splitlines()
    assert [json.loads(e)["id"] for e in errors] == ["empty"]
