"""The component registry: lookups by name, lazy imports, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clinicode.models import registry
from clinicode.models.candidates import CandidatesError, get_generator


def test_every_registered_name_resolves_to_a_class() -> None:
    for kind in registry.kinds():
        for name in registry.names(kind):
            assert isinstance(registry.get(kind, name), type), (kind, name)


def test_ranker_and_generators_match_the_protocols() -> None:
    from clinicode.models.types import CandidateGenerator, Ranker

    assert isinstance(registry.get("ranker", "gbdt")(), Ranker)
    assert isinstance(get_generator("lexical"), CandidateGenerator)


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(registry.RegistryError, match="gbdt"):
        registry.get("ranker", "nope")
    with pytest.raises(registry.RegistryError, match="candidate_generator"):
        registry.get("no-such-kind", "x")
    with pytest.raises(CandidatesError, match="lexical"):
        get_generator("nope")


def test_register_checks_the_target_and_adds_a_name() -> None:
    with pytest.raises(registry.RegistryError):
        registry.register("ranker", "bad", "no_colon_here")
    registry.register("ranker", "gbdt-alias", "clinicode.models.ranker:GBDTRanker")
    try:
        assert registry.get("ranker", "gbdt-alias") is registry.get("ranker", "gbdt")
    finally:
        registry._TABLES["ranker"].pop("gbdt-alias")


def test_importing_the_registry_imports_no_component() -> None:
    code = (
        "import sys; import clinicode.models.registry; "
        "heavy = [m for m in ('clinicode.models.ranker', 'clinicode.models.candidates_dense', "
        "'sklearn', 'torch') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
