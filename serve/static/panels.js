// Collapsed panels: suppressed codes grouped by reason, then by category (21 variants of one
// category are one line), and the encounter's provider queries with their state.
import { $, $$, el } from "./api.js";
import { select, startQuery, enc } from "./encounter.js";

export function groupSuppressed(suppressed) {
  const byReason = new Map();
  suppressed.forEach((s, j) => {
    const reason = s.reason ?? "suppressed";
    if (!byReason.has(reason)) byReason.set(reason, new Map());
    const cats = byReason.get(reason);
    const cat = s.code.replace(".", "").slice(0, 3);
    if (!cats.has(cat)) cats.set(cat, []);
    cats.get(cat).push({ s, j });
  });
  return byReason;
}

export function renderSuppressed(suppressed) {
  const box = $("#suppressed");
  box.replaceChildren();
  $("#n-suppressed").textContent = `(${suppressed.length})`;
  if (!suppressed.length) { box.append(el("p", { class: "empty" }, "Nothing suppressed.")); return; }
  for (const [reason, cats] of groupSuppressed(suppressed)) {
    const n = [...cats.values()].reduce((a, v) => a + v.length, 0);
    const ul = el("ul", { class: "suppressed" });
    for (const [cat, items] of cats) {
      const first = items[0].s;
      const li = el("li", { "data-cat": cat, tabindex: "0" },
        el("span", { class: "code" }, items.length > 1 ? `${cat}.x` : first.code), " ",
        items.length > 1 ? `${items.length} codes: ${items.map((x) => x.s.code).join(", ")}` : first.title);
      li.addEventListener("click", () => showSuppressed(items.map((x) => x.j)));
      li.addEventListener("keydown", (e) => { if (e.key === "Enter") showSuppressed(items.map((x) => x.j)); });
      ul.append(li);
    }
    box.append(el("details", { class: "sup-group" }, el("summary", {}, `${reason} (${n})`), ul));
  }
}

function showSuppressed(js) {
  const keys = js.map(String);
  $$("#note-view s.sup").forEach((x) => x.classList.toggle("active", x.dataset.sup.split(" ").some((k) => keys.includes(k))));
  $("#note-view s.sup.active")?.scrollIntoView({ block: "center" });
}

export function renderQueries() {
  const ul = $("#queries");
  const ws = enc.data.worksheet;
  const entries = Object.entries(ws.queries);
  $("#n-queries").textContent = `(${entries.length})`;
  ul.replaceChildren();
  for (const [sid, q] of entries) {
    const i = enc.rows.findIndex((r) => r.s.suggestion_id === sid);
    const code = i >= 0 ? enc.rows[i].s.code : sid;
    const li = el("li", { class: `q-${q.status}` },
      el("span", { class: "code" }, code), " ",
      el("span", { class: "badge" }, q.status), " ", q.text,
      q.answer ? el("div", { class: "small" }, `Answer: ${q.answer}`) : "");
    if (i >= 0) {
      li.append(" ", el("button", { type: "button", onclick: () => { select(i); startQuery(i); } }, "Edit"));
    }
    ul.append(li);
  }
  if (!entries.length) ul.append(el("li", { class: "empty" }, "No query: press q on a code to draft one."));
  if (entries.some(([, q]) => q.status !== "answered")) $("#queries-box").open = true;
}
