// Clinicode workbench: plain ES modules, no build step. Note text is only ever set as text
// (never as HTML) and is sent to nothing but this server's /v1 API. The address says where the
// coder is (#/queue?filters or #/e/ID), so a reload comes back to the same place.
import { $, api, say, session, typing } from "./api.js";
import { moveQueue, openSelected, showQueue, submitNewEncounter, focusNewEncounter, wireQueue } from "./queue.js";
import {
  currentRow, decide, enc, onSearchInput, onSearchKey, openEncounter, saveView, select,
  startModify, startQuery, startReject,
} from "./encounter.js";
import { complete, exportAs, leaveFinal, makePrincipal, move, poaKey, selectFinal, wireFinal } from "./final.js";

// -- sign in --------------------------------------------------------------------------------
async function signIn(key) {
  session.save(key);
  try {
    const data = await api("/v1/me");
    $("#key-id").textContent = `${data.key_id} (${data.role})`;
    $("#login").hidden = true;
    $("#who").hidden = false;
    route();
  } catch (err) {
    session.save(null);
    showLogin();
    say(err.message, true);
  }
}

function signOut(message) {
  session.save(null);
  showLogin();
  if (message) say(message, true);
}
session.onUnauthorized = signOut;

function showLogin() {
  $("#login").hidden = false;
  $("#work").hidden = true;
  $("#queue-view").hidden = true;
  $("#who").hidden = true;
  $("#key-input").focus();
}

// -- routing --------------------------------------------------------------------------------
function route() {
  if (!session.key) { showLogin(); return; }
  const m = location.hash.match(/^#\/e\/([^?]+)/);
  // Nothing of the view left before stays on screen while the next one loads.
  $("#queue tbody").replaceChildren();
  for (const sel of ["#codes", "#candidates", "#final", "#note-view", "#search-results"]) $(sel).replaceChildren();
  if (m) {
    $("#queue-view").hidden = true;
    $("#work").hidden = false;
    enc.data = null;
    $("#note-h").textContent = "Loading…";
    openEncounter(decodeURIComponent(m[1]));
  } else {
    $("#work").hidden = true;
    $("#queue-view").hidden = false;
    enc.data = null;
    showQueue().then(() => $("#queue tbody tr.selected a")?.focus());
  }
}

function toQueue() {
  const back = sessionStorage.getItem("clinicode-queue-hash") ?? "#/queue";
  location.hash = back;
}

// -- keyboard -------------------------------------------------------------------------------
let exportArmed = false;

function queueKey(e) {
  const act = {
    j: () => moveQueue(1), ArrowDown: () => moveQueue(1),
    k: () => moveQueue(-1), ArrowUp: () => moveQueue(-1),
    Enter: () => openSelected(), o: () => openSelected(),
    n: focusNewEncounter,
    "/": () => $("#filters input[name=code]").focus(),
  }[e.key];
  if (act) { e.preventDefault(); act(); }
}

function finalKey(e) {
  const i = enc.finalSel;
  const act = {
    j: () => selectFinal(i + 1), ArrowDown: () => selectFinal(i + 1),
    k: () => selectFinal(i - 1), ArrowUp: () => selectFinal(i - 1),
    J: () => move(i, 1), K: () => move(i, -1),
    p: () => makePrincipal(i),
    y: () => poaKey("Y"), n: () => poaKey("N"), u: () => poaKey("U"), w: () => poaKey("W"), 1: () => poaKey("1"),
    f: leaveFinal, Escape: leaveFinal,
  }[e.key];
  if (act) { e.preventDefault(); act(); return true; }
  return false;
}

function encounterKey(e) {
  if (exportArmed) {
    exportArmed = false;
    const fmt = { j: "json", J: "json", c: "csv", C: "csv", f: "fhir", F: "fhir" }[e.key];
    if (fmt) { e.preventDefault(); exportAs(fmt); return; }
  }
  if (enc.pane === "final" && finalKey(e)) return;
  const i = currentRow();
  const n = enc.rows.length;
  const act = {
    j: () => n && select(enc.selected + 1), ArrowDown: () => n && select(enc.selected + 1),
    k: () => n && select(enc.selected - 1), ArrowUp: () => n && select(enc.selected - 1),
    a: () => i >= 0 && decide(i, "accept"),
    r: () => i >= 0 && startReject(i),
    m: () => i >= 0 && startModify(i),
    u: () => i >= 0 && decide(i, "undo"),
    q: () => i >= 0 && startQuery(i),
    "/": () => $("#search").focus(),
    f: () => selectFinal(enc.finalSel),
    c: () => { $("#candidates-box").open = !$("#candidates-box").open; saveView(); },
    s: () => { $("#suppressed-box").open = !$("#suppressed-box").open; saveView(); },
    x: () => { exportArmed = true; say("Export: J JSON · C CSV · F FHIR Claim"); },
  }[e.key];
  if (act) { e.preventDefault(); act(); }
}

function onKey(e) {
  const inWork = !$("#work").hidden;
  const inQueue = !$("#queue-view").hidden;
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    if (inQueue && $("#new-encounter").contains(document.activeElement)) { e.preventDefault(); submitNewEncounter(); return; }
    if (inWork && !typing() && enc.data) { e.preventDefault(); complete(); return; }
  }
  if (typing() || e.ctrlKey || e.metaKey || e.altKey) {
    if (e.key === "Escape" && document.activeElement !== $("#search")) document.activeElement.blur();
    if (e.key === "Escape" && document.activeElement === $("#search")) { $("#search").blur(); $("#codes-pane").focus(); }
    return;
  }
  if ($("#help").open) return;
  if (e.key === "?") { e.preventDefault(); $("#help").showModal(); return; }
  if (e.key === "b" && inWork) { e.preventDefault(); toQueue(); return; }
  if (inQueue) queueKey(e);
  else if (inWork && enc.data) encounterKey(e);
}

// -- wiring ---------------------------------------------------------------------------------
$("#login").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#key-input").value.trim()); });
$("#sign-out").addEventListener("click", () => signOut());
$("#to-queue").addEventListener("click", toQueue);
$("#help-btn").addEventListener("click", () => $("#help").showModal());
$("#search").addEventListener("input", onSearchInput);
$("#search").addEventListener("keydown", onSearchKey);
$("#candidates-box").addEventListener("toggle", () => enc.data && saveView());
$("#suppressed-box").addEventListener("toggle", () => enc.data && saveView());
$("#codes-pane").tabIndex = -1;
$("#final").tabIndex = -1;
wireQueue();
wireFinal();
document.addEventListener("keydown", onKey);
window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#/queue")) sessionStorage.setItem("clinicode-queue-hash", location.hash);
  route();
});

if (session.key) signIn(session.key); else showLogin();
