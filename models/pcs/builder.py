"""Builds ICD-10-PCS codes axis by axis from a procedure statement.

For each operation a statement names (a named procedure such as "TURP", an operation word
such as "biopsy", or a combining form and suffix such as "cholecyst-ectomy"), the builder sets

1. section and 2. body system (from the body part, or the named procedure),
3. root operation (the word's, "partial" turning a resection into an excision),
4. body part (with its laterality), 5. approach, 6. device and 7. qualifier,

each from the words of the statement (:mod:`clinicode.models.pcs.knowledge`), and checks every
step against the PCS tables (:mod:`clinicode.models.pcs.tables`). An axis the statement does
not document is filled only when the tables leave a single value for it; otherwise the code
carries a query naming the axis, and a placeholder value that the coder must confirm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from clinicode.models.pcs.knowledge import BodyPart, Knowledge, Procedure, ValueTerm
from clinicode.models.pcs.statements import Statement
from clinicode.models.pcs.tables import PcsTables

_PLACEHOLDER_ORDER = "0438X7FZ9ABCDEFGHJKLMNPQRSTUVWY123456"


@dataclass
class Axis:
    """One character of the code: its value, where the note documents it and how it was set."""

    position: int
    value: str
    how: str  # documented | implied | default | tables | not documented
    span: tuple[int, int] | None = None
    note: str = ""
    options: tuple[str, ...] = ()  # the values the tables allow, when not documented
    name: str = ""  # "approach", or what the section calls the position ("duration")


@dataclass
class Op:
    """An operation the statement names, before its code is built."""

    start: int
    end: int
    kind: str  # procedure | term | suffix
    op_name: str
    op_value: str | None = None
    body: BodyPart | None = None
    body_span: tuple[int, int] | None = None
    procedure: Procedure | None = None
    qualifier: str | None = None
    weak: bool = False

    def shift(self, base: int) -> None:
        """From offsets in the statement to offsets in the note."""
        self.start, self.end = self.start + base, self.end + base
        if self.body_span is not None:
            self.body_span = (self.body_span[0] + base, self.body_span[1] + base)


@dataclass
class Built:
    code: str
    axes: list[Axis]
    statement: Statement
    op: Op
    missing: list[str] = field(default_factory=list)

    def spans(self) -> list[tuple[int, int]]:
        """The note spans that document the axes, in order, each once."""
        return sorted({a.span for a in self.axes if a.span is not None})


def _object(text: str, end: int) -> str:
    """The (up to four) words after "of" that follow an operation word."""
    m = re.match(r"\s+of\s+((?:[\w-]+[ \t]*){1,4})", text[end:])
    return m.group(1) if m else ""


class PcsBuilder:
    def __init__(self, tables: PcsTables, knowledge: Knowledge) -> None:
        self.tables = tables
        self.k = knowledge

    # -- operations ----------------------------------------------------------------------
    def operations(self, st: Statement) -> list[Op]:
        """The operations a statement names, in order: named procedures first, then operation
        words, then combining form + suffix words, none overlapping another. A scope that only
        shows the way to a definitive procedure is dropped (B3.11a), and so is a weak word
        ("placement") beside a stronger one."""
        text = st.text
        taken: list[tuple[int, int]] = []
        ops: list[Op] = []

        def claim(m: re.Match[str]) -> bool:
            if any(m.start() < y and m.end() > x for x, y in taken):
                return False
            taken.append((m.start(), m.end()))
            return True

        for proc in self.k.procedures:
            body = self.k.body_part(proc.body) if proc.body else None
            for m in proc.pattern.finditer(text):
                if claim(m):
                    ops.append(
                        Op(m.start(), m.end(), "procedure", proc.root, body=body, procedure=proc)
                    )
        for term in self.k.op_terms:
            body = self.k.body_part(term.body) if term.body else None
            for m in term.pattern.finditer(text):
                if claim(m):
                    ops.append(
                        Op(
                            m.start(),
                            m.end(),
                            "term",
                            term.op,
                            body=body,
                            body_span=m.span() if body else None,
                            qualifier=term.qualifier,
                            weak=term.weak,
                        )
                    )
        for m in self.k.suffix_pattern.finditer(text):
            body = self._form(m.group(1).lower())
            if body is not None and claim(m):
                op = self.k.suffixes[m.group(2).lower()]
                ops.append(Op(m.start(), m.end(), "suffix", op, body=body, body_span=m.span()))
        ops.sort(key=lambda o: o.start)
        ops = [o for o in ops if not self._inspection(o)] or ops[:1]
        ops = [o for o in ops if not o.weak] or ops
        for o in ops:
            self._partial(o, text)
            self._switch(o, text)
            o.shift(st.start)
        return ops

    def _inspection(self, o: Op) -> bool:
        if o.procedure is not None:
            return o.procedure.inspection_only
        return o.op_name == "inspection"

    def _form(self, stem: str) -> BodyPart | None:
        best: tuple[int, BodyPart] | None = None
        for bp in self.k.body_parts:
            for f in bp.forms:
                if stem.endswith(f) and len(stem) - len(f) <= 5:
                    if best is None or len(f) > best[0]:
                        best = (len(f), bp)
        return best[1] if best else None

    def _partial(self, o: Op, text: str) -> None:
        if o.op_name != "resection" or o.kind == "procedure":
            return
        before = text[text.rfind(".", 0, o.start) + 1 : o.start]
        if self.k.partial_words.search(before) and not self.k.total_words.search(before):
            o.op_name = "excision"
        elif o.kind == "term" and self.k.lesion_words.search(_object(text, o.end)):
            o.op_name = "excision"

    def _switch(self, o: Op, text: str) -> None:
        for name, pattern, to in self.k.op_switches:
            if o.op_name != name:
                continue
            for m in pattern.finditer(text):
                if not self.k.negated_before.search(text[max(0, m.start() - 12) : m.start()]):
                    o.op_name = to
                    o.op_value = self.k.root_operations[to]["value"]
                    return

    # -- building ------------------------------------------------------------------------
    def build(self, st: Statement) -> list[Built]:
        """The codes of a statement: each operation read from its own stretch of it (from
        the previous operation to the next), the approach from the whole statement if its
        stretch names none ("Laparoscopic adrenalectomy and umbilical hernia repair")."""
        out = []
        ops = self.operations(st)
        for i, op in enumerate(ops):
            a = ops[i - 1].end if i else st.start
            b = ops[i + 1].start if i + 1 < len(ops) else st.end
            region = Statement(a, b, st.text[a - st.start : b - st.start], st.source)
            built = self._build_op(region, op, st)
            if built is not None:
                out.append(built)
        return out

    def _root(self, op: Op, section: str) -> Axis | None:
        span = (op.start, op.end)
        if op.op_value is not None:
            return Axis(3, op.op_value, "documented", span, op.op_name)
        if op.procedure is not None and "op" in op.procedure.axes:
            return Axis(3, op.procedure.axes["op"], "documented", span, op.procedure.root)
        info = self.k.root_operations.get(op.op_name)
        if info is None or section != "0":
            return None
        return Axis(3, info["value"], "documented", span, op.op_name)

    def _build_op(self, st: Statement, op: Op, whole: Statement) -> Built | None:
        proc = op.procedure
        fixed_axes = dict(proc.axes) if proc else {}
        fixed_axes.pop("op", None)
        section = fixed_axes.get("section", "0")
        root = self._root(op, section)
        if root is None:
            return None
        for system, part, part_axis in self._body_choices(st, op):
            sys_val = fixed_axes.get("system", system)
            prefix = section + sys_val + root.value
            if not self.tables.has_table(prefix):
                continue
            fixed = {1: section, 2: sys_val, 3: root.value, 4: fixed_axes.get("part", part)}
            if not self.tables.completions(fixed):
                continue
            axes = [
                Axis(1, section, "implied", None, self.k.sections.get(section, "")),
                Axis(2, sys_val, "implied", part_axis.span),
                root,
                part_axis
                if "part" not in fixed_axes
                else Axis(4, fixed[4], "documented", (op.start, op.end)),
            ]
            return self._finish(st, op, fixed, axes, whole)
        return None

    # body system and body part -------------------------------------------------------------
    def _body_choices(self, st: Statement, op: Op) -> list[tuple[str, str, Axis]]:
        """(body system, body part value, axis) readings in order of preference."""
        proc = op.procedure
        if proc is not None and "part" in proc.axes and "system" in proc.axes:
            span = (op.start, op.end)
            return [
                (
                    proc.axes["system"],
                    proc.axes["part"],
                    Axis(4, proc.axes["part"], "documented", span),
                )
            ]
        found = self._body_terms(st)
        cands: list[tuple[BodyPart, tuple[int, int]]] = []
        own = (op.body, op.body_span or (op.start, op.end)) if op.body else None
        systems_own = set(op.body.values) if op.body else set()
        ranked = sorted(found, key=lambda f: self._distance(op, f[1]))
        if own is not None:
            # a more specific term of the same body system ("sigmoid" colectomy) wins
            cands.extend(f for f in ranked if systems_own & set(f[0].values))
            cands.append(own)
        cands.extend(f for f in ranked if f not in cands)
        only = proc.axes.get("system") if proc is not None else None
        abscess = bool(self.k.abscess_terms.search(st.text))
        out = []
        for bp, span in cands:
            systems = [s for s in bp.values if only is None or s == only]
            if abscess:
                systems.sort(key=lambda s: s not in self.k.abscess_systems)
            for system in systems:
                for value, axis in self._part_values(st, op, bp, system, span):
                    out.append((system, value, axis))
        return out

    def _distance(self, op: Op, span: tuple[int, int]) -> int:
        if span[0] >= op.end:
            return span[0] - op.end
        return (op.start - span[1]) + 5 if span[1] <= op.start else 0

    def _body_terms(self, st: Statement) -> list[tuple[BodyPart, tuple[int, int]]]:
        taken: list[tuple[int, int]] = []
        hits = []
        for bp in self.k.body_parts:
            if bp.terms is None:
                continue
            for m in bp.terms.finditer(st.text):
                hits.append((m.end() - m.start(), m.start(), m.end(), bp))
        hits.sort(key=lambda h: (-h[0], h[1]))
        out = []
        for _, a, b, bp in hits:
            if all(b <= x or a >= y for x, y in taken):
                taken.append((a, b))
                out.append((bp, (a + st.start, b + st.start)))
        return out

    def _part_values(
        self, st: Statement, op: Op, bp: BodyPart, system: str, span: tuple[int, int]
    ) -> list[tuple[str, Axis]]:
        spec = bp.values[system]
        prefer = op.procedure.prefer if op.procedure else None
        if prefer and prefer in bp.tags:
            return [(bp.tags[prefer], Axis(4, bp.tags[prefer], "documented", span, bp.name))]
        if isinstance(spec, str):
            return [(spec, Axis(4, spec, "documented", span, bp.name))]
        if "count" in spec:
            counted = bp.count_terms.findall(st.text) if bp.count_terms else []
            n = len({c.lower() for c in counted})
            values = spec["count"]
            v = values[min(max(n, 1), len(values)) - 1]
            return [(v, Axis(4, v, "documented", span, f"{bp.name}, {max(n, 1)} treated"))]
        side, side_span = self._laterality(st, span)
        if side is not None and side in spec:
            label = f"{bp.name}, {side}"
            return [(str(spec[side]), Axis(4, str(spec[side]), "documented", side_span, label))]
        if "none" in spec:
            return [(str(spec["none"]), Axis(4, str(spec["none"]), "documented", span, bp.name))]
        out = []
        sides = tuple(s for s in ("right", "left", "bilateral") if s in spec)
        for s in sides:
            note = f"{bp.name}: laterality not documented (shown as {s})"
            axis = Axis(4, str(spec[s]), "not documented", span, note, sides)
            out.append((str(spec[s]), axis))
        return out

    def _laterality(
        self, st: Statement, span: tuple[int, int]
    ) -> tuple[str | None, tuple[int, int] | None]:
        hits = []
        for pattern, side in self.k.laterality:
            for m in pattern.finditer(st.text):
                hits.append((m.start() + st.start, m.end() + st.start, side))
        if not hits:
            return None, None
        before = [h for h in hits if h[1] <= span[0] and span[0] - h[1] <= 40]
        if before:
            h = max(before, key=lambda h: h[1])
            return h[2], (h[0], span[1])
        after = [h for h in hits if h[0] >= span[1] and h[0] - span[1] <= 25]
        if after:
            h = min(after, key=lambda h: h[0])
            return h[2], (span[0], h[1])
        inside = [h for h in hits if span[0] <= h[0] < span[1]]
        if inside:
            return inside[0][2], span
        if len({h[2] for h in hits}) == 1:
            return hits[0][2], (hits[0][0], hits[0][1])
        return None, None

    # approach, device, qualifier ---------------------------------------------------------
    def _finish(
        self, st: Statement, op: Op, fixed: dict[int, str], axes: list[Axis], whole: Statement
    ) -> Built:
        proc = op.procedure
        pa = proc.axes if proc else {}
        # what a named procedure fixes of the later axes narrows the earlier ones' choices
        later = {p: pa[n] for p, n in ((5, "approach"), (6, "device"), (7, "qualifier")) if n in pa}
        # section 5 puts the duration where section 0 has the approach
        durations = self._proc_choices(st, proc, durations=True) if proc else []
        approaches = durations or self._approaches(st, op) or self._approaches(whole, op)
        inherent = proc.default_approach if proc else None
        devices = self._values(st, op, self.k.devices)
        quals = self._values(st, op, self.k.qualifiers)
        if proc is not None:
            quals = self._proc_choices(st, proc, durations=False) + quals
        if op.qualifier:
            quals.append((op.qualifier, (op.start, op.end)))
        default_q = proc.default_qualifier if proc and proc.default_qualifier else "Z"
        for pos, documented, default in (
            (5, approaches, inherent),
            (6, devices, "Z"),
            (7, quals, default_q),
        ):
            axis = self._choose(fixed, later, pos, documented, default, op)
            fixed[pos] = axis.value
            axes.append(axis)
        section = fixed[1]
        for axis in axes:
            axis.name = self.k.axis_name(section, axis.position)
        code = "".join(fixed[i] for i in range(1, 8))
        missing = [a.name for a in axes if a.how == "not documented"]
        return Built(code, axes, whole, op, missing)

    def _proc_choices(
        self, st: Statement, proc: Procedure, *, durations: bool
    ) -> list[tuple[str, tuple[int, int]]]:
        out = []
        for pattern, value in proc.durations if durations else proc.qualifier:
            m = pattern.search(st.text)
            if m:
                out.append((value, (m.start() + st.start, m.end() + st.start)))
        return out

    def _choose(
        self,
        fixed: dict[int, str],
        later: dict[int, str],
        pos: int,
        documented: list[tuple[str, tuple[int, int]]],
        default: str | None,
        op: Op,
    ) -> Axis:
        """The value of axis ``pos``: the named procedure's, else the first documented one the
        tables accept, else the default (no device, no qualifier), else the only value the
        tables leave; otherwise the axis is not documented and shows a placeholder."""
        rest = {p: v for p, v in later.items() if p > pos}

        def ok(v: str) -> bool:
            return bool(
                self.tables.completions({**fixed, pos: v, **rest})
                or self.tables.completions({**fixed, pos: v})
            )

        if pos in later and ok(later[pos]):
            return Axis(pos, later[pos], "documented", (op.start, op.end))
        for value, span in documented:
            if ok(value):
                return Axis(pos, value, "documented", span)
        if default is not None and ok(default):
            how = "default" if default == "Z" else "implied"
            return Axis(pos, default, how, (op.start, op.end) if how == "implied" else None)
        codes = self.tables.completions({**fixed, **rest}) or self.tables.completions(fixed)
        options = sorted({c[pos - 1] for c in codes}, key=_PLACEHOLDER_ORDER.index)
        if len(options) == 1:
            return Axis(pos, options[0], "tables", None, "the only value the table allows")
        name = self.k.axis_name(fixed[1], pos)
        note = f"{name} not documented (shown as {options[0]})"
        return Axis(pos, options[0], "not documented", None, note, tuple(options))

    def _approaches(self, st: Statement, op: Op) -> list[tuple[str, tuple[int, int]]]:
        for pattern, value in self.k.approach_overrides:
            m = pattern.search(st.text)
            if m:
                return [(value, (m.start() + st.start, m.end() + st.start))]
        hits = []
        ignored = [m.span() for m in self.k.approach_ignore.finditer(st.text)]
        for pattern, value in self.k.approach_terms:
            for m in pattern.finditer(st.text):
                if any(a <= m.start() < b for a, b in ignored):
                    continue
                span = (m.start() + st.start, m.end() + st.start)
                hits.append(
                    (self._distance(op, span) if span != (op.start, op.end) else -1, value, span)
                )
        hits.sort()
        return [(v, s) for _, v, s in hits]

    def _values(
        self, st: Statement, op: Op, terms: tuple[ValueTerm, ...]
    ) -> list[tuple[str, tuple[int, int]]]:
        out = []
        for t in terms:
            if t.ops and op.op_name not in t.ops:
                continue
            for m in t.pattern.finditer(st.text):
                if self.k.negated_before.search(st.text[max(0, m.start() - 12) : m.start()]):
                    continue  # "without mesh"
                value = t.value
                if t.counted:
                    c = self.k.count_before.search(st.text[: m.start()])
                    if c:
                        n = self.k.count_words.get((c.group(1) or "").lower()) or int(c.group(2))
                        value = t.counted[min(max(n, 1), len(t.counted)) - 1]
                out.append((value, (m.start() + st.start, m.end() + st.start)))
        # the longest phrase is the most specific ("intramedullary nail" over "fixation")
        return sorted(out, key=lambda v: v[1][0] - v[1][1])
