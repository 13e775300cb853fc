"""The default pack keeps its synthetic notes' training rows (``models.pack.TrainingRows``), and
``train --base`` reuses them only when they were built from what it would build them from now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clinicode.models import pack as pack_mod
from clinicode.training import default_pack
from clinicode.training.rows import Rows
from clinicode.training.train import TrainConfig, add_base_knowledge, synthetic_base_rows
from tests.training.tiny_pack import build_tiny_pack


def _rows(source: dict[str, Any]) -> pack_mod.TrainingRows:
    return pack_mod.TrainingRows(
        # a feature present with value 0 is kept apart from an absent one (the ranker's feature
        # list is the union of the features rows have); ints and bools read back as floats
        feats=[{"lex_max": 0.25, "exact": 0.0}, {}, {"exact": 1, "flag": True}, {"lex_max": 1e-9}],
        keys=["ICD-10-CM:E11.9", "ICD-10-CM:I10", "ICD-10-CM:J18.9", "ICD-10-CM:I10"],
        y=[1, 0, 1, 0],
        groups=[0, 0, 1, 2],
        source=source,
    )


def test_training_rows_round_trip_through_the_pack(kb: Any, tmp_path: Path) -> None:
    build_tiny_pack(kb, tmp_path / "tiny")
    pack = pack_mod.load(tmp_path / "tiny", kb=kb)
    assert pack.training_rows is None
    pack.training_rows = _rows({"notes": 3, "kb_content": "abc"})
    pack_mod.save(pack, tmp_path / "with-rows")
    manifest = json.loads((tmp_path / "with-rows" / "manifest.json").read_text())
    assert pack_mod.TRAINING_ROWS in manifest["files"]
    assert manifest["components"]["training_rows"] is True
    assert pack_mod.load(tmp_path / "with-rows", kb=kb).training_rows is None  # serving: not read
    back = pack_mod.load(tmp_path / "with-rows", kb=kb, training_rows=True).training_rows
    assert back is not None
    assert back.feats == [
        {"lex_max": 0.25, "exact": 0.0},
        {},
        {"exact": 1.0, "flag": 1.0},
        {"lex_max": 1e-9},
    ]
    assert (back.keys, back.y, back.groups) == (pack.training_rows.keys, [1, 0, 1, 0], [0, 0, 1, 2])
    assert back.source == {"notes": 3, "kb_content": "abc"}
    with (tmp_path / "with-rows" / pack_mod.TRAINING_ROWS).open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(pack_mod.PackError, match="does not match its hash"):
        pack_mod.load(tmp_path / "with-rows", kb=kb, training_rows=True)


class _Base:
    """What ``add_base_knowledge`` reads of a default pack."""

    def __init__(self, rows: pack_mod.TrainingRows | None) -> None:
        self.config = {"synthetic_notes": 3, "seed": default_pack.SEED}
        self.data_fingerprint = "synthetic:sha256:0"
        self.training_rows = rows


def test_retrain_reuses_the_kept_rows_of_the_same_sources(kb: Any) -> None:
    cfg = TrainConfig(generators=())
    source = default_pack.retrain_rows_source(kb, 3, default_pack.SEED, cfg.max_generated)
    base: Any = _Base(_rows(source))
    logged: list[str] = []
    new = Rows(feats=[{"a": 1.0}], keys=["ICD-10-CM:R50.9"], y=[1], groups=[0])
    out = add_base_knowledge(new, base, kb, None, cfg, False, logged.append)
    assert "kept in the base pack" in logged[0]
    assert out.keys[1:] == base.training_rows.keys and out.feats[1:] == base.training_rows.feats
    assert out.groups == [0, 1, 1, 2, 3]  # after the new notes' groups
    assert out.base_rows == 4
    # fewer notes asked for: the first ones (the same notes, written with the same seed)
    few, how = synthetic_base_rows(base, kb, None, 2, cfg, False)
    assert how == "kept in the base pack"
    assert (few.groups, few.y) == ([0, 0, 1], [1, 0, 1])


@pytest.mark.parametrize(
    "change", [{"kb_content": "another KB"}, {"nlp_resources": "x"}, {"builder": 1}, {"seed": 7}]
)
def test_rows_built_from_other_sources_are_built_again(
    kb: Any, change: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinicode.training import train

    cfg = TrainConfig(generators=())
    source = default_pack.retrain_rows_source(kb, 3, default_pack.SEED, cfg.max_generated)
    written: list[int] = []

    def mentions(texts: list[str], *_a: Any) -> list[list[Any]]:
        written.append(len(texts))
        return [[] for _ in texts]

    monkeypatch.setattr(train, "extract_mentions", mentions)
    base: Any = _Base(_rows({**source, **change}))
    _, how = synthetic_base_rows(base, kb, None, 3, cfg, False)
    assert how.startswith("written and read again") and written == [3]
    # more notes than the pack keeps, or another candidate cap: built again too
    base = _Base(_rows(source))
    assert synthetic_base_rows(base, kb, None, 4, cfg, False)[1].startswith("written")
    other_cap = TrainConfig(generators=(), max_generated=50)
    assert synthetic_base_rows(base, kb, None, 3, other_cap, False)[1].startswith("written")


@pytest.mark.slow
def test_kept_rows_are_the_rows_a_retrain_would_build(kb: Any, tmp_path: Path) -> None:
    """Same rows, same ranker: the builder's kept rows (its in-memory candidate index) equal the
    rows ``train --base`` builds from the saved pack's index when it has none."""
    default_pack.build_default_pack(
        kb, tmp_path / "default", n_notes=24, generators=("lexical",), progress=False
    )
    base = pack_mod.load(tmp_path / "default", kb=kb, training_rows=True)
    cfg = TrainConfig(generators=())
    kept, how = synthetic_base_rows(base, kb, base.candidates, 24, cfg, False)
    assert how == "kept in the base pack" and kept.y and sum(kept.y) > 0
    base.training_rows = None
    built, how = synthetic_base_rows(base, kb, base.candidates, 24, cfg, False)
    assert how.startswith("written and read again")
    assert (kept.feats, kept.keys, kept.y, kept.groups) == (
        built.feats,
        built.keys,
        built.y,
        built.groups,
    )
