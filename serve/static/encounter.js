// One encounter: the coder's decisions on each code (accept, reject with a reason, modify, undo),
// provider queries and adding codes by search. The server keeps everything: each change returns
// the encounter, which is drawn again, so a reload shows exactly what was left.
import { $, $$, api, el, say } from "./api.js";
import { highlightRow, renderNote } from "./note_view.js";
import { renderFinal } from "./final.js";
import { renderQueries, renderSuppressed } from "./panels.js";

export const enc = { data: null, rows: [], selected: 0, pane: "codes", finalSel: 0, search: [], searchSel: 0 };
const REASON_KEYS = ["not_documented", "wrong_specificity", "negated", "integral_symptom", "other"];
const SETTING = { inpatient: "Inpatient", outpatient: "Outpatient" };

export async function openEncounter(id) {
  try {
    const data = await api(`/v1/encounters/${encodeURIComponent(id)}`);
    sessionStorage.setItem("clinicode-last-encounter", id);
    enc.selected = data.worksheet.cursor ?? 0;
    enc.finalSel = data.worksheet.view?.finalSel ?? 0;
    enc.pane = data.worksheet.view?.pane ?? "codes";
    setData(data);
    $("#candidates-box").open = !!data.worksheet.view?.candidates;
    $("#suppressed-box").open = !!data.worksheet.view?.suppressed;
    (enc.pane === "final" ? $("#final") : $("#codes-pane")).focus?.();
  } catch (err) {
    say(err.message, true);
    if (err.status === 404) location.hash = "#/queue";
  }
}

export function setData(data) {
  enc.data = data;
  enc.rows = [
    ...data.result.codes.map((s) => ({ s, list: "codes" })),
    ...data.result.candidates.map((s) => ({ s, list: "candidates" })),
  ];
  enc.selected = Math.min(enc.selected, Math.max(enc.rows.length - 1, 0));
  render();
}

function render() {
  const d = enc.data;
  $("#note-h").textContent = d.label || d.encounter_id;
  $("#note-meta").textContent =
    `${SETTING[d.setting]} · ${d.encounter_date} · ${d.documents.length} document${d.documents.length > 1 ? "s" : ""} · ` +
    `${d.status.replace("_", " ")} · model ${d.result.model.name} ${d.result.model.version} · ${Object.values(d.result.code_sets).join(", ")}`;
  renderNote(d.text, enc.rows, d.result.suppressed, (i) => select(i));
  renderCodes();
  renderFinal(enc);
  renderQueries(enc);
  renderSuppressed(d.result.suppressed);
  const coded = d.status === "coded";
  $("#complete").hidden = coded;
  $("#reopen").hidden = !coded;
  $("#todo").replaceChildren(...d.problems.map((p) => el("li", {}, p)));
  highlight();
}

// -- the code rows --------------------------------------------------------------------------
function orderNote(rows) {
  // The list is in the engine's order (principal first); say so where confidence disagrees.
  const codes = rows.filter((r) => r.list === "codes").map((r) => r.s);
  const inverted = codes.some((s, i) => codes.slice(0, i).some((p) => p.score < s.score));
  if (!inverted) return "Ordered by confidence.";
  return codes.some((s) => s.principal)
    ? "Ordered by sequencing: the principal diagnosis first, then by confidence."
    : "Ordered by the engine's rank (sequencing rules), not by confidence alone.";
}

function decisionText(d) {
  if (!d) return "";
  if (d.action === "modify") return `modified → ${d.final_code}`;
  if (d.action === "reject") {
    const label = enc.data.reject_reasons[d.reason] ?? d.reason;
    return `rejected: ${label}${d.reason_text ? ` (${d.reason_text})` : ""}`;
  }
  return "accepted";
}

function codeRow(i) {
  const { s, list } = enc.rows[i];
  const ws = enc.data.worksheet;
  const d = ws.decisions[s.suggestion_id];
  const q = ws.queries[s.suggestion_id];
  const pct = Math.round(s.score * 100);
  const selected = i === enc.selected;
  const li = el("li", {
    "data-row": i, "data-code": s.code, id: `row-${i}`, "aria-current": selected ? "true" : null,
    class: [d ? { accept: "accepted", reject: "rejected", modify: "modified" }[d.action] : "", selected ? "selected" : "", list].join(" "),
  },
  el("span", { class: "code" }, s.code),
  el("span", { class: "title" }, s.title,
    s.principal ? el("span", { class: "badge principal" }, "principal") : "",
    s.status === "needs_query" ? el("span", { class: "badge query" }, "needs query") : "",
    s.description_source === "clinicode-own-words" ? el("span", { class: "badge own" }, "our words") : ""),
  el("span", { class: "meta" },
    `${s.system} · ${pct}% · rank ${s.rank} · ${s.evidence.length} span${s.evidence.length === 1 ? "" : "s"}`,
    d ? el("span", { class: "decision" }, ` · ${decisionText(d)}`) : "",
    q ? el("span", { class: `qstate q-${q.status}` }, ` · query ${q.status}`) : ""),
  el("span", { class: "actions" },
    el("button", { type: "button", onclick: (e) => { e.stopPropagation(); decide(i, "accept"); } }, "Accept"),
    el("button", { type: "button", onclick: (e) => { e.stopPropagation(); startReject(i); } }, "Reject"),
    el("button", { type: "button", onclick: (e) => { e.stopPropagation(); startModify(i); } }, "Modify")));
  if (s.explanation?.length) {
    const lines = selected ? s.explanation : s.explanation.slice(0, 1);
    li.append(el("ul", { class: "why", "aria-label": `Why ${s.code}` }, ...lines.map((x) => el("li", {}, x))));
  }
  li.addEventListener("click", () => select(i));
  return li;
}

