// The status page's L4 section (status-page.ts includes both strings): one row per L4 listener,
// then one per pool it sends to, from /api/status's "l4" list. Rates come from the difference
// between polls, as for backends. textContent only, like the rest of the page.

export const L4_SCRIPT = `
const previousL4 = new Map();
function fmtBytes(n) {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return v.toFixed(1) + " " + units[i];
}
function renderL4(list, now) {
  const rows = document.createDocumentFragment();
  for (const l of list) {
    const s = l.stats;
    const tr = document.createElement("tr");
    tr.dataset.listener = l.name;
    tr.className = s && l.running ? "up" : "down";
    cell(tr, l.name);
    cell(tr, s && l.running ? "open" : "no data", "state");
    cell(tr, String(l.thread));
    const before = previousL4.get(l.name);
    if (s) previousL4.set(l.name, { t: now, opened: s.opened, bytes: s.bytesIn + s.bytesOut });
    let rate = "\\u2014", mbps = "\\u2014";
    if (s && before && now > before.t && s.opened >= before.opened) {
      rate = ((s.opened - before.opened) * 1000 / (now - before.t)).toFixed(1);
      mbps = fmtBytes(Math.max(0, s.bytesIn + s.bytesOut - before.bytes) * 1000 / (now - before.t)) + "/s";
    }
    cell(tr, s ? String(s.active) : "\\u2014", "active");
    cell(tr, s ? String(s.opened) : "\\u2014", "opened");
    cell(tr, rate, "rate");
    cell(tr, s ? fmtBytes(s.bytesIn) : "\\u2014", "bytes-in");
    cell(tr, s ? fmtBytes(s.bytesOut) : "\\u2014", "bytes-out");
    cell(tr, mbps, "throughput");
    cell(tr, s ? String(s.connectFailures) : "\\u2014", s && s.connectFailures > 0 ? "bad" : "");
    cell(tr, s ? String(s.rejected + s.noBackend) : "\\u2014");
    rows.appendChild(tr);
    for (const p of s ? s.pools : []) {
      const pr = document.createElement("tr");
      pr.className = "off";
      cell(pr, "\\u2192 pool " + p.pool);
      cell(pr, "", "state");
      cell(pr, "");
      cell(pr, String(p.active));
      cell(pr, String(p.opened));
      cell(pr, "");
      cell(pr, fmtBytes(p.bytesIn));
      cell(pr, fmtBytes(p.bytesOut));
      cell(pr, "");
      cell(pr, String(p.connectFailures), p.connectFailures > 0 ? "bad" : "");
      cell(pr, "");
      rows.appendChild(pr);
    }
  }
  $("l4-rows").replaceChildren(rows);
  $("l4-count").textContent = String(list.length);
  $("l4").hidden = list.length === 0;
}
`;

export const L4_BODY = `
  <section id="l4" hidden>
  <h2>L4 listeners (<span id="l4-count">0</span>)</h2>
  <table>
    <thead><tr>
      <th>Listener</th><th class="state">State</th><th>Thread</th><th>Active</th><th>Opened</th><th>Conns/s</th>
      <th>Bytes in</th><th>Bytes out</th><th>Throughput</th><th>Connect failures</th><th>Rejected</th>
    </tr></thead>
    <tbody id="l4-rows"></tbody>
  </table>
  </section>
`;
