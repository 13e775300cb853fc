"""Model packs: one folder with ``manifest.json`` and fixed-name files, one ``save``/``load`` pair.

``manifest.json`` records the package version, the pack format, the code-set versions the pack
was built against, the training-data fingerprint, metrics, the decision threshold and the
SHA-256 of every other file. :func:`load` checks all of that before reading anything, and refuses
a tampered, incomplete or incompatible pack with a message that says what to do. The only pickle
in a pack (the ranker's trees) is read after its hash matched.

Hashes beside the files only catch accidents; a pack can also be *signed*
(``manifest.json.seal``, :mod:`clinicode.integrity`) with a key kept outside the pack folder
(``CLINICODE_PACK_SIGNING_KEY_FILE``): :func:`save` signs when that key is set, :func:`verify`
refuses a pack whose signature does not match it, and with ``CLINICODE_REQUIRE_SIGNED_PACKS=1``
refuses an unsigned pack, so nothing in it, the pickle included, is read unless a holder of the
key made it.
"""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinicode.errors import ClinicodeError
from clinicode.hashing import sha256_file

if TYPE_CHECKING:
    from clinicode.models.candidates import CandidatePipeline
    from clinicode.models.doc_classifier import DocClassifier
    from clinicode.models.types import Ranker

PACK_FORMAT = 1
MANIFEST = "manifest.json"
CONFIG = "config.json"
PRIOR = "prior.json"
REPORT = "report.json"
TRAINING_ROWS = "training_rows.npz"


class PackError(ClinicodeError):
    """A model pack is missing, damaged, tampered with or incompatible."""


@dataclass(frozen=True)
class SigningPolicy:
    """The key packs are signed and checked with (None: none configured), and whether an
    unsigned pack is refused."""

    key: bytes | None = None
    required: bool = False

    @classmethod
    def from_settings(cls) -> SigningPolicy:
        from clinicode.integrity import read_key_file
        from clinicode.settings import get_settings

        s = get_settings()
        path = s.pack_signing_key_file
        key = read_key_file(path) if path is not None else None
        if s.require_signed_packs and key is None:
            raise PackError(
                "CLINICODE_REQUIRE_SIGNED_PACKS is set but no CLINICODE_PACK_SIGNING_KEY_FILE "
                "is: set the key file the packs were signed with"
            )
        return cls(key=key, required=s.require_signed_packs)


def sign(directory: Path | str, key: bytes) -> Path:
    """Sign a saved pack: a seal over its manifest (which lists every file's hash)."""
    from clinicode.integrity import seal

    d = Path(directory)
    read_manifest(d)
    return seal(d / MANIFEST, key)


def check_signature(directory: Path, policy: SigningPolicy) -> None:
    """Refuse a pack whose signature does not match the configured key, or (when required) an
    unsigned one."""
    from clinicode.integrity import seal_path, seal_problem

    signed = seal_path(directory / MANIFEST).exists()
    if policy.key is None:
        return
    if not signed and not policy.required:
        return
    problem = seal_problem(directory / MANIFEST, policy.key)
    if problem is not None:
        raise PackError(
            f"{directory.name}: the pack manifest {problem}; refusing to load the pack (sign "
            "it with `clinicode pack sign DIR` if you trust it, or rebuild it)"
        )


