// The note with its evidence: spans of suggested codes, of candidates and of suppressed codes
// are drawn differently, and a span asserted as negated (or family, hypothetical) is never
// drawn as support. Text is inserted as text nodes only.
import { $, el } from "./api.js";

const NOT_SUPPORT = new Set(["negated", "family", "hypothetical"]);
const PRIORITY = ["sugg", "cand", "neg", "sup"];

export function evidenceSpans(rows, suppressed, textLength) {
  const spans = [];
  const ok = (e) => e.start >= 0 && e.end <= textLength && e.start < e.end;
  rows.forEach(({ s, list }, i) => {
    for (const e of s.evidence) {
      if (!ok(e)) continue;
      const kind = NOT_SUPPORT.has(e.assertion) ? "neg" : list === "codes" ? "sugg" : "cand";
      spans.push({ start: e.start, end: e.end, kind, ref: i, code: s.code, assertion: e.assertion });
    }
  });
  suppressed.forEach((s, j) => {
    for (const e of s.evidence) {
      if (ok(e)) spans.push({ start: e.start, end: e.end, kind: "sup", ref: j, code: s.code, reason: s.reason });
    }
  });
  return spans;
}

export function renderNote(text, rows, suppressed, onPick) {
  const spans = evidenceSpans(rows, suppressed, text.length);
  const cuts = new Set([0, text.length]);
  for (const sp of spans) { cuts.add(sp.start); cuts.add(sp.end); }
  const bounds = [...cuts].sort((a, b) => a - b);
  const view = $("#note-view");
  view.replaceChildren();
  for (let k = 0; k + 1 < bounds.length; k++) {
    const [a, b] = [bounds[k], bounds[k + 1]];
    const piece = text.slice(a, b);
    const covering = spans.filter((sp) => sp.start <= a && sp.end >= b);
    const kind = PRIORITY.find((p) => covering.some((sp) => sp.kind === p));
    if (!kind) { view.append(document.createTextNode(piece)); continue; }
    const mine = covering.filter((sp) => sp.kind === kind);
    if (kind === "sugg" || kind === "cand") {
      const m = el("mark", { class: `ev ${kind}`, "data-rows": mine.map((sp) => sp.ref).join(" ") }, piece);
      m.title = `${kind === "sugg" ? "Evidence of" : "Candidate"} ${mine.map((sp) => sp.code).join(", ")}`;
      m.addEventListener("click", () => onPick(mine[0].ref));
      view.append(m);
    } else if (kind === "neg") {
      const s = el("s", { class: "neg" }, piece);
      s.title = mine.map((sp) => `${sp.code}: ${sp.assertion}, not support`).join("\n");
      view.append(s);
    } else {
      const s = el("s", { class: "sup", "data-sup": mine.map((sp) => sp.ref).join(" ") }, piece);
      s.title = mine.map((sp) => `${sp.code} suppressed: ${sp.reason ?? "no reason given"}`).join("\n");
      view.append(s);
    }
  }
}

export function highlightRow(i) {
  const key = String(i);
  document.querySelectorAll("#note-view mark.ev").forEach((m) => m.classList.toggle("active", m.dataset.rows.split(" ").includes(key)));
  document.querySelector("#note-view mark.ev.active")?.scrollIntoView({ block: "nearest" });
}
