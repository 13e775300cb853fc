"""The rule table: each rule registers itself by name; the order they run in is data.

A rule is ``rule(layer, note) -> None`` decorated with ``@rule("name")`` in its family's module;
``rule_order`` in ``models/resources/guidelines_rules.yaml`` lists the names in the order
:meth:`Guidelines.apply` runs them. A rule never calls another rule: steps two rules share are
helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .data import load_rules

if TYPE_CHECKING:
    from .layer import Guidelines
    from .state import NoteState

Rule = Callable[["Guidelines", "NoteState"], None]

_REGISTERED: dict[str, Rule] = {}


def rule(name: str) -> Callable[[Rule], Rule]:
    """Register the decorated function as the rule ``name`` (a name is registered once)."""

    def register(fn: Rule) -> Rule:
        if name in _REGISTERED and _REGISTERED[name] is not fn:
            raise ValueError(f"guideline rule {name!r} registered twice")
        _REGISTERED[name] = fn
        return fn

    return register


def registered() -> dict[str, Rule]:
    """The registered rules by name (a copy)."""
    return dict(_REGISTERED)


def rule_order() -> list[str]:
    """The rule names in the order the layer runs them (``rule_order`` in the tables)."""
    return [str(name) for name in load_rules()["rule_order"]]


def ordered_rules() -> list[Rule]:
    """The registered rules in the data's order; an unknown or repeated name is an error."""
    order = rule_order()
    unknown = [name for name in order if name not in _REGISTERED]
    if unknown:
        raise ValueError(
            f"rule_order names unregistered guideline rules {unknown}; "
            f"registered: {', '.join(sorted(_REGISTERED))}"
        )
    repeated = sorted({name for name in order if order.count(name) > 1})
    if repeated:
        raise ValueError(f"rule_order names {repeated} more than once")
    return [_REGISTERED[name] for name in order]
