"""The ICD-10-PCS tables the builder validates against: which 7-character combinations exist.

Derived from the knowledge base: the tables XML when one was imported (``clinicode codes
import pcs-tables``, stored under the KB meta key :data:`TABLES_META_KEY`), else the valid
codes of the imported order file. Either way, a code the builder returns is one of them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from clinicode.kb.importers.pcs_tables import META_KEY as TABLES_META_KEY
from clinicode.kb.importers.pcs_tables import SYSTEM, expand_tables

__all__ = ["SYSTEM", "TABLES_META_KEY", "PcsTables", "expand_tables"]


@dataclass
class PcsTables:
    """Valid codes grouped by table (first three characters), with their titles."""

    by_table: dict[str, list[str]]
    titles: dict[str, str]
    source: str
    labels: dict[str, dict[int, dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def from_kb(cls, kb: Any) -> PcsTables:
        """Built once per KB object (``kb.derived``): a write to the KB rebuilds it."""
        tables: PcsTables = kb.derived("pcs_tables", cls._build)
        return tables

    @classmethod
    def _build(cls, kb: Any) -> PcsTables:
        info = kb.system_info(SYSTEM) if hasattr(kb, "system_info") else None
        if info is None:
            return cls({}, {}, "none")
        titles = kb.titles(SYSTEM)  # codes and table headers ("0FT")
        raw = kb.get_meta(TABLES_META_KEY)
        if raw:
            payload = json.loads(raw)
            codes, labels = expand_tables(payload["tables"])
            source = f"ICD-10-PCS {payload.get('version', info.version)} tables XML"
        else:
            billable = kb.billable_map(SYSTEM)
            codes = [c for c, b in billable.items() if b and len(c) == 7]
            labels = {}
            source = f"ICD-10-PCS {info.version} order file"
        by_table: dict[str, list[str]] = defaultdict(list)
        for c in sorted(codes):
            by_table[c[:3]].append(c)
        return cls(dict(by_table), titles, source, labels)

    def __bool__(self) -> bool:
        return bool(self.by_table)

    def has_table(self, prefix: str) -> bool:
        return prefix[:3] in self.by_table

    def valid(self, code: str) -> bool:
        return code in self.by_table.get(code[:3], ())

    def completions(self, fixed: dict[int, str]) -> list[str]:
        """Valid codes whose character at each 1-based position in ``fixed`` is that value
        (positions 1 to 3 must be given: they name the table)."""
        table = "".join(fixed.get(i, "?") for i in (1, 2, 3))
        out = []
        for code in self.by_table.get(table, ()):
            if all(code[p - 1] == v for p, v in fixed.items()):
                out.append(code)
        return out

    def title(self, code: str) -> str:
        return self.titles.get(code, "")

    def label(self, code: str, position: int) -> str | None:
        """The tables XML's label of the code's value at ``position`` (None without XML)."""
        return self.labels.get(code[:3], {}).get(position, {}).get(code[position - 1])