@dataclass
class TrainingRows:
    """Ranker rows a pack was trained on, kept in the pack so that retraining on top of it
    (``clinicode train --base``) reuses them instead of rebuilding them (the default pack's
    synthetic notes: NLP and candidate generation on 800 notes). Per row: its features, code
    key, label and note index (``groups``, 0.. in note order). ``source`` records what they were
    built from (KB content, NLP rules, builder, notes, seed ...): a reader compares it with what
    it would build now and rebuilds them when anything differs."""

    feats: list[dict[str, float]]
    keys: list[str]
    y: list[int]
    groups: list[int]
    source: dict[str, Any]

    def save(self, directory: Path) -> Path:
        """One compressed ``.npz`` (no pickle): the features as a sparse row table that keeps
        which features each row has, not only their values."""
        import numpy as np

        columns = sorted({n for f in self.feats for n in f})
        col = {n: i for i, n in enumerate(columns)}
        indptr = np.zeros(len(self.feats) + 1, dtype=np.int64)
        indices: list[int] = []
        data: list[float] = []
        for i, f in enumerate(self.feats):
            indices.extend(col[n] for n in f)
            data.extend(float(v) for v in f.values())
            indptr[i + 1] = len(indices)
        path = directory / TRAINING_ROWS
        with path.open("wb") as fh:
            np.savez_compressed(
                fh,
                columns=np.asarray(columns, dtype=str),
                indptr=indptr,
                indices=np.asarray(indices, dtype=np.int32),
                data=np.asarray(data, dtype=np.float64),
                keys=np.asarray(self.keys, dtype=str),
                y=np.asarray(self.y, dtype=np.int8),
                groups=np.asarray(self.groups, dtype=np.int64),
                source=np.asarray(json.dumps(self.source, sort_keys=True)),
            )
        return path

    @classmethod
    def load(cls, path: Path) -> TrainingRows:
        import numpy as np

        with np.load(path, allow_pickle=False) as z:
            columns = z["columns"].tolist()
            indptr, indices, data = z["indptr"].tolist(), z["indices"].tolist(), z["data"].tolist()
            keys, y, groups = z["keys"].tolist(), z["y"].tolist(), z["groups"].tolist()
            source = json.loads(str(z["source"]))
        names = [columns[j] for j in indices]
        feats = [
            dict(zip(names[a:b], data[a:b], strict=True)) for a, b in itertools.pairwise(indptr)
        ]
        return cls(feats=feats, keys=keys, y=y, groups=groups, source=source)


@dataclass
class ModelPack:
    """Everything the engine needs, in memory."""

    name: str
    version: str
    config: dict[str, Any]
    ranker: Ranker
    prior: dict[str, float]
    threshold: float
    doc: DocClassifier | None = None  # None in the default pack
    candidates: CandidatePipeline | None = None
    code_sets: dict[str, str] = field(default_factory=dict)
    data_fingerprint: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    # where the pack comes from (``training.train.lineage``): its parent pack and the data
    # added on top of it; empty for a pack trained from scratch before lineage was recorded
    lineage: dict[str, Any] = field(default_factory=dict)
    # the rows of the pack's own training notes a retrain reuses (the default pack's); read
    # only when asked (``load(..., training_rows=True)``): serving never needs them
    training_rows: TrainingRows | None = None


def _package_version() -> str:
    from clinicode import __version__

    return __version__


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def save(
    pack: ModelPack,
    directory: Path | str,
    *,
    overwrite: bool = True,
    signing: SigningPolicy | None = None,
) -> Path:
    """Write ``pack`` to ``directory`` (atomically: a temporary folder renamed into place),
    signed when a signing key is configured (``signing``, default from the settings)."""
    target = Path(directory)
    tmp = target.with_name(target.name + ".tmp-pack")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        (tmp / CONFIG).write_text(json.dumps(pack.config, indent=2, sort_keys=True), "utf-8")
        (tmp / PRIOR).write_text(json.dumps(pack.prior, sort_keys=True), "utf-8")
        (tmp / REPORT).write_text(json.dumps(pack.report, indent=2, sort_keys=True), "utf-8")
        pack.ranker.save(tmp)
        if pack.doc is not None:
            pack.doc.save(tmp)
        if pack.candidates is not None:
            pack.candidates.save(tmp)
        if pack.training_rows is not None:
            pack.training_rows.save(tmp)
        files = {
            p.name: sha256_file(p)
            for p in sorted(tmp.iterdir())
            if p.is_file() and p.name != MANIFEST
        }
        manifest = {
            "name": pack.name,
            "version": pack.version,
            "pack_format": PACK_FORMAT,
            "clinicode_version": _package_version(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_sets": pack.code_sets,
            "training_data": pack.data_fingerprint,
            "threshold": pack.threshold,
            "metrics": pack.metrics,
            "lineage": pack.lineage,
            "components": {
                "ranker": pack.ranker.registry_name,
                "doc_classifier": pack.doc is not None,
                "candidates": pack.candidates is not None,
                "training_rows": pack.training_rows is not None,
            },
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), "utf-8")
        policy = signing or SigningPolicy.from_settings()
        if policy.key is not None:
            sign(tmp, policy.key)
        if target.exists():
            if not overwrite:
                raise PackError(f"{target} already exists")
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pack.manifest = manifest
    return target


