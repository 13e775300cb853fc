"""Shared fixtures. Tests that need ../shared/data skip with a clear reason where it is absent."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from clinicode.kb import KnowledgeBase

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CLINICODE_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test (a fresh clone has no shared data)."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs {p} (../shared/data is only present in CI and dev machines)")
    return p


def installed_default_pack() -> Path:
    """The default pack ``make test`` builds before the suite (``clinicode setup``), or
    CLINICODE_MODEL_DIR; skips where there is none."""
    env = os.environ.get("CLINICODE_MODEL_DIR")
    pack = Path(env) if env else Path.home() / ".local/share/clinicode/packs/default"
    if not (pack / "manifest.json").exists():
        pytest.skip(f"no model pack at {pack} (run `make setup` or set CLINICODE_MODEL_DIR)")
    return pack


@pytest.fixture(scope="session")
def kb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A knowledge base with ICD-10-CM FY2026 built once per test session."""
    from clinicode.kb import build_icd10cm

    path = tmp_path_factory.mktemp("kb") / "kb.sqlite"
    build_icd10cm(path)
    return path


@pytest.fixture(scope="session")
def kb(kb_path: Path) -> KnowledgeBase:
    from clinicode.kb import open_kb

    return open_kb(kb_path)


@pytest.fixture(autouse=True)
def _isolated_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never touch the user's real data dir from a test, nor the network from `setup`."""
    if "CLINICODE_DATA_DIR" not in os.environ:
        monkeypatch.setenv("CLINICODE_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))
    monkeypatch.setenv("CLINICODE_FETCH_ON_SETUP", "0")


@pytest.fixture
def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """``run_cli("codes", "import", ...)`` runs ``clinicode`` in-process as a user runs it
    (known errors: exit 2 and a message) and returns ``(exit code, stdout, stderr)``."""
    from clinicode.cli import main
    from clinicode.kb import clear_cache
    from clinicode.settings import get_settings

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["clinicode", *args])
        get_settings.cache_clear()
        clear_cache()
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            get_settings.cache_clear()
            clear_cache()
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
