"""Components chosen by name, imported only when asked for (like MedCAT's ``utils/registry``).

Each kind of component (see :mod:`clinicode.models.types`) has a small table of
``name -> "module:attribute"``. Looking a name up imports its module then, so importing this
module (or a pack that names a component it never uses) costs nothing.

    >>> from clinicode.models import registry
    >>> registry.names("candidate_generator")
    ['dense', 'lexical', 'structure']
    >>> cls = registry.get("ranker", "gbdt")  # imports clinicode.models.ranker now

A plug-in registers its own: ``registry.register("ranker", "mine", "my_pkg.rankers:MyRanker")``.
"""

from __future__ import annotations

import importlib
from typing import Any

_TABLES: dict[str, dict[str, str]] = {
    "candidate_generator": {
        "lexical": "clinicode.models.candidates_lexical:LexicalGenerator",
        "dense": "clinicode.models.candidates_dense:DenseGenerator",
        "structure": "clinicode.models.candidates_structure:StructureGenerator",
        "encoder": "clinicode.models.encoder.generator:EncoderGenerator",
        "pcs": "clinicode.models.pcs.candidates:PcsGenerator",
    },
    "ranker": {
        "gbdt": "clinicode.models.ranker:GBDTRanker",
        "routed": "clinicode.models.ranker:RoutedRanker",
        "by_task": "clinicode.models.ranker:TaskRanker",
    },
    "guidelines": {
        "official": "clinicode.models.guidelines.layer:Guidelines",
    },
    # rule coders (``types.RuleCoder``): every registered one runs unless the pack says otherwise
    "rule_coder": {
        "cpt": "clinicode.models.rule_cpt:CPTCoder",
        "em": "clinicode.models.em:EMCoder",
        "hcpcs": "clinicode.models.rule_hcpcs:HCPCSCoder",
        "pcs": "clinicode.models.pcs.coder:PcsCoder",
    },
}


class RegistryError(LookupError):
    """An unknown kind or name (the message lists the valid ones)."""


def kinds() -> list[str]:
    return sorted(_TABLES)


def _table(kind: str) -> dict[str, str]:
    try:
        return _TABLES[kind]
    except KeyError:
        raise RegistryError(
            f"unknown component kind {kind!r}; choose one of: {', '.join(kinds())}"
        ) from None


def names(kind: str) -> list[str]:
    """The registered names of one kind, sorted."""
    return sorted(_table(kind))


def register(kind: str, name: str, target: str) -> None:
    """Add (or replace) ``name`` for ``kind``; ``target`` is ``"module:attribute"``."""
    module, sep, attr = target.partition(":")
    if not (module and sep and attr):
        raise RegistryError(f"target must look like 'package.module:Attribute', not {target!r}")
    _TABLES.setdefault(kind, {})[name] = target


def get(kind: str, name: str) -> Any:
    """The class (or factory) registered as ``name`` for ``kind``, imported now."""
    table = _table(kind)
    try:
        target = table[name]
    except KeyError:
        raise RegistryError(
            f"unknown {kind.replace('_', ' ')} {name!r}; choose one of: {', '.join(sorted(table))}"
        ) from None
    module, attr = target.split(":", 1)
    return getattr(importlib.import_module(module), attr)
