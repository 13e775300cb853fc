// The final codes: diagnoses in sequence (principal / first-listed first; J/K or the arrows
// move a line, p makes it principal, drag and drop too), POA for inpatient diagnoses, modifiers
// and units for CPT/HCPCS lines; marking coded; exports.
import { $, $$, download, el, say } from "./api.js";
import { enc, post, saveView } from "./encounter.js";

const POA = ["Y", "N", "U", "W", "1"];
const POA_LABEL = { Y: "Y present", N: "N not present", U: "U unknown", W: "W clinically undetermined", 1: "1 exempt" };
const KIND_LABEL = { diagnosis: "Diagnoses", procedure: "Procedures (ICD-10-PCS)", item: "Service lines (CPT/HCPCS)" };

function lines() {
  return enc.data?.final ?? [];
}

export function renderFinal() {
  const box = $("#final");
  box.replaceChildren();
  const all = lines();
  enc.finalSel = Math.min(enc.finalSel, Math.max(all.length - 1, 0));
  const inpatient = enc.data.setting === "inpatient";
  for (const kind of ["diagnosis", "procedure", "item"]) {
    const mine = all.filter((ln) => ln.kind === kind);
    if (!mine.length) continue;
    const ol = el("ol", { class: "final", "aria-label": KIND_LABEL[kind] });
    for (const ln of mine) {
      const i = all.indexOf(ln);
      const selected = enc.pane === "final" && i === enc.finalSel;
      const li = el("li", {
        id: `final-${i}`, "data-key": ln.key, "data-code": ln.code, draggable: "true",
        class: selected ? "selected" : "", "aria-current": selected ? "true" : null,
      },
      el("span", { class: "seq" }, String(ln.sequence)),
      el("span", { class: "code" }, ln.code),
      el("span", { class: "title" }, ln.title,
        ln.principal ? el("span", { class: "badge principal" }, inpatient ? "principal" : "first-listed") : "",
        ln.source !== "accepted" ? el("span", { class: "badge" }, ln.source === "modified" ? `from ${ln.original_code}` : "added") : ""),
      el("span", { class: "line-actions" },
        el("button", { type: "button", "aria-label": `Move ${ln.code} up`, onclick: () => move(i, -1) }, "↑"),
        el("button", { type: "button", "aria-label": `Move ${ln.code} down`, onclick: () => move(i, 1) }, "↓"),
        kind === "diagnosis" && inpatient ? poaSelect(ln) : "",
        ln.poa_source === "note" ? el("span", { class: "small muted", title: "Documented in the note; change it if needed" }, "from note") : "",
        kind === "item" ? itemInputs(ln) : ""));
      li.addEventListener("click", () => selectFinal(i));
      li.addEventListener("dragstart", (e) => e.dataTransfer.setData("text/plain", String(i)));
      li.addEventListener("dragover", (e) => e.preventDefault());
      li.addEventListener("drop", (e) => { e.preventDefault(); dropOn(Number(e.dataTransfer.getData("text/plain")), i); });
      ol.append(li);
    }
    box.append(el("h4", {}, KIND_LABEL[kind]), ol);
  }
  if (!all.length) box.append(el("p", { class: "empty" }, "No final code yet: accept, modify or add codes."));
}

function poaSelect(ln) {
  const sel = el("select", { "aria-label": `POA for ${ln.code}`, class: "poa" },
    el("option", { value: "" }, "POA?"), ...POA.map((p) => el("option", { value: p, selected: ln.poa === p }, POA_LABEL[p])));
  sel.addEventListener("change", () => sel.value && setPoa(ln.key, sel.value));
  sel.addEventListener("click", (e) => e.stopPropagation());
  return sel;
}

