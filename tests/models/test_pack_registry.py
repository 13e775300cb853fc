"""The packs of a data dir: list, show, promote (verified), rollback, and which pack serves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.training.tiny_pack import build_tiny_pack


@pytest.fixture(scope="module")
def tiny_pack(kb: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "tiny"
    build_tiny_pack(kb, out)
    return out


@pytest.fixture
def settings(tmp_path: Path, tiny_pack: Path, kb_path: Path) -> Any:
    from clinicode.settings import Settings

    s = Settings(data_dir=tmp_path / "data")
    s.packs_dir.mkdir(parents=True)
    (s.data_dir / "kb.sqlite").symlink_to(kb_path)
    for name in ("default", "a", "b"):
        shutil.copytree(tiny_pack, s.packs_dir / name)
    (s.packs_dir / "not-a-pack").mkdir()
    return s


def test_list_show_and_serving_dir(settings: Any, tmp_path: Path) -> None:
    from clinicode.models import pack_registry as reg

    assert [p.name for p in reg.list_packs(settings)] == ["a", "b", "default"]
    shown = reg.get_pack(settings, "a").summary()
    assert shown["version"].startswith("tiny-") and shown["parent"] is None
    assert shown["training_data"]["notes"] == 12 and "train_oof" in shown["figures"]
    assert reg.serving_pack_dir(settings) == settings.packs_dir / "default"
    with pytest.raises(Exception, match="no pack named 'zzz'"):
        reg.get_pack(settings, "zzz")
    with pytest.raises(Exception, match="not a pack name"):
        reg.get_pack(settings, "../a")
    pinned = settings.model_copy(update={"model_dir": tmp_path / "elsewhere"})
    assert reg.serving_pack_dir(pinned) == tmp_path / "elsewhere"


def test_promote_and_rollback_keep_a_history(settings: Any, kb: Any) -> None:
    from clinicode.models import pack_registry as reg

    assert reg.pointer_stamp(settings) is None
    reg.promote(settings, "a", kb=kb)
    reg.promote(settings, "b", kb=kb)
    assert reg.serving_pack_dir(settings) == settings.packs_dir / "b"
    assert reg.rollback(settings)["pack"] == "a"
    assert reg.current_name(settings) == "a"
    assert reg.rollback(settings)["pack"] == "default"  # one further back, not back to b
    with pytest.raises(Exception, match="no earlier pack"):
        reg.rollback(settings)
    history = json.loads(reg.pointer_path(settings).read_text())["history"]
    assert [(h["pack"], h["action"]) for h in history] == [
        ("default", "initial"),
        ("a", "promote"),
        ("b", "promote"),
        ("a", "rollback"),
        ("default", "rollback"),
    ]


def test_a_damaged_pack_is_not_promoted(settings: Any, kb: Any) -> None:
    from clinicode.models import pack_registry as reg

    (settings.packs_dir / "b" / "prior.json").write_text("{}")
    with pytest.raises(Exception, match=r"cannot be promoted.*does not match its hash"):
        reg.promote(settings, "b", kb=kb)
    assert reg.current_name(settings) == "default"


def test_packs_cli(settings: Any, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINICODE_DATA_DIR", str(settings.data_dir))
    code, out, _ = run_cli("packs", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["name"], r["serving"]) for r in rows] == [
        ("a", False),
        ("b", False),
        ("default", True),
    ]
    code, out, err = run_cli("packs", "promote", "nope")
    assert code == 2 and "no pack named 'nope'" in err
    code, out, _ = run_cli("packs", "promote", "a")
    assert code == 0 and "promoted a" in out
    code, out, _ = run_cli("packs", "show", "a")
    assert code == 0 and json.loads(out)["serving"] is True
    code, out, _ = run_cli("packs", "rollback")
    assert code == 0 and "rolled back to default" in out
