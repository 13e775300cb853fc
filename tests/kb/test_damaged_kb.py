"""Issue 13, failure 5 (the command-line side): a damaged knowledge base (emptied, truncated,
overwritten) is named and refused with exit 2, never silently rebuilt over its imported code
sets; ``--force`` keeps the damaged file aside and builds anew."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from clinicode.kb import KBDamaged, build_icd10cm, open_kb
from clinicode.kb.health import kb_file_problem

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def copy(tmp_path: Path, kb_path: Path) -> Path:
    target = tmp_path / "kb.sqlite"
    shutil.copyfile(kb_path, target)
    return target


def _damage(path: Path, how: str) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        os.truncate(path, path.stat().st_size // 3)
    else:
        path.write_bytes(b"not a database at all\n" * 50)


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("empty", "is empty (0 bytes)"),
        ("truncated", "is truncated"),
        ("overwritten", "is not an SQLite database"),
    ],
)
def test_a_damaged_kb_is_named_and_never_rebuilt(
    copy: Path, run_cli: Cli, how: str, problem: str
) -> None:
    assert kb_file_problem(copy) is None
    _damage(copy, how)
    before = copy.read_bytes()
    assert problem in str(kb_file_problem(copy))
    with pytest.raises(KBDamaged, match="not rebuilt silently"):
        open_kb(copy)
    with pytest.raises(KBDamaged):
        build_icd10cm(copy)
    for args in (("setup",), ("codes", "build"), ("codes", "lookup", "E11.9")):
        code, _out, err = run_cli(*args, "--kb", str(copy))
        assert code == 2, (args, code, err)
        text = " ".join(err.split())
        assert "kb.sqlite" in text and problem in text and "setup --force" in text, text
        assert "Traceback" not in err
    assert copy.read_bytes() == before  # untouched


def test_setup_force_keeps_the_damaged_file_aside_and_builds_anew(
    copy: Path, run_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinicode.training import default_pack

    monkeypatch.setattr(default_pack, "ensure_default_pack", lambda **_kw: None)
    _damage(copy, "empty")
    code, out, err = run_cli("setup", "--force", "--kb", str(copy))
    assert code == 0, err
    assert "ICD-10-CM FY2026" in out
    aside = list(copy.parent.glob("kb.sqlite.damaged-*"))
    assert len(aside) == 1 and aside[0].stat().st_size == 0
    assert kb_file_problem(copy) is None
