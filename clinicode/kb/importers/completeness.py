"""Is an official file complete? Checks the importers run after parsing and before writing, so
a truncated file never replaces a complete import (``--force`` skips them).

* The file's own structure: a text file whose last line has no line end was cut mid-line.
* Coverage: the files are sorted, so a cut file lacks the last ICD-10-PCS sections, HCPCS
  letters or Index letters that every complete file has.
* Known releases: record counts of the CMS releases listed in
  ``clinicode/kb/data/release_counts.json``; fewer records than published is refused.

Each refusal is an :class:`IncompleteFileError` (exit 2) saying what is missing and that
``--force`` imports the file anyway.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from clinicode.kb.importers.common import ImportFileError, SourceFile

FORCE_HINT = "the knowledge base is unchanged; if the file is complete, import it with --force"


class IncompleteFileError(ImportFileError):
    """The file looks truncated or partial; nothing was imported."""


@lru_cache(maxsize=1)
def release_counts() -> dict[str, Any]:
    """The known shape of each kind of official file (``release_counts.json``)."""
    raw = resources.files("clinicode.kb.data").joinpath("release_counts.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


def _refuse(src: SourceFile, what: str) -> IncompleteFileError:
    return IncompleteFileError(f"{src.name} looks truncated: {what}; {FORCE_HINT}")


def check_line_end(src: SourceFile) -> None:
    """A text file must end with a line end: otherwise its last record was cut."""
    data = src.data.rstrip(b" \t\x1a")  # trailing blanks or a DOS end-of-file mark are fine
    if data and not data.endswith((b"\n", b"\r")):
        last = data.rsplit(b"\n", 1)[-1].decode("utf-8", "replace").strip()
        tail = last[-40:]
        raise _refuse(src, f"its last line ends without a line end (…{tail!r}), cut mid-record")


def check_coverage(src: SourceFile, kind: str, key: str, seen: set[str], unit: str) -> None:
    """Every value of ``release_counts()[kind][key]`` must occur in ``seen``."""
    expected = release_counts()[kind][key]
    missing = [c for c in expected if c not in seen]
    if missing:
        raise _refuse(
            src,
            f"no {unit} {', '.join(missing)} (a complete file has {', '.join(expected)})",
        )


def check_counts(src: SourceFile, kind: str, version: str, counts: dict[str, int]) -> None:
    """For a known release, each count must reach the published one."""
    known = release_counts()[kind]["releases"].get(version)
    if known is None:
        return
    short = [
        f"{counts.get(name, 0):,} of the {want:,} {name.replace('_', ' ')}"
        for name, want in known.items()
        if counts.get(name, 0) < want
    ]
    if short:
        raise _refuse(src, f"it holds {' and '.join(short)} of the {version} release")
