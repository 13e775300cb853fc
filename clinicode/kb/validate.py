"""Is a code one a coder may report? The check the review service applies to every code a
coder types (``add``, ``modify``), shared with anything else that records coded data.

:func:`billable_problem` returns ``None`` for a billable code of a loaded system, else the reason
in words a coder can act on: the system is not loaded, the code does not exist, it is a chapter
or block range, a category or subcategory with codes below it, an ICD-10-CM code that needs its
7th character, an ICD-10-PCS table header, a HCPCS modifier or a terminated code.
"""

from __future__ import annotations

from clinicode.kb.records import CodeRecord
from clinicode.kb.store import KnowledgeBase

_IMPORT_HINT = {
    "ICD-10-PCS": "clinicode codes import pcs FILE",
    "HCPCS": "clinicode codes import hcpcs FILE",
    "CPT": "clinicode codes import cpt FILE",
    "ICD-10-CM": "clinicode codes build",
}


def billable_problem(kb: KnowledgeBase, system: str, code: str) -> str | None:
    """Why ``code`` cannot be reported in ``system`` with the code sets of ``kb``, or None."""
    info = kb.system_info(system)
    if info is None:
        loaded = ", ".join(kb.versions()) or "none"
        return (
            f"{system} is not loaded, so {code} cannot be checked (loaded: {loaded}); "
            f"import it with `{_IMPORT_HINT.get(system, 'clinicode codes import')}`"
        )
    label = f"{system} {info.version}"
    rec = kb.get(code, system)
    if rec is None:
        return f"{code} is not a code of {label}"
    if rec.billable:
        return None
    return _not_billable(kb, rec, label)


def _not_billable(kb: KnowledgeBase, rec: CodeRecord, label: str) -> str:
    code = rec.code
    if rec.kind in ("chapter", "block"):
        return f"{code} is a {rec.kind} of {label} (a range of categories), not a billable code"
    if rec.kind == "table":
        return f"{code} is an {rec.system} table, not a complete 7-character code"
    if rec.kind == "modifier":
        return f"{code} is a {rec.system} modifier, not a billable code"
    children = kb.children(code, rec.system)
    if children and _needs_seventh(kb, rec, children):
        example = next((c for c in children if c.billable), children[0])
        return f"{code} needs its 7th character in {label} (e.g. {example.code}: {example.title})"
    if children:
        billable = [c.code for c in children if c.billable][:3]
        below = ", ".join(billable) if billable else children[0].code
        return (
            f"{code} is a {rec.kind} of {label} with more specific codes below it "
            f"(e.g. {below}): not billable"
        )
    ended = rec.notes.get("notes", [])
    reason = next((n for n in ended if n.startswith("Termination")), None)
    return f"{code} is not billable in {label}" + (f" ({reason.lower()})" if reason else "")


def _needs_seventh(kb: KnowledgeBase, rec: CodeRecord, children: list[CodeRecord]) -> bool:
    """True when the children differ from ``rec`` only by one trailing (7th) character and an
    ancestor lists the 7th characters."""
    if rec.system != "ICD-10-CM":
        return False
    bare = rec.code.replace(".", "")
    if not all(c.code.replace(".", "")[:-1].rstrip("X") == bare.rstrip("X") for c in children):
        return False
    return bool(rec.seven_chr) or any(a.seven_chr for a in kb.ancestors(rec.code, rec.system))
