"""JSON views of knowledge-base records shared by the CLI and the HTTP API."""

from __future__ import annotations

from typing import Any

from clinicode.kb.records import CodeRecord
from clinicode.kb.store import KnowledgeBase


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
