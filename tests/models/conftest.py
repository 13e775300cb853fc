"""Fixtures of the model tests."""

from __future__ import annotations

from typing import Any

import pytest

from clinicode.models.guidelines import Guidelines


@pytest.fixture(scope="module")
def g(kb: Any) -> Guidelines:
    """The guidelines layer over the session's ICD-10-CM knowledge base."""
    return Guidelines(kb)
