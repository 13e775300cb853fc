// Clinicode review page: plain ES module, no build step. Note text is only ever set as
// textContent (never innerHTML) and is sent to nothing but this server's /v1 API.
const $ = (sel) => document.querySelector(sel);
const KEY_STORE = "clinicode-api-key";

const state = {
  key: sessionStorage.getItem(KEY_STORE),
  noteId: null,
  text: "",
  result: null,
  rows: [],            // suggested codes then candidates: [{s, list}]
  decisions: new Map(), // suggestion_id -> {action, final_code}
  added: [],            // [{system, code, title}]
  selected: -1,
};

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function detailOf(body, status) {
  if (!body) return `HTTP ${status}`;
  if (body.message) return body.message;
  if (typeof body.detail === "string") return body.detail;
  return JSON.stringify(body.detail ?? body);
}

async function api(path, { method = "GET", body } = {}) {
  const res = await fetch(path, {
    method,
    headers: { "X-API-Key": state.key ?? "", ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (res.status === 401) signOut("Your API key was not accepted; sign in again.");
  if (!res.ok) throw new ApiError(res.status, detailOf(data, res.status));
  return { data, headers: res.headers };
}

function say(message, isError = false) {
  const el = $("#status");
  el.textContent = message;
  el.classList.toggle("error", isError);
  clearTimeout(say.timer);
  if (message) say.timer = setTimeout(() => { el.textContent = ""; }, isError ? 8000 : 3000);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// -- sign in ------------------------------------------------------------------------------
async function signIn(key) {
  state.key = key;
  try {
    const { data } = await api("/v1/me");
    sessionStorage.setItem(KEY_STORE, key);
    $("#key-id").textContent = `${data.key_id} (${data.role})`;
    $("#login").hidden = true;
    $("#work").hidden = false;
    $("#who").hidden = false;
    $("#note-text").focus();
  } catch (err) {
    state.key = null;
    sessionStorage.removeItem(KEY_STORE);
    showLogin();
    say(err.message, true);
  }
}

function signOut(message) {
  state.key = null;
  sessionStorage.removeItem(KEY_STORE);
  showLogin();
  if (message) say(message, true);
}

function showLogin() {
  $("#login").hidden = false;
  $("#work").hidden = true;
  $("#who").hidden = true;
  $("#key-input").focus();
}

// -- suggest ------------------------------------------------------------------------------
async function suggest() {
  const text = $("#note-text").value;
  if (!text.trim()) { say("Paste or open a note first.", true); return; }
  const setting = $("#setting").value;
  say("Coding…");
  try {
    const { data, headers } = await api("/v1/suggest", { method: "POST", body: { text, setting } });
    state.text = text;
    state.result = data;
    state.noteId = headers.get("X-Clinicode-Note-Id");
    state.decisions = new Map();
    state.added = [];
    state.rows = [
      ...data.codes.map((s) => ({ s, list: "codes" })),
      ...data.candidates.map((s) => ({ s, list: "candidates" })),
    ];
    state.selected = data.codes.length ? 0 : -1;
    $("#note-input").hidden = true;
    $("#note-review").hidden = false;
    const versions = Object.values(data.code_sets).join(", ");
    $("#note-meta").textContent =
      `${setting} · model ${data.model.name} ${data.model.version} · ${versions} · note ${state.noteId}`;
    render();
    say(`${data.codes.length} codes suggested`);
  } catch (err) {
    say(err.message, true);
  }
}

function editNote() {
  $("#note-input").hidden = false;
  $("#note-review").hidden = true;
  $("#note-text").focus();
}

// -- rendering ----------------------------------------------------------------------------
function render() {
  renderNote();
  renderCodes();
  renderSuppressed();
  renderFinal();
  highlight();
}

function renderNote() {
  const { text, result } = state;
  const spans = [];
  state.rows.forEach(({ s }, i) => {
    for (const e of s.evidence) spans.push({ start: e.start, end: e.end, kind: "ev", ref: i });
  });
  result.suppressed.forEach((s, j) => {
    for (const e of s.evidence) spans.push({ start: e.start, end: e.end, kind: "sup", ref: j, reason: s.reason, code: s.code });
  });
  const cuts = new Set([0, text.length]);
  for (const sp of spans) {
    if (sp.start >= 0 && sp.end <= text.length && sp.start < sp.end) { cuts.add(sp.start); cuts.add(sp.end); }
  }
  const bounds = [...cuts].sort((a, b) => a - b);
  const view = $("#note-view");
  view.replaceChildren();
  for (let k = 0; k + 1 < bounds.length; k++) {
    const [a, b] = [bounds[k], bounds[k + 1]];
    const covering = spans.filter((sp) => sp.start <= a && sp.end >= b);
    const piece = text.slice(a, b);
    const ev = covering.filter((sp) => sp.kind === "ev");
    const sup = covering.filter((sp) => sp.kind === "sup");
    if (ev.length) {
      const m = el("mark", { class: "ev", "data-rows": ev.map((sp) => sp.ref).join(" ") }, piece);
      m.title = ev.map((sp) => state.rows[sp.ref].s.code).join(", ");
      m.addEventListener("click", () => select(ev[0].ref, true));
      view.append(m);
    } else if (sup.length) {
      const s = el("s", { class: "sup", "data-sup": sup.map((sp) => sp.ref).join(" ") }, piece);
      s.title = sup.map((sp) => `${sp.code} suppressed: ${sp.reason ?? "no reason given"}`).join("\n");
      view.append(s);
    } else {
      view.append(document.createTextNode(piece));
    }
  }
}

// the code as billed: with its modifiers (20610-RT) and units (J3301 ×4)
function billedCode(s) {
  const mods = s.modifiers?.length ? "-" + s.modifiers.join("-") : "";
  return `${s.code}${mods}${s.units ? " ×" + s.units : ""}`;
}

function codeRow(i) {
  const { s } = state.rows[i];
  const d = state.decisions.get(s.suggestion_id);
  const li = el("li", { "data-row": i, "data-code": s.code });
  if (d) li.className = { accept: "accepted", reject: "rejected", modify: "modified" }[d.action];
  const pct = Math.round(s.score * 100);
  const where = s.evidence.length ? `${s.evidence.length} evidence span${s.evidence.length > 1 ? "s" : ""}` : "no evidence span";
  li.append(
    el("span", { class: "code" }, billedCode(s)),
    el("span", { class: "title" }, s.title),
    el("span", { class: "meta" }, `${s.system} · ${pct}% · ${where}`,
      d ? el("span", { class: "decision" }, ` · ${d.action}${d.final_code ? " → " + d.final_code : ""}`) : ""),
    el("span", { class: "actions" },
      el("button", { type: "button", title: "Accept (a)", onclick: (e) => { e.stopPropagation(); decide(i, "accept"); } }, "Accept"),
      el("button", { type: "button", title: "Reject (r)", onclick: (e) => { e.stopPropagation(); decide(i, "reject"); } }, "Reject"),
      el("button", { type: "button", title: "Modify (m)", onclick: (e) => { e.stopPropagation(); startModify(i); } }, "Modify")),
  );
  if (s.explanation?.length) li.title = s.explanation.join("\n");
  li.addEventListener("click", () => select(i, false));
  return li;
}

function renderCodes() {
  const codes = $("#codes");
  const cands = $("#candidates");
  codes.replaceChildren();
  cands.replaceChildren();
  state.rows.forEach((row, i) => (row.list === "codes" ? codes : cands).append(codeRow(i)));
  if (!codes.children.length) codes.append(el("li", { class: "empty" }, "No code suggested."));
  $("#n-candidates").textContent = `(${cands.children.length})`;
}

function renderSuppressed() {
  const ul = $("#suppressed");
  ul.replaceChildren();
  state.result.suppressed.forEach((s, j) => {
    const li = el("li", { "data-sup": j },
      el("span", { class: "code" }, s.code), " ", s.title, " ",
      el("span", { class: "reason" }, `— ${s.reason ?? "suppressed"}`));
    li.addEventListener("click", () => {
      document.querySelectorAll("s.sup").forEach((x) => x.classList.toggle("active", x.dataset.sup.split(" ").includes(String(j))));
      document.querySelector(`s.sup[data-sup~="${j}"]`)?.scrollIntoView({ block: "center", behavior: "smooth" });
    });
    ul.append(li);
  });
  if (!ul.children.length) ul.append(el("li", { class: "empty" }, "Nothing suppressed."));
}

function finalCodes() {
  const out = [];
  for (const { s } of state.rows) {
    const d = state.decisions.get(s.suggestion_id);
    if (d?.action === "accept") out.push(`${billedCode(s)}\t${s.title}`);
    if (d?.action === "modify") out.push(`${d.final_code}\t(modified from ${s.code})`);
  }
  for (const a of state.added) out.push(`${a.code}\t${a.title}`);
  return out;
}

function renderFinal() {
  $("#final").value = finalCodes().join("\n");
}

function select(i, scrollList) {
  state.selected = i;
  highlight();
  const li = document.querySelector(`li[data-row="${i}"]`);
  if (li) {
    if (state.rows[i].list === "candidates") $("#candidates-box").open = true;
    if (scrollList) li.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }
  document.querySelector(`mark.ev.active`)?.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function highlight() {
  const i = String(state.selected);
  document.querySelectorAll("mark.ev").forEach((m) => m.classList.toggle("active", m.dataset.rows.split(" ").includes(i)));
  document.querySelectorAll("li[data-row]").forEach((li) => li.classList.toggle("selected", li.dataset.row === i));
}

// -- decisions ----------------------------------------------------------------------------
async function decide(i, action, finalCode) {
  const { s } = state.rows[i];
  const body = { suggestion_id: s.suggestion_id, action };
  if (finalCode) body.final_code = finalCode;
  try {
    const { data } = await api("/v1/feedback", { method: "POST", body });
    state.decisions.set(s.suggestion_id, { action, final_code: data.final_code });
    renderCodes();
    renderFinal();
    highlight();
    say(`${s.code}: ${action}${data.final_code ? " → " + data.final_code : ""} recorded`);
  } catch (err) {
    say(err.message, true);
  }
}

function startModify(i) {
  select(i, false);
  const li = document.querySelector(`li[data-row="${i}"]`);
  if (!li || li.querySelector(".modify-form")) return;
  const input = el("input", { type: "text", placeholder: "Corrected code, e.g. E11.65", "aria-label": "Corrected code" });
  const form = el("form", { class: "modify-form" }, input, el("button", { type: "submit" }, "Save"),
    el("button", { type: "button", onclick: () => form.remove() }, "Cancel"));
  form.addEventListener("submit", (e) => { e.preventDefault(); if (input.value.trim()) decide(i, "modify", input.value.trim()); });
  form.addEventListener("click", (e) => e.stopPropagation());
  li.append(form);
  input.focus();
}

// -- search and add ---------------------------------------------------------------------
let searchTimer = 0;
function onSearchInput() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 250);
}

async function runSearch() {
  const q = $("#search").value.trim();
  const ul = $("#search-results");
  if (!q) { ul.replaceChildren(); return; }
  try {
    const { data } = await api(`/v1/codes/search?q=${encodeURIComponent(q)}&limit=8`);
    ul.replaceChildren(...data.results.map((h) => el("li", {},
      el("span", { class: "code" }, h.code),
      el("span", { class: "t" }, h.title, h.billable ? "" : " (not billable)"),
      el("button", { type: "button", onclick: () => addCode(h) }, "Add"))));
    if (!data.results.length) ul.append(el("li", { class: "empty" }, "No match."));
  } catch (err) {
    say(err.message, true);
  }
}

async function addCode(hit) {
  if (!state.noteId) { say("Code a note first.", true); return; }
  try {
    await api("/v1/feedback", { method: "POST", body: { note_id: state.noteId, code: hit.code, system: hit.system, action: "add" } });
    state.added.push({ system: hit.system, code: hit.code, title: hit.title });
    renderFinal();
    say(`${hit.code} added`);
  } catch (err) {
    say(err.message, true);
  }
}

async function copyFinal() {
  const text = $("#final").value;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    $("#final").select();
    document.execCommand("copy");
  }
  say("Final code list copied");
}

// -- keyboard -----------------------------------------------------------------------------
function onKey(e) {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !$("#work").hidden) { e.preventDefault(); suggest(); return; }
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName ?? "");
  if (typing || e.ctrlKey || e.metaKey || e.altKey) {
    if (e.key === "Escape") document.activeElement.blur();
    return;
  }
  if (e.key === "?") { $("#help").showModal(); return; }
  if (!state.result || $("#note-review").hidden) return;
  const n = state.rows.length;
  const act = {
    j: () => n && select(Math.min(state.selected + 1, n - 1), true),
    ArrowDown: () => n && select(Math.min(state.selected + 1, n - 1), true),
    k: () => n && select(Math.max(state.selected - 1, 0), true),
    ArrowUp: () => n && select(Math.max(state.selected - 1, 0), true),
    a: () => state.selected >= 0 && decide(state.selected, "accept"),
    r: () => state.selected >= 0 && decide(state.selected, "reject"),
    m: () => state.selected >= 0 && startModify(state.selected),
    "/": () => $("#search").focus(),
    e: editNote,
    c: copyFinal,
  }[e.key];
  if (act) { e.preventDefault(); act(); }
}

// -- wiring -------------------------------------------------------------------------------
$("#login").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#key-input").value.trim()); });
$("#sign-out").addEventListener("click", () => signOut());
$("#suggest").addEventListener("click", suggest);
$("#edit-note").addEventListener("click", editNote);
$("#search").addEventListener("input", onSearchInput);
$("#copy").addEventListener("click", copyFinal);
$("#help-btn").addEventListener("click", () => $("#help").showModal());
$("#file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (file) $("#note-text").value = await file.text();
});
document.addEventListener("keydown", onKey);

if (state.key) signIn(state.key); else showLogin();