def read_manifest(directory: Path | str) -> dict[str, Any]:
    d = Path(directory)
    path = d / MANIFEST
    if not d.is_dir():
        raise PackError(f"no model pack at {d}; run `clinicode setup` (or `make install`) first")
    if not path.is_file():
        raise PackError(
            f"{d} is not a model pack (no {MANIFEST}); build one with `clinicode train`"
        )
    try:
        manifest: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise PackError(f"{path} is not valid JSON ({exc.msg}); rebuild the pack") from None
    return manifest


def verify(
    directory: Path | str,
    *,
    code_sets: dict[str, str] | None = None,
    signing: SigningPolicy | None = None,
) -> dict[str, Any]:
    """Check the signature (``signing``, default from the settings), versions and every file
    hash; returns the manifest or raises :class:`PackError`."""
    d = Path(directory)
    manifest = read_manifest(d)
    check_signature(d, signing or SigningPolicy.from_settings())
    if manifest.get("pack_format") != PACK_FORMAT:
        raise PackError(
            f"{d}: pack format {manifest.get('pack_format')} is not supported by this clinicode "
            f"(expects {PACK_FORMAT}); rebuild it with `clinicode train` or `clinicode setup`"
        )
    built_with = str(manifest.get("clinicode_version", "?"))
    if _major_minor(built_with) != _major_minor(_package_version()):
        raise PackError(
            f"{d}: built with clinicode {built_with}, this is {_package_version()}; "
            "rebuild the pack with this version"
        )
    if code_sets is not None:
        for system, version in (manifest.get("code_sets") or {}).items():
            have = code_sets.get(system)
            if have is not None and have != version:
                raise PackError(
                    f"{d}: built for {system} {version} but the knowledge base holds {have}; "
                    "retrain the pack (or import the matching code set)"
                )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise PackError(f"{d}: manifest lists no files; the pack is damaged")
    for name, digest in files.items():
        p = d / name
        if "/" in name or "\\" in name or not p.is_file():
            raise PackError(f"{d}: file {name} is missing; the pack is incomplete, rebuild it")
        if sha256_file(p) != digest:
            raise PackError(
                f"{d}: file {name} does not match its hash in the manifest; the pack was "
                "modified or damaged, refusing to load it"
            )
    return manifest


def load(
    directory: Path | str,
    *,
    kb: Any = None,
    signing: SigningPolicy | None = None,
    training_rows: bool = False,
) -> ModelPack:
    """Verify and read a pack (``kb`` gives the code-set versions to check and the structure
    generator its code set; ``training_rows``: also read the training rows it keeps, for a
    retrain on top of it)."""
    from clinicode.models import registry

    d = Path(directory)
    versions = kb.versions() if kb is not None else None
    manifest = verify(d, code_sets=versions, signing=signing)
    config = json.loads((d / CONFIG).read_text("utf-8"))
    prior = json.loads((d / PRIOR).read_text("utf-8"))
    report = json.loads((d / REPORT).read_text("utf-8")) if (d / REPORT).is_file() else {}
    ranker_name = manifest.get("components", {}).get("ranker", "gbdt")
    try:
        ranker_cls = registry.get("ranker", ranker_name)
    except registry.RegistryError as exc:
        raise PackError(f"{d}: {exc}; this pack needs a plug-in that is not installed") from None
    ranker = ranker_cls.load(d, trusted=True)
    doc = None
    if manifest.get("components", {}).get("doc_classifier"):
        from clinicode.models.doc_classifier import DocClassifier

        doc = DocClassifier.load(d)
    candidates = None
    if manifest.get("components", {}).get("candidates"):
        from clinicode.models.candidates import CandidatePipeline

        candidates = CandidatePipeline.load(d, kb=kb)
    rows = None
    if training_rows and manifest.get("components", {}).get("training_rows"):
        rows = TrainingRows.load(d / TRAINING_ROWS)
    return ModelPack(
        name=manifest["name"],
        version=manifest["version"],
        config=config,
        ranker=ranker,
        prior=prior,
        threshold=float(manifest["threshold"]),
        doc=doc,
        candidates=candidates,
        code_sets=manifest.get("code_sets") or {},
        data_fingerprint=manifest.get("training_data"),
        metrics=manifest.get("metrics") or {},
        report=report,
        manifest=manifest,
        lineage=manifest.get("lineage") or {},
        training_rows=rows,
    )
