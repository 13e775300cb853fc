"""JSON views of knowledge-base records shared by the CLI and the HTTP API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clinicode.kb.records import CodeRecord, SearchHit
from clinicode.kb.store import KnowledgeBase


def hit_json(hit: SearchHit, versions: Mapping[str, str]) -> dict[str, Any]:
    """The JSON form of one search hit, shared by `clinicode codes search --json` and the API."""
    return {
        "system": hit.system,
        "version": versions.get(hit.system),
        "code": hit.code,
        "title": hit.title,
        "billable": hit.billable,
        "score": round(hit.score, 4),
        "matched": hit.matched,
        "matched_source": hit.source,
    }


def search_json(
    kb: KnowledgeBase,
    text: str,
    *,
    systems: Sequence[str] | None,
    limit: int,
    billable_only: bool,
) -> list[dict[str, Any]]:
    """Ranked hits of ``kb.search`` as JSON (the caller checks ``text`` and ``systems``)."""
    versions = kb.versions()
    hits = kb.search(text, systems=systems, limit=limit, billable_only=billable_only)
    return [hit_json(h, versions) for h in hits]


def record_json(kb: KnowledgeBase, rec: CodeRecord) -> dict[str, Any]:
    """The JSON form of one code, shared by `clinicode codes lookup --json` and the API."""
    info = kb.system_info(rec.system)
    return {
        "system": rec.system,
        "version": info.version if info else None,
        "code": rec.code,
        "title": rec.title,
        "kind": rec.kind,
        "billable": rec.billable,
        "description_source": rec.description_source,
        "notes": rec.notes,
        "seven_chr": rec.seven_chr,
        "inherited_notes": {
            kind: [{"from": src, "note": note} for src, note in notes if src != rec.code]
            for kind, notes in kb.effective_notes(rec.code, rec.system).items()
            if any(src != rec.code for src, _ in notes)
        },
        "parents": [
            {"code": a.code, "title": a.title, "kind": a.kind}
            for a in kb.ancestors(rec.code, rec.system)
        ],
        "children": [
            {"code": c.code, "title": c.title, "billable": c.billable}
            for c in kb.children(rec.code, rec.system)
        ],
    }
