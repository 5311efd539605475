// GET / on the admin listener: one self-contained HTML page (inline style and script, no external
// asset) in the spirit of HAProxy's stats page. It polls /api/status, /api/backends and /api/routes
// every second and computes rates from the difference between polls; its buttons post drain /
// enable / weight. Backends are grouped by pool (a header row per pool, HAProxy's "backend"
// blocks); the route table below shows each route's hits and hit rate, and the L4 listeners'
// table (status-page-l4.ts) their connections and bytes.
//
// The page itself holds no data, so it is served without a token; every call it makes carries the
// token (from ?token=, #token=, or a prompt; kept in sessionStorage, removed from the address bar)
// and the X-Sluice-Admin header that POSTs need. Rendering uses textContent only: nothing from the
// API is ever parsed as HTML. The Content-Security-Policy allows exactly this script and style.

import { createHash } from 'node:crypto';
import { L4_BODY, L4_SCRIPT } from './status-page-l4.js';

const STYLE = `
:root { --up: #2e7d32; --down: #c62828; --eject: #ef6c00; --drain: #1565c0; --off: #757575; }
* { box-sizing: border-box; }
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1a1a1a; background: #f5f6f8; }
header { background: #263238; color: #eceff1; padding: 10px 16px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 16px; margin: 0; letter-spacing: .5px; }
header .kv { opacity: .9; }
header .kv b { font-weight: 600; }
#conn { margin-left: auto; font-weight: 600; }
#conn.bad { color: #ff8a80; }
main { padding: 12px 16px; }
table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
th, td { padding: 5px 8px; border-bottom: 1px solid #e3e6ea; text-align: right; white-space: nowrap; }
th { background: #eceff1; font-weight: 600; position: sticky; top: 0; }
th:first-child, td:first-child, td.state, th.state { text-align: left; }
tr.up td.state { color: var(--up); }
tr.down td.state { color: var(--down); }
tr.ejected td.state { color: var(--eject); }
tr.draining td.state { color: var(--drain); }
tr.disabled td.state, tr.off td.state { color: var(--off); }
tr.down { background: #ffebee; }
tr.draining, tr.disabled, tr.off { background: #f1f3f5; }
td.state { font-weight: 700; text-transform: uppercase; }
td.state::before { content: "\\25CF  "; }
td.bad { color: var(--down); font-weight: 600; }
tr.pool th { text-align: left; background: #cfd8dc; position: static; }
tr.pool th .sub { font-weight: 400; margin-left: 12px; opacity: .8; }
h2 { font-size: 14px; margin: 16px 0 6px; }
#routes td.match { text-align: left; font-family: ui-monospace, monospace; white-space: normal; }
#routes td.action, #routes td.name, #routes th.name { text-align: left; }
button { font: inherit; padding: 2px 8px; margin-left: 4px; cursor: pointer; border: 1px solid #b0bec5; border-radius: 3px; background: #fff; }
button:hover { background: #eceff1; }
#message { margin: 8px 0; min-height: 1.4em; color: var(--down); }
footer { padding: 8px 16px; color: #607d8b; }
`;

