"""Clinicode: an open computer-assisted coding engine.

Importing this package does no I/O. ``clinicode.load()`` returns an :class:`Engine` (from
``clinicode.engine``) that suggests codes for notes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from clinicode.engine import Engine

__all__ = ["__version__", "load"]


def load(model_dir: Any = None, **kwargs: Any) -> Engine:
    """Load a model pack (default: the pack under ``CLINICODE_DATA_DIR``) and return an Engine."""
    from clinicode.engine import load as _load

    return _load(model_dir, **kwargs)
