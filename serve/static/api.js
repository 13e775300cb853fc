// Shared helpers of the review page: the API client (the key stays in sessionStorage), DOM
// building (text only: note text is never parsed as HTML), the status line and downloads.
export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const KEY_STORE = "clinicode-api-key";

export const session = {
  key: sessionStorage.getItem(KEY_STORE),
  onUnauthorized: () => {},
  save(key) { this.key = key; if (key) sessionStorage.setItem(KEY_STORE, key); else sessionStorage.removeItem(KEY_STORE); },
};

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function detailOf(body, status) {
  if (!body) return `HTTP ${status}`;
  if (body.message) return body.message;
  if (typeof body.detail === "string") return body.detail;
  return JSON.stringify(body.detail ?? body);
}

function headers(body) {
  return { "X-API-Key": session.key ?? "", ...(body !== undefined ? { "Content-Type": "application/json" } : {}) };
}

export async function api(path, { method = "GET", body } = {}) {
  const res = await fetch(path, { method, headers: headers(body), body: body !== undefined ? JSON.stringify(body) : undefined });
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (res.status === 401) session.onUnauthorized("Your API key was not accepted; sign in again.");
  if (!res.ok) throw new ApiError(res.status, detailOf(data, res.status));
  return data;
}

export async function download(path, filename) {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) {
    let data = null;
    try { data = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, detailOf(data, res.status));
  }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: filename, hidden: "" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function say(message, isError = false) {
  const node = $("#status");
  node.textContent = message;
  node.classList.toggle("error", isError);
  clearTimeout(say.timer);
  if (message) say.timer = setTimeout(() => { node.textContent = ""; }, isError ? 8000 : 3000);
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false || c === "") continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function typing() {
  return /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName ?? "");
}