function renderCodes() {
  const codes = $("#codes");
  const cands = $("#candidates");
  codes.replaceChildren();
  cands.replaceChildren();
  enc.rows.forEach((row, i) => (row.list === "codes" ? codes : cands).append(codeRow(i)));
  if (!codes.children.length) codes.append(el("li", { class: "empty" }, "No code suggested."));
  $("#n-candidates").textContent = `(${cands.children.length})`;
  $("#order-note").textContent = orderNote(enc.rows);
}

export function select(i) {
  if (!enc.rows.length) return;
  enc.selected = Math.max(0, Math.min(enc.rows.length - 1, i));
  enc.pane = "codes";
  if (enc.rows[enc.selected].list === "candidates") $("#candidates-box").open = true;
  renderCodes();
  highlight();
  $(`#row-${enc.selected}`)?.scrollIntoView({ block: "nearest" });
  saveView();
}

function highlight() {
  highlightRow(enc.selected);
  $("#codes-pane").classList.toggle("pane-final", enc.pane === "final");
}

let viewTimer = 0;
export function saveView() {
  clearTimeout(viewTimer);
  const id = enc.data?.encounter_id;
  viewTimer = setTimeout(async () => {
    const view = {
      pane: enc.pane, finalSel: enc.finalSel,
      candidates: $("#candidates-box").open, suppressed: $("#suppressed-box").open,
    };
    try {
      const data = await api(`/v1/encounters/${encodeURIComponent(id)}/worksheet`, { method: "PATCH", body: { cursor: enc.selected, view } });
      if (enc.data?.encounter_id === id) enc.data.version = data.version;
    } catch { /* the position is a convenience; decisions are saved on their own */ }
  }, 300);
}

// -- decisions ------------------------------------------------------------------------------
export async function post(path, body, method = "POST") {
  const id = encodeURIComponent(enc.data.encounter_id);
  const data = await api(`/v1/encounters/${id}${path}`, { method, body });
  setData(data);
  return data;
}

export async function decide(i, action, extra = {}) {
  const { s } = enc.rows[i];
  try {
    await post("/decisions", { action, suggestion_id: s.suggestion_id, ...extra });
    const d = enc.data.worksheet.decisions[s.suggestion_id];
    say(d ? `${s.code}: ${decisionText(d)}` : `${s.code}: decision undone`);
    if (action !== "undo" && enc.selected === i && i + 1 < enc.rows.length && enc.rows[i + 1].list === "codes") select(i + 1);
  } catch (err) {
    say(err.message, true);
  }
}

function inlineForm(i, cls, ...children) {
  select(i);
  const li = $(`#row-${i}`);
  li.querySelector(".inline-form")?.remove();
  const form = el("form", { class: `inline-form ${cls}` }, ...children);
  form.addEventListener("click", (e) => e.stopPropagation());
  form.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); form.remove(); $("#codes-pane").focus(); } });
  li.append(form);
  return form;
}

export function startReject(i) {
  const reasons = enc.data.reject_reasons;
  const name = `reason-${i}`;
  const other = el("input", { type: "text", "aria-label": "Other reason", placeholder: "Other: say why", hidden: true });
  const fs = el("fieldset", {}, el("legend", {}, `Reject ${enc.rows[i].s.code} because (1–5, Enter)`),
    ...REASON_KEYS.map((k, n) => el("label", {}, el("input", { type: "radio", name, value: k, checked: n === 0 }), ` ${n + 1} ${reasons[k]}`)));
  const form = inlineForm(i, "reject-form", fs, other, el("button", { type: "submit" }, "Reject"),
    el("button", { type: "button", onclick: () => form.remove() }, "Cancel"));
  const chosen = () => form.querySelector("input[type=radio]:checked").value;
  form.addEventListener("change", () => { other.hidden = chosen() !== "other"; });
  form.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target.type === "radio") { e.preventDefault(); form.requestSubmit(); return; }
    const n = Number(e.key);
    if (e.target !== other && n >= 1 && n <= 5) {
      e.preventDefault();
      const radio = form.querySelectorAll("input[type=radio]")[n - 1];
      radio.checked = true;
      radio.focus();
      other.hidden = chosen() !== "other";
      if (!other.hidden) other.focus();
    }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const reason = chosen();
    if (reason === "other" && !other.value.trim()) { say("Say why (Other).", true); other.focus(); return; }
    decide(i, "reject", { reason, ...(reason === "other" ? { reason_text: other.value.trim() } : {}) });
  });
  form.querySelector("input[type=radio]:checked").focus();
}

