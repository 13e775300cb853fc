"""The repository's test helpers, loaded by path for the benches.

An installed package (medspacy's QuickUMLS) owns the top-level name ``tests``, so
``import tests.regression.suite`` finds the wrong package outside pytest.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_repo_module(relative: str, name: str) -> ModuleType:
    """The module at ``REPO/relative``, registered as ``name`` (dataclasses look their module
    up by name)."""
    spec = importlib.util.spec_from_file_location(name, REPO / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
