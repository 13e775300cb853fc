"""Importers for the official code-set files a user supplies (``clinicode codes import``).

``IMPORTERS`` maps a kind to an :class:`Importer`; ``run_import(kind, path, kb_path)`` runs one
against the KB file and returns a JSON-able report (system, kind, version, counts, source).
Problems the user can fix (wrong kind of file, truncated file, missing columns, empty file)
raise :class:`ImportFileError`, which the CLI prints before exiting with code 2.
``clinicode codes fetch`` (:mod:`clinicode.kb.fetch`) downloads the official releases and runs
the same importers on their members.

=========  ===================================================  ==========================
kind       file                                                 stored as
=========  ===================================================  ==========================
index      Alphabetic Index XML (or release zip) or its CSV     ICD-10-CM terms "index"
neoplasm   Neoplasm table XML                                   ICD-10-CM terms "neoplasm"
drug       Table of Drugs and Chemicals XML                     ICD-10-CM terms "drug"
eindex     External Cause index XML                             ICD-10-CM terms "eindex"
pcs        ICD-10-PCS order file (icd10pcs_order_YYYY.txt)      system ICD-10-PCS
pcs-tables ICD-10-PCS tables XML (icd10pcs_tables_YYYY.xml)     ICD-10-PCS valid tables
hcpcs      HCPCS Level II ANWEB csv/xlsx                        system HCPCS
cpt        licensed CPT CSV (code, descriptor)                  system CPT (replaces starter)
=========  ===================================================  ==========================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinicode.kb.importers.common import ImportFileError, ImportReport
from clinicode.kb.store import KnowledgeBase

__all__ = ["IMPORTERS", "ImportFileError", "ImportReport", "Importer", "run_import"]

# (file, KB, version label or None, provenance for the system's ``extra`` or None)
ImportFunc = Callable[[Path, KnowledgeBase, "str | None", "dict[str, str] | None"], ImportReport]


@dataclass(frozen=True)
class Importer:
    kind: str
    system: str
    description: str
    func: ImportFunc

    def __call__(
        self,
        path: Path,
        kb: KnowledgeBase,
        version: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> ImportReport:
        return self.func(path, kb, version, extra)


def _index(kind: str) -> ImportFunc:
    def run(
        path: Path, kb: KnowledgeBase, version: str | None, extra: dict[str, str] | None
    ) -> ImportReport:
        from clinicode.kb.importers.index import import_index_kind

        return import_index_kind(kind, path, kb, version, extra)

    return run


def _pcs(
    path: Path, kb: KnowledgeBase, version: str | None, extra: dict[str, str] | None
) -> ImportReport:
    from clinicode.kb.importers.pcs import import_pcs

    return import_pcs(path, kb, version, extra)


def _pcs_tables(
    path: Path, kb: KnowledgeBase, version: str | None, extra: dict[str, str] | None
) -> ImportReport:
    from clinicode.kb.importers.pcs_tables import import_pcs_tables

    return import_pcs_tables(path, kb, version, extra)


def _hcpcs(
    path: Path, kb: KnowledgeBase, version: str | None, extra: dict[str, str] | None
) -> ImportReport:
    from clinicode.kb.importers.hcpcs import import_hcpcs

    return import_hcpcs(path, kb, version, extra)


def _cpt(
    path: Path, kb: KnowledgeBase, version: str | None, extra: dict[str, str] | None
) -> ImportReport:
    from clinicode.kb.importers.cpt import import_cpt

    return import_cpt(path, kb, version, extra)


IMPORTERS: dict[str, Importer] = {
    "index": Importer(
        "index", "ICD-10-CM", "ICD-10-CM Alphabetic Index (XML, zip or CSV)", _index("index")
    ),
    "neoplasm": Importer(
        "neoplasm", "ICD-10-CM", "ICD-10-CM Neoplasm table (XML)", _index("neoplasm")
    ),
    "drug": Importer(
        "drug", "ICD-10-CM", "ICD-10-CM Table of Drugs and Chemicals (XML)", _index("drug")
    ),
    "eindex": Importer(
        "eindex", "ICD-10-CM", "ICD-10-CM External Cause index (XML)", _index("eindex")
    ),
    "pcs": Importer("pcs", "ICD-10-PCS", "ICD-10-PCS order file (txt)", _pcs),
    "pcs-tables": Importer(
        "pcs-tables", "ICD-10-PCS", "ICD-10-PCS tables XML (after the order file)", _pcs_tables
    ),
    "hcpcs": Importer("hcpcs", "HCPCS", "HCPCS Level II ANWEB file (csv or xlsx)", _hcpcs),
    "cpt": Importer("cpt", "CPT", "licensed CPT file (CSV: code, descriptor)", _cpt),
}


def run_import(
    kind: str,
    path: Path | str,
    kb_path: Path | str,
    version: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Import ``path`` as ``kind`` into the KB at ``kb_path``; returns a JSON-able report.

    ``extra`` (provenance such as ``{"url": ..., "url_sha256": ...}``) is stored with the
    system's ``extra`` in the same transaction as the codes; the Alphabetic Index and the
    tables, which share ICD-10-CM's ``extra``, store it with their kind as a prefix
    (``index_url``)."""
    importer = IMPORTERS.get(kind)
    if importer is None:
        raise ImportFileError(
            f"unknown import kind {kind!r}; choose one of: {', '.join(IMPORTERS)}"
        )
    kb = KnowledgeBase(kb_path, readonly=False)
    try:
        report = importer(Path(path), kb, version, extra)
    finally:
        kb.close()
    return report.as_dict()
