"""Smaller responses for integrators: ``?compact=true`` keeps the suggested codes (with their
evidence offsets and explanation) and drops the mentions, candidates and suppressed codes."""

from __future__ import annotations

from typing import Any

COMPACT_DROPS = ("mentions", "candidates", "suppressed")


def compact(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in COMPACT_DROPS}
