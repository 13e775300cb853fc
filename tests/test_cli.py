"""The `clinicode` command line as a user runs it: real processes, exit codes, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, kb_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "clinicode.cli", *args]
    if kb_path is not None:
        cmd += ["--kb", str(kb_path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_version_json(kb_path: Path) -> None:
    out = run("version", "--json", kb_path=kb_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["code_sets"]["ICD-10-CM"]["version"] == "FY2026"
    assert data["code_sets"]["ICD-10-CM"]["billable"] == 74_719


def test_lookup_json_has_notes_parents_children(kb_path: Path) -> None:
    out = run("codes", "lookup", "e1122", "--json", kb_path=kb_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["code"] == "E11.22" and data["system"] == "ICD-10-CM"
    assert data["version"] == "FY2026"
    assert data["notes"]["use_additional"] == [
        "code to identify stage of chronic kidney disease (N18.1-N18.6)"
    ]
    assert [p["code"] for p in data["parents"]][:2] == ["E11.2", "E11"]
    parent = json.loads(run("codes", "lookup", "E11.2", "--json", kb_path=kb_path).stdout)
    assert "E11.22" in [c["code"] for c in parent["children"]]


def test_search_json_ranked(kb_path: Path) -> None:
    out = run(
        "codes",
        "search",
        "type 2 diabetes chronic kidney disease",
        "--json",
        "--limit",
        "5",
        kb_path=kb_path,
    )
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert hits[0]["code"] == "E11.22"
    assert all(h["version"] for h in hits)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "args",
    [
        ("codes", "lookup", "ZZZ.99"),
        ("codes", "search", "   "),
        ("codes", "lookup", "E11.22", "--system", "NOPE"),
        ("codes", "import", "nonsense-kind", "/nonexistent"),
        ("codes", "frobnicate"),
        ("codes", "search", "x", "--limit", "0"),
    ],
)
def test_bad_arguments_exit_2_without_traceback(kb_path: Path, args: tuple[str, ...]) -> None:
    out = run(*args, kb_path=kb_path)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr + out.stdout
    assert out.stderr.strip()
