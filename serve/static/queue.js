// The work queue: filters (kept in the address, so a reload shows the same list), the list of
// encounters (j/k, Enter opens) and the form that puts a new encounter in the queue.
import { $, $$, api, el, say } from "./api.js";

const STATUS_LABEL = { new: "New", in_progress: "In progress", queried: "Queried", coded: "Coded" };
export const queue = { items: [], selected: 0 };

export function filtersFromHash() {
  const q = location.hash.split("?")[1] ?? "";
  return new URLSearchParams(q);
}

function applyFiltersToForm(params) {
  const form = $("#filters");
  const statuses = (params.get("status") ?? "").split(",").filter(Boolean);
  $$("input[name=status]", form).forEach((c) => { c.checked = statuses.includes(c.value); });
  for (const name of ["setting", "from", "to", "code", "q"]) form.elements[name].value = params.get(name) ?? "";
}

function formToParams() {
  const form = $("#filters");
  const params = new URLSearchParams();
  const statuses = $$("input[name=status]:checked", form).map((c) => c.value);
  if (statuses.length) params.set("status", statuses.join(","));
  for (const name of ["setting", "from", "to", "code", "q"]) {
    const v = form.elements[name].value.trim();
    if (v) params.set(name, v);
  }
  return params;
}

export async function showQueue() {
  const params = filtersFromHash();
  applyFiltersToForm(params);
  const apiParams = new URLSearchParams();
  for (const [k, v] of params) {
    if (k === "status") v.split(",").forEach((s) => apiParams.append("status", s));
    else apiParams.set(k, v);
  }
  try {
    const data = await api(`/v1/encounters?${apiParams}`);
    queue.items = data.items;
    const last = sessionStorage.getItem("clinicode-last-encounter");
    const at = queue.items.findIndex((i) => i.encounter_id === last);
    queue.selected = at >= 0 ? at : Math.min(queue.selected, Math.max(queue.items.length - 1, 0));
    $("#queue-counts").textContent = Object.entries(data.counts).map(([s, n]) => `${STATUS_LABEL[s]} ${n}`).join(" · ");
    renderQueue();
  } catch (err) {
    say(err.message, true);
  }
}

function renderQueue() {
  const body = $("#queue tbody");
  body.replaceChildren();
  queue.items.forEach((it, i) => {
    const tr = el("tr", { "data-id": it.encounter_id, "data-status": it.status, tabindex: "-1", class: i === queue.selected ? "selected" : "" },
      el("td", {}, el("a", { href: `#/e/${encodeURIComponent(it.encounter_id)}` }, it.label || it.encounter_id)),
      el("td", {}, it.encounter_date),
      el("td", {}, it.setting),
      el("td", {}, el("span", { class: `badge st-${it.status}` }, STATUS_LABEL[it.status])),
      el("td", {}, String(it.documents)),
      el("td", { class: "mono" }, it.codes.slice(0, 6).join(" ")));
    tr.addEventListener("click", (e) => { if (e.target.tagName !== "A") openSelected(i); });
    body.append(tr);
  });
  if (!queue.items.length) body.append(el("tr", {}, el("td", { colspan: "6", class: "empty" }, "No encounter matches.")));
}

export function moveQueue(delta) {
  if (!queue.items.length) return;
  queue.selected = Math.max(0, Math.min(queue.items.length - 1, queue.selected + delta));
  $$("#queue tbody tr").forEach((tr, i) => tr.classList.toggle("selected", i === queue.selected));
  const row = $$("#queue tbody tr")[queue.selected];
  row?.scrollIntoView({ block: "nearest" });
  row?.querySelector("a")?.focus();
}

export function openSelected(i = queue.selected) {
  const it = queue.items[i];
  if (it) location.hash = `#/e/${encodeURIComponent(it.encounter_id)}`;
}

let filterTimer = 0;
function onFilterChange() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    const params = formToParams().toString();
    const hash = `#/queue${params ? "?" + params : ""}`;
    history.replaceState(null, "", hash);
    sessionStorage.setItem("clinicode-queue-hash", hash);
    showQueue();
  }, 250);
}

// -- new encounter --------------------------------------------------------------------------
function addDocument(text = "") {
  const box = $("#documents");
  const n = box.children.length + 1;
  const id = `doc-${n}`;
  box.append(el("div", { class: "doc" },
    el("div", { class: "row" },
      el("label", { for: `${id}-type` }, `Document ${n} type`),
      el("select", { id: `${id}-type`, name: "note_type" },
        ...["progress_note", "history_physical", "discharge_summary", "operative_note", "consult", "other"].map((t) => el("option", { value: t }, t.replace("_", " ")))),
    ),
    el("label", { for: id, class: "sr" }, `Document ${n} text`),
    el("textarea", { id, name: "text", rows: "10", spellcheck: "false", placeholder: "Paste the document here" })));
  $(`#${id}`).value = text;
  $(`#${id}`).focus();
}

export function focusNewEncounter() {
  $("#new-encounter input[name=label]").focus();
}

export async function submitNewEncounter() {
  const form = $("#new-encounter");
  const documents = $$(".doc", form)
    .map((d) => ({ text: $("textarea", d).value, note_type: $("select", d).value }))
    .filter((d) => d.text.trim());
  if (!documents.length) { say("Paste or open a document first.", true); return; }
  const body = {
    label: form.elements.label.value.trim(),
    encounter_date: form.elements.encounter_date.value,
    setting: form.elements.setting.value,
    documents,
  };
  say("Coding…");
  try {
    const data = await api("/v1/encounters", { method: "POST", body });
    form.reset();
    $("#documents").replaceChildren();
    addDocument();
    form.elements.encounter_date.value = new Date().toISOString().slice(0, 10);
    location.hash = `#/e/${encodeURIComponent(data.encounter_id)}`;
  } catch (err) {
    say(err.message, true);
  }
}

export function wireQueue() {
  $("#filters").addEventListener("input", onFilterChange);
  $("#filters").addEventListener("submit", (e) => e.preventDefault());
  $("#add-doc").addEventListener("click", () => addDocument());
  $("#new-encounter").addEventListener("submit", (e) => { e.preventDefault(); submitNewEncounter(); });
  $("#new-encounter").elements.encounter_date.value = new Date().toISOString().slice(0, 10);
  $("#file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const empty = $$("#documents textarea").find((t) => !t.value.trim());
    if (empty) empty.value = await file.text(); else addDocument(await file.text());
  });
  addDocument();
}