export function startModify(i) {
  const input = el("input", { type: "text", placeholder: "Corrected code, e.g. E11.65", "aria-label": `Corrected code for ${enc.rows[i].s.code}` });
  const form = inlineForm(i, "modify-form", input, el("button", { type: "submit" }, "Save"),
    el("button", { type: "button", onclick: () => form.remove() }, "Cancel"));
  form.addEventListener("submit", (e) => { e.preventDefault(); if (input.value.trim()) decide(i, "modify", { final_code: input.value.trim() }); });
  input.focus();
}

export function startQuery(i) {
  const { s } = enc.rows[i];
  const q = enc.data.worksheet.queries[s.suggestion_id];
  const text = el("textarea", { rows: "3", "aria-label": `Query to the provider about ${s.code}` });
  text.value = q?.text ?? `Please clarify the documentation supporting ${s.code} (${s.title}).`;
  const answer = el("input", { type: "text", "aria-label": "Provider's answer", placeholder: "Provider's answer (to resolve)" });
  answer.value = q?.answer ?? "";
  const send = (status) => saveQuery(s, text.value, status, answer.value);
  const form = inlineForm(i, "query-form", el("p", { class: "small" }, `Query ${q?.status ?? "draft"} — Ctrl+Enter sends`), text, answer,
    el("button", { type: "button", onclick: () => send("draft") }, "Save draft"),
    el("button", { type: "submit" }, "Send"),
    el("button", { type: "button", onclick: () => send("answered") }, "Resolve"));
  form.addEventListener("submit", (e) => { e.preventDefault(); send("sent"); });
  form.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.ctrlKey) { e.preventDefault(); e.stopPropagation(); send(e.target === answer ? "answered" : "sent"); }
  });
  text.focus();
}

async function saveQuery(s, text, status, answer) {
  try {
    await post(`/queries/${encodeURIComponent(s.suggestion_id)}`, { text, status, ...(answer.trim() ? { answer } : {}) }, "PUT");
    say(`Query on ${s.code}: ${status}`);
  } catch (err) {
    say(err.message, true);
  }
}

// -- search and add -------------------------------------------------------------------------
let searchTimer = 0;
let searchSeq = 0;
export function onSearchInput() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 200);
}

export async function runSearch() {
  const q = $("#search").value.trim();
  const seq = ++searchSeq;
  if (!q) { enc.search = []; renderSearch(); return; }
  try {
    const data = await api(`/v1/codes/search?q=${encodeURIComponent(q)}&limit=8`);
    if (seq !== searchSeq) return;
    enc.search = data.results;
    enc.searchSel = 0;
    renderSearch();
  } catch (err) {
    say(err.message, true);
  }
}

function renderSearch() {
  const ul = $("#search-results");
  ul.replaceChildren(...enc.search.map((h, i) => el("li", {
    id: `hit-${i}`, role: "option", "aria-selected": String(i === enc.searchSel), class: i === enc.searchSel ? "selected" : "",
    "data-code": h.code, onclick: () => addCode(h),
  }, el("span", { class: "code" }, h.code), el("span", { class: "t" }, h.title, h.billable ? "" : " (not billable)"),
  h.via && h.via !== "words" ? el("span", { class: "via" }, h.via) : "")));
  if (!enc.search.length && $("#search").value.trim()) ul.append(el("li", { class: "empty" }, "No match."));
  const box = $("#search");
  box.setAttribute("aria-expanded", String(enc.search.length > 0));
  if (enc.search.length) box.setAttribute("aria-activedescendant", `hit-${enc.searchSel}`); else box.removeAttribute("aria-activedescendant");
}

export function onSearchKey(e) {
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    const n = enc.search.length;
    if (n) enc.searchSel = (enc.searchSel + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
    renderSearch();
  } else if (e.key === "Enter") {
    e.preventDefault();
    clearTimeout(searchTimer);
    if (enc.search[enc.searchSel] && $("#search").value.trim()) addCode(enc.search[enc.searchSel]);
    else runSearch().then(() => enc.search[0] && addCode(enc.search[0]));
  }
}

async function addCode(hit) {
  try {
    await post("/decisions", { action: "add", code: hit.code, system: hit.system });
    say(`${hit.code} added`);
    $("#search").value = "";
    enc.search = [];
    renderSearch();
  } catch (err) {
    say(err.message, true);
  }
}

export function currentRow() {
  return enc.rows.length ? enc.selected : -1;
}

export { $$ };