const SCRIPT = `
"use strict";
const POLL_MS = 1000;
const KEY = "sluice-admin-token";
let token = sessionStorage.getItem(KEY) || "";
(function takeTokenFromUrl() {
  const url = new URL(location.href);
  const fromQuery = url.searchParams.get("token");
  const fromHash = new URLSearchParams(url.hash.slice(1)).get("token");
  const found = fromQuery || fromHash;
  if (!found) return;
  token = found;
  sessionStorage.setItem(KEY, token);
  url.searchParams.delete("token");
  url.hash = "";
  history.replaceState(null, "", url.pathname + url.search);
})();

const $ = (id) => document.getElementById(id);
const previous = new Map();
let asked = false;

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function call(method, path, body) {
  const init = { method, cache: "no-store", headers: headers(method === "POST" ? { "X-Sluice-Admin": "1", "Content-Type": "application/json" } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if ((res.status === 401 || res.status === 403) && !asked) {
    asked = true;
    const given = prompt(res.status === 401 ? "Admin token:" : "Wrong token. Admin token:");
    if (given) {
      token = given.trim();
      sessionStorage.setItem(KEY, token);
      asked = false;
      return call(method, path, body);
    }
  }
  return res;
}

function fmtMs(v) {
  if (v === null || v === undefined) return "\\u2014";
  if (v >= 1000) return (v / 1000).toFixed(2) + " s";
  if (v >= 10) return v.toFixed(0) + " ms";
  return v.toFixed(2) + " ms";
}
function fmtDuration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + Math.floor(s % 60) + "s";
}
function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}
function button(td, label, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = cls;
  b.addEventListener("click", onClick);
  td.appendChild(b);
}

// By slot: the same host:port may be a backend of two pools.
async function act(slot, action, body, label) {
  const res = await call("POST", "/api/backends/" + encodeURIComponent(slot) + "/" + action, body);
  $("message").textContent = res.ok ? "" : action + " " + label + ": " + res.status + " " + (await res.text()).trim();
  await refresh();
}

function poolRow(name, members) {
  const tr = document.createElement("tr");
  tr.className = "pool";
  tr.dataset.pool = name;
  const th = document.createElement("th");
  th.colSpan = 14;
  th.textContent = "pool " + name;
  const sub = document.createElement("span");
  sub.className = "sub";
  sub.textContent = members.filter((b) => b.available).length + " / " + members.length + " up";
  th.appendChild(sub);
  tr.appendChild(th);
  return tr;
}

function render(list, now) {
  const rows = document.createDocumentFragment();
  let up = 0;
  const pools = new Map();
  for (const b of list) {
    const name = b.pool || "default";
    if (!pools.has(name)) pools.set(name, []);
    pools.get(name).push(b);
  }
  for (const [name, members] of pools) {
    rows.appendChild(poolRow(name, members));
    for (const b of members) rows.appendChild(backendRow(b, now));
    for (const b of members) if (b.available) up++;
  }
  $("rows").replaceChildren(rows);
  $("up").textContent = up + " / " + list.length;
}

function backendRow(b, now) {
  const finished = b.responses["1xx"] + b.responses["2xx"] + b.responses["3xx"] + b.responses["4xx"] + b.responses["5xx"];
  const failed = b.responses["5xx"];
  const key = b.pool + "/" + b.slot;
  const before = previous.get(key);
  previous.set(key, { t: now, finished, failed });
  let rate = "\\u2014", errorRate = "\\u2014", errorBad = false;
  if (before && now > before.t) {
    const dn = finished - before.finished;
    rate = (dn * 1000 / (now - before.t)).toFixed(1);
    if (dn > 0) {
      const share = (failed - before.failed) / dn;
      errorRate = (share * 100).toFixed(1) + "%";
      errorBad = share > 0;
    }
  }
  const tr = document.createElement("tr");
  tr.className = b.state;
  tr.dataset.backend = b.id;
  tr.dataset.pool = b.pool;
  cell(tr, b.id).title = b.url;
  cell(tr, b.state, "state").title = "health " + b.health + ", admin " + b.admin + (b.ejected ? ", ejected" : "");
  cell(tr, String(b.weight), "weight");
  cell(tr, String(b.inFlight), "inflight");
  cell(tr, String(b.openConnections));
  const w = b.websockets;
  cell(tr, String(w.open), "websockets").title =
    "messages to backend " + w.messagesToBackend + " (" + w.bytesToBackend + " B), to clients " + w.messagesToClient + " (" + w.bytesToClient + " B)";
  cell(tr, rate, "rate");
  cell(tr, errorRate, errorBad ? "errors bad" : "errors");
  cell(tr, fmtMs(b.ewmaMs), "ewma");
  cell(tr, b.latency.count ? fmtMs(b.latency.p50Ms) : "\\u2014", "p50");
  cell(tr, b.latency.count ? fmtMs(b.latency.p99Ms) : "\\u2014", "p99");
  cell(tr, String(b.requests), "requests");
  const e = b.errors;
  cell(tr, String(e.connect + e.timeout + e.reset + e.protocol), "upstream-errors").title =
    "connect " + e.connect + ", timeout " + e.timeout + ", reset " + e.reset + ", protocol " + e.protocol;
  cell(tr, String(b.ejections));
  const actions = cell(tr, "", "actions");
  if (b.admin === "enabled") button(actions, "Drain", "drain", () => act(String(b.slot), "drain", undefined, b.id));
  else button(actions, "Enable", "enable", () => act(String(b.slot), "enable", undefined, b.id));
  button(actions, "Weight\\u2026", "set-weight", () => {
    const w = prompt("Weight for " + b.id + " (0 to 1000):", String(b.weight));
    if (w !== null && w.trim() !== "") act(String(b.slot), "weight", { weight: Number(w) }, b.id);
  });
  return tr;
}

${L4_SCRIPT}
const previousHits = new Map();
function matchText(m) {
  const parts = [];
  for (const [k, v] of Object.entries(m)) parts.push(k + " " + (typeof v === "string" ? v : JSON.stringify(v)));
  return parts.length ? parts.join(", ") : "(every request)";
}

function renderRoutes(routes, now) {
  const rows = document.createDocumentFragment();
  for (const r of routes) {
    const before = previousHits.get(r.name);
    previousHits.set(r.name, { t: now, hits: r.hits });
    let rate = "\u2014";
    if (before && now > before.t && r.hits >= before.hits) rate = ((r.hits - before.hits) * 1000 / (now - before.t)).toFixed(1);
    const tr = document.createElement("tr");
    tr.dataset.route = r.name;
    cell(tr, String(r.index));
    cell(tr, r.name, "name");
    cell(tr, matchText(r.match), "match");
    cell(tr, r.action, "action");
    cell(tr, String(r.hits), "hits");
    cell(tr, rate, "rate");
    rows.appendChild(tr);
  }
  $("route-rows").replaceChildren(rows);
  $("route-count").textContent = String(routes.length);
}

async function refresh() {
  try {
    const [statusRes, backendsRes, routesRes] = await Promise.all([call("GET", "/api/status"), call("GET", "/api/backends"), call("GET", "/api/routes")]);
    const bad = [statusRes, backendsRes, routesRes].find((r) => !r.ok);
    if (bad) throw new Error("HTTP " + bad.status);
    const status = await statusRes.json();
    const data = await backendsRes.json();
    const routing = await routesRes.json();
    $("version").textContent = status.version;
    $("uptime").textContent = fmtDuration(status.uptimeSeconds);
    $("workers").textContent = status.workers.running + " / " + status.workers.configured;
    $("restarts").textContent = String(status.workers.restarts);
    $("balancer").textContent = status.balancer;
    const now = Date.now();
    render(data.backends, now);
    renderRoutes(routing.routes, now);
    renderL4(status.l4 || [], now);
    $("conn").textContent = "live " + new Date().toLocaleTimeString();
    $("conn").className = "";
  } catch (err) {
    $("conn").textContent = "no data: " + err.message;
    $("conn").className = "bad";
  }
}

refresh();
setInterval(refresh, POLL_MS);
`;

