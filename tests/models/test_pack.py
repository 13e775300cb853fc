"""Model packs: manifest, hashes, versions; tampered or incompatible packs are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from clinicode.models import pack as pack_mod
from tests.training.tiny_pack import build_tiny_pack


@pytest.fixture(scope="module")
def tiny_pack(kb: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "tiny"
    build_tiny_pack(kb, out)
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def test_manifest_records_versions_hashes_and_metrics(tiny_pack: Path, kb: Any) -> None:
    manifest = json.loads((tiny_pack / "manifest.json").read_text())
    assert manifest["code_sets"] == kb.versions()
    assert manifest["training_data"].startswith("sha256:")
    assert 0.0 < manifest["threshold"] < 1.0
    assert "train_oof" in manifest["metrics"]
    files = set(manifest["files"])
    assert {"config.json", "ranker.json", "ranker_trees.pkl", "doc_alpha.npy"} <= files
    loaded = pack_mod.load(tiny_pack, kb=kb)
    assert loaded.version == manifest["version"]
    assert loaded.doc is not None and loaded.candidates is None


def test_tampered_file_is_refused(tiny_pack: Path, kb: Any, tmp_path: Path) -> None:
    p = _copy(tiny_pack, tmp_path)
    with (p / "ranker_trees.pkl").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(pack_mod.PackError, match="does not match its hash"):
        pack_mod.load(p, kb=kb)


def test_missing_file_and_missing_pack(tiny_pack: Path, kb: Any, tmp_path: Path) -> None:
    p = _copy(tiny_pack, tmp_path)
    (p / "doc_alpha.npy").unlink()
    with pytest.raises(pack_mod.PackError, match="missing"):
        pack_mod.load(p, kb=kb)
    with pytest.raises(pack_mod.PackError, match="clinicode setup"):
        pack_mod.load(tmp_path / "nowhere", kb=kb)


def test_incompatible_versions_are_refused(tiny_pack: Path, kb: Any, tmp_path: Path) -> None:
    p = _copy(tiny_pack, tmp_path)
    manifest = json.loads((p / "manifest.json").read_text())
    manifest["code_sets"] = {"ICD-10-CM": "ICD-10-CM FY1999"}
    (p / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(pack_mod.PackError, match="FY1999"):
        pack_mod.load(p, kb=kb)
    manifest = json.loads((tiny_pack / "manifest.json").read_text())
    manifest["clinicode_version"] = "9.9.0"
    (p / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(pack_mod.PackError, match=r"built with clinicode 9\.9\.0"):
        pack_mod.load(p, kb=kb)
    manifest["clinicode_version"] = json.loads((tiny_pack / "manifest.json").read_text())[
        "clinicode_version"
    ]
    manifest["pack_format"] = 99
    (p / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(pack_mod.PackError, match="format 99"):
        pack_mod.load(p, kb=kb)


def test_ranker_is_named_in_the_manifest_and_an_unknown_one_is_refused(
    tiny_pack: Path, kb: Any, tmp_path: Path
) -> None:
    assert json.loads((tiny_pack / "manifest.json").read_text())["components"]["ranker"] == "gbdt"
    p = _copy(tiny_pack, tmp_path)
    manifest = json.loads((p / "manifest.json").read_text())
    manifest["components"]["ranker"] = "from-a-plugin"
    (p / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(pack_mod.PackError, match=r"from-a-plugin.*plug-in"):
        pack_mod.load(p, kb=kb)


# -- issue 13, failure 7: packs signed with a key outside the pack; unsigned ones refusable ----
def _rehash(p: Path, name: str) -> None:
    """What a tamperer who can write the pack does: change a file, fix its manifest hash."""
    from clinicode.hashing import sha256_file

    manifest = json.loads((p / "manifest.json").read_text())
    manifest["files"][name] = sha256_file(p / name)
    (p / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))


def test_signed_packs(tiny_pack: Path, kb: Any, tmp_path: Path, run_cli: Any) -> None:
    p = _copy(tiny_pack, tmp_path)
    key_file = tmp_path / "keys" / "pack.key"
    code, out, err = run_cli("pack", "signing-key", str(key_file))
    assert code == 0 and "written" in out, err
    key = key_file.read_text().strip().encode()
    strict = pack_mod.SigningPolicy(key=key, required=True)
    with pytest.raises(pack_mod.PackError, match="has no seal"):
        pack_mod.load(p, kb=kb, signing=strict)  # unsigned: refused when required
    assert run_cli("pack", "verify", str(p), "--key", str(key_file))[0] == 2
    code, _, err = run_cli("pack", "sign", str(p), "--key", str(key_file))
    assert code == 0, err
    assert pack_mod.load(p, kb=kb, signing=strict).version
    assert run_cli("pack", "verify", str(p), "--key", str(key_file))[0] == 0
    # a rewritten ranker with its hash fixed passes the hashes, not the signature
    with (p / "ranker_trees.pkl").open("ab") as fh:
        fh.write(b"\0")
    _rehash(p, "ranker_trees.pkl")
    pack_mod.verify(p, signing=pack_mod.SigningPolicy())  # no key: the hashes alone pass
    for policy in (strict, pack_mod.SigningPolicy(key=key, required=False)):
        with pytest.raises(pack_mod.PackError, match="modified after it was sealed"):
            pack_mod.load(p, kb=kb, signing=policy)
    other = pack_mod.SigningPolicy(key=b"f" * 64, required=True)
    with pytest.raises(pack_mod.PackError, match="sealed with another key"):
        pack_mod.verify(p, signing=other)


def test_save_signs_with_the_configured_key(
    tiny_pack: Path, kb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinicode.integrity import create_key_file
    from clinicode.settings import get_settings

    key_file = tmp_path / "pack.key"
    create_key_file(key_file)
    monkeypatch.setenv("CLINICODE_REQUIRE_SIGNED_PACKS", "1")
    get_settings.cache_clear()
    try:
        with pytest.raises(pack_mod.PackError, match="no CLINICODE_PACK_SIGNING_KEY_FILE"):
            pack_mod.load(tiny_pack, kb=kb)
        monkeypatch.setenv("CLINICODE_PACK_SIGNING_KEY_FILE", str(key_file))
        get_settings.cache_clear()
        with pytest.raises(pack_mod.PackError, match="has no seal"):
            pack_mod.load(tiny_pack, kb=kb)
        loaded = pack_mod.load(tiny_pack, kb=kb, signing=pack_mod.SigningPolicy())
        out = pack_mod.save(loaded, tmp_path / "resaved")
        assert (out / "manifest.json.seal").is_file()
        assert pack_mod.load(out, kb=kb).version == loaded.version
    finally:
        get_settings.cache_clear()
