"""The packs of a data dir and which one serves: ``clinicode packs list|show|promote|rollback``.

Every folder under ``Settings.packs_dir`` holding a ``manifest.json`` is a pack, named by its
folder. Which pack serves is recorded in ``packs_dir/promoted.json``: ``{"current": NAME,
"history": [{"pack", "version", "action", "at"}, ...]}``, written atomically (a temporary file
renamed over it) under a lock, so a server reading it never sees half a file. With no pointer
the ``default`` pack serves; ``CLINICODE_MODEL_DIR`` still wins over the pointer when set.

``rollback`` makes the pack that served before the current one serve again (the history is
kept, the rollback is one more entry). A running server switches by itself: each worker checks
the pointer's stamp every few seconds (:mod:`clinicode.serve.pack_watch`) and loads the new
pack in the background while the old one keeps serving.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clinicode.errors import InputError
from clinicode.settings import Settings

POINTER = "promoted.json"
DEFAULT_PACK = "default"


@dataclass(frozen=True)
class PackEntry:
    """One pack of the data dir, as its manifest describes it."""

    name: str
    path: Path
    manifest: dict[str, Any]
    report: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "?"))

    @property
    def parent(self) -> dict[str, Any] | None:
        parent = (self.manifest.get("lineage") or {}).get("parent")
        return parent if isinstance(parent, dict) else None

    def summary(self) -> dict[str, Any]:
        """What ``packs list`` / ``packs show`` print: version, parent, data, figures."""
        lineage = self.manifest.get("lineage") or {}
        parent = self.parent
        metrics = self.manifest.get("metrics") or {}
        figures = {
            k: {m: v[m] for m in ("map", "micro_f1", "micro_precision", "micro_recall") if m in v}
            for k, v in metrics.items()
            if isinstance(v, dict)
        }
        return {
            "name": self.name,
            "version": self.version,
            "created_at": self.manifest.get("created_at"),
            "code_sets": self.manifest.get("code_sets") or {},
            "threshold": self.manifest.get("threshold"),
            "parent": None
            if parent is None
            else {k: parent.get(k) for k in ("name", "version", "manifest_sha256")},
            "training_data": lineage.get("training_data")
            or {"fingerprint": self.manifest.get("training_data")},
            "figures": figures,
            "notes_trained_on": self.report.get("notes"),
        }


def pointer_path(settings: Settings) -> Path:
    return settings.packs_dir / POINTER


def list_packs(settings: Settings) -> list[PackEntry]:
    """Every pack folder under the data dir's packs folder, by name."""
    root = settings.packs_dir
    if not root.is_dir():
        return []
    return [
        entry for d in sorted(root.iterdir()) if d.is_dir() and (entry := _entry(d)) is not None
    ]


def _entry(d: Path) -> PackEntry | None:
    try:
        manifest = json.loads((d / "manifest.json").read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    try:
        report = json.loads((d / "report.json").read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        report = {}
    return PackEntry(d.name, d, manifest, report if isinstance(report, dict) else {})


def get_pack(settings: Settings, name: str) -> PackEntry:
    """The pack named ``name`` (its folder under the packs folder); InputError if none."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InputError(f"{name!r} is not a pack name: give the folder name under the packs dir")
    entry = _entry(settings.packs_dir / name)
    if entry is None:
        known = ", ".join(p.name for p in list_packs(settings)) or "none"
        raise InputError(f"no pack named {name!r} in {settings.packs_dir} (packs: {known})")
    return entry


def read_pointer(settings: Settings) -> dict[str, Any]:
    """The pointer file's content (``{"current": None, "history": []}`` when absent)."""
    path = pointer_path(settings)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {"current": None, "history": []}
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} cannot be read ({exc}); promote a pack again") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a pack pointer; promote a pack again")
    data.setdefault("history", [])
    return data


def current_name(settings: Settings) -> str:
    """The name of the pack that serves (the promoted one, else ``default``)."""
    try:
        return str(read_pointer(settings).get("current") or DEFAULT_PACK)
    except InputError:
        return DEFAULT_PACK


def serving_pack_dir(settings: Settings) -> Path:
    """The folder of the pack the service loads: ``CLINICODE_MODEL_DIR`` when set, else the
    promoted pack, else the default pack."""
    if settings.model_dir is not None:
        return settings.model_dir
    name = current_name(settings)
    if name != DEFAULT_PACK and (settings.packs_dir / name / "manifest.json").is_file():
        return settings.packs_dir / name
    return settings.default_pack_dir


def pointer_stamp(settings: Settings) -> tuple[int, int, int] | None:
    """A cheap change marker of the pointer file (inode, mtime, size), None when absent."""
    try:
        st = os.stat(pointer_path(settings))
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[dict[str, Any]]:
    settings.packs_dir.mkdir(parents=True, exist_ok=True)
    lock = settings.packs_dir / (POINTER + ".lock")
    with open(lock, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            data = read_pointer(settings)
            yield data
            path = pointer_path(settings)
            tmp = path.with_name(f"{POINTER}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True), "utf-8")
            os.replace(tmp, path)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _history_entry(entry: PackEntry, action: str) -> dict[str, Any]:
    return {
        "pack": entry.name,
        "version": entry.version,
        "action": action,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def promote(settings: Settings, name: str, *, kb: Any = None) -> dict[str, Any]:
    """Make pack ``name`` the one that serves; the pack is verified first (hashes, signature,
    and the code sets of ``kb`` when given). Returns the new history entry."""
    from clinicode.models import pack as pack_mod

    entry = get_pack(settings, name)
    try:
        pack_mod.verify(entry.path, code_sets=kb.versions() if kb is not None else None)
    except pack_mod.PackError as exc:
        raise InputError(f"pack {name!r} cannot be promoted: {exc}") from None
    with _locked(settings) as data:
        if not data.get("history"):  # record what served before the first promotion
            before = _entry(settings.default_pack_dir)
            if before is not None and before.name != name:
                data["history"].append(_history_entry(before, "initial"))
        row = _history_entry(entry, "promote")
        data["current"] = entry.name
        data["history"].append(row)
    return row


def _serving_stack(history: list[dict[str, Any]]) -> list[str]:
    """The packs that served, oldest first, as the history leaves them: a promotion pushes
    its pack, a rollback pops the current one."""
    stack: list[str] = []
    for h in history:
        if h.get("action") == "rollback":
            while len(stack) > 1 and stack[-1] != h.get("pack"):
                stack.pop()
        else:
            stack.append(str(h.get("pack")))
    return stack


def rollback(settings: Settings) -> dict[str, Any]:
    """Serve again the pack that served before the current one (a second rollback goes one
    further back)."""
    with _locked(settings) as data:
        history = data.get("history") or []
        stack = _serving_stack(history)
        current = data.get("current") or DEFAULT_PACK
        while stack and stack[-1] == current:
            stack.pop()
        if not stack:
            raise InputError("no earlier pack to roll back to: promote one first")
        entry = get_pack(settings, stack[-1])
        row = _history_entry(entry, "rollback")
        data["current"] = entry.name
        history.append(row)
        data["history"] = history
    return row