const BODY = `
<header>
  <h1>Sluice</h1>
  <span class="kv">version <b id="version">?</b></span>
  <span class="kv">uptime <b id="uptime">?</b></span>
  <span class="kv">workers <b id="workers">?</b></span>
  <span class="kv">restarts <b id="restarts">?</b></span>
  <span class="kv">balancer <b id="balancer">?</b></span>
  <span class="kv">backends up <b id="up">?</b></span>
  <span id="conn">connecting…</span>
</header>
<main>
  <div id="message" role="status"></div>
  <table>
    <thead><tr>
      <th>Backend</th><th class="state">State</th><th>Weight</th><th>In flight</th><th>Conns</th><th>WebSockets</th>
      <th>Req/s</th><th>5xx rate</th><th>EWMA</th><th>p50</th><th>p99</th><th>Requests</th>
      <th>Upstream errors</th><th>Ejections</th><th></th>
    </tr></thead>
    <tbody id="rows"></tbody>
  </table>
  <h2>Routes (<span id="route-count">?</span>), first match wins</h2>
  <table id="routes">
    <thead><tr><th>#</th><th class="name">Route</th><th class="state">Match</th><th class="state">Action</th><th>Hits</th><th>Hits/s</th></tr></thead>
    <tbody id="route-rows"></tbody>
  </table>
${L4_BODY}
</main>
<footer>Updated every second from /api/backends and /api/routes. Latency percentiles cover everything since start; rates cover the last second; route hits count from start or from the last reload that changed the routes.</footer>
`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice status</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`;

function hash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** Only this page's own script and style run; it may only talk back to this origin, and never in a frame. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
