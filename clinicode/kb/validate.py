"""Is a code one a coder may report? The check the review service applies to every code a
coder types (``add``, ``modify``), shared with anything else that records coded data.

:func:`billable_problem` returns ``None`` for a billable code of a loaded system, else the reason
in words a coder can act on: the system is not loaded, the code does not exist, it is a chapter
or block range, a category or subcategory with codes below it, an ICD-10-CM code that needs its
7th character, an ICD-10-PCS table header, a HCPCS modifier or a terminated code.

:func:`partial_problem` is the check of a *partial* ICD-10-PCS code: the first four characters
(section, body system, root operation, body part) of a procedure the note documents only that
far (no approach, device or qualifier). The engine lists such codes as candidates for the coder
to complete, and labeled data sets such as CodiEsp code about half their procedures so; a coder
may confirm one (``accept``/``add`` in the review) as a training label, never report it.
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


PARTIAL_SYSTEM = "ICD-10-PCS"
PARTIAL_LENGTH = 4


def is_partial(system: str, code: str) -> bool:
    """An ICD-10-PCS code of fewer than seven characters: a procedure known in part."""
    return system == PARTIAL_SYSTEM and len(code) < 7


def partial_problem(kb: KnowledgeBase, system: str, code: str) -> str | None:
    """Why ``code`` is not a partial code a coder may confirm (None when it is one: the first
    four characters of at least one billable ICD-10-PCS code of ``kb``)."""
    if system != PARTIAL_SYSTEM:
        return f"only {PARTIAL_SYSTEM} codes can be partial, not {system} {code}"
    if kb.system_info(system) is None:
        return billable_problem(kb, system, code)
    if len(code) != PARTIAL_LENGTH:
        return (
            f"{code} is not a partial {system} code: a partial code is the first "
            f"{PARTIAL_LENGTH} characters (section, body system, root operation, body part)"
        )
    if not kb.codes_under(system, code, limit=1):
        return f"{code} begins no code of {system} {kb.versions().get(system, '')}".rstrip()
    return None


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