function itemInputs(ln) {
  const mods = el("input", { type: "text", size: "6", value: ln.modifiers.join(" "), "aria-label": `Modifiers for ${ln.code}`, placeholder: "mods" });
  const units = el("input", { type: "number", min: "1", max: "999", value: String(ln.units), "aria-label": `Units for ${ln.code}`, class: "units" });
  mods.addEventListener("change", () => patch({ modifiers: { [ln.key]: mods.value.split(/[\s,]+/).filter(Boolean) } }));
  units.addEventListener("change", () => patch({ units: { [ln.key]: Number(units.value) || 1 } }));
  for (const x of [mods, units]) x.addEventListener("click", (e) => e.stopPropagation());
  return [mods, units];
}

async function patch(body) {
  try {
    await post("/worksheet", body, "PATCH");
  } catch (err) {
    say(err.message, true);
  }
}

export function selectFinal(i) {
  const n = lines().length;
  if (!n) { say("No final code yet.", true); return; }
  enc.pane = "final";
  enc.finalSel = Math.max(0, Math.min(n - 1, i));
  renderFinal();
  $("#codes-pane").classList.add("pane-final");
  $(`#final-${enc.finalSel}`)?.scrollIntoView({ block: "nearest" });
  saveView();
}

export function leaveFinal() {
  enc.pane = "codes";
  renderFinal();
  $("#codes-pane").classList.remove("pane-final");
  saveView();
}

function sequenceWith(order) {
  return patch({ sequence: order.map((ln) => ln.key) });
}

export async function move(i, delta) {
  const all = [...lines()];
  const ln = all[i];
  // swap with the next line of the same kind in that direction
  let j = i + delta;
  while (j >= 0 && j < all.length && all[j].kind !== ln.kind) j += delta;
  if (j < 0 || j >= all.length) return;
  [all[i], all[j]] = [all[j], all[i]];
  enc.finalSel = j;
  await sequenceWith(all);
  say(`${ln.code} is now #${enc.data.final.find((x) => x.key === ln.key)?.sequence}`);
}

async function dropOn(from, to) {
  if (from === to || Number.isNaN(from)) return;
  const all = [...lines()];
  if (all[from].kind !== all[to].kind) return;
  const [ln] = all.splice(from, 1);
  all.splice(to, 0, ln);
  enc.finalSel = to;
  await sequenceWith(all);
}

export async function makePrincipal(i) {
  const all = [...lines()];
  const ln = all[i];
  if (!ln || ln.kind !== "diagnosis") { say("Only a diagnosis can be principal.", true); return; }
  all.splice(i, 1);
  all.unshift(ln);
  enc.finalSel = 0;
  await sequenceWith(all);
  say(`${ln.code} is principal`);
}

export async function setPoa(key, value) {
  if (enc.data.setting !== "inpatient") { say("POA is for inpatient diagnoses.", true); return; }
  await patch({ poa: { [key]: value } });
  say(`POA ${value} for ${key.split("|")[1]}`);
}

export function poaKey(letter) {
  const ln = lines()[enc.finalSel];
  if (!ln || ln.kind !== "diagnosis") { say("Select a final diagnosis first (f).", true); return; }
  setPoa(ln.key, letter.toUpperCase());
}

export async function complete() {
  try {
    await post("/complete", {});
    say("Encounter coded");
  } catch (err) {
    say(err.message, true);
  }
}

export async function reopen() {
  try {
    await post("/reopen", {});
    say("Encounter reopened");
  } catch (err) {
    say(err.message, true);
  }
}

export async function exportAs(format) {
  const id = enc.data.encounter_id;
  const name = { json: `${id}.json`, csv: `${id}.csv`, fhir: `${id}.claim.json` }[format];
  try {
    await download(`/v1/encounters/${encodeURIComponent(id)}/export?format=${format}`, name);
    say(`Exported ${name}`);
  } catch (err) {
    say(err.message, true);
  }
}

export function wireFinal() {
  $("#complete").addEventListener("click", complete);
  $("#reopen").addEventListener("click", reopen);
  $("#export-json").addEventListener("click", () => exportAs("json"));
  $("#export-csv").addEventListener("click", () => exportAs("csv"));
  $("#export-fhir").addEventListener("click", () => exportAs("fhir"));
}

export { $$ };
