// Output for benchmark scenarios: a plain-text table for the terminal, number formatting, ratios,
// and the JSON result file under bench/results/.
import fs from 'node:fs';
import path from 'node:path';

/** "163.6k" style, one decimal. */
export function formatRps(rps) {
  if (!Number.isFinite(rps)) return '-';
  if (rps >= 1000) return `${(rps / 1000).toFixed(1)}k`;
  return rps.toFixed(0);
}

export function formatMs(ms) {
  if (!Number.isFinite(ms)) return '-';
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

/** a / b as "0.42x", or "-" when either side is missing. */
export function ratio(a, b) {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return null;
  return a / b;
}

export function formatRatio(r) {
  return r === null || r === undefined ? '-' : `${r.toFixed(2)}x`;
}

/**
 * Render rows as an aligned text table.
 * columns: [{ key, title, align: 'left' | 'right', format?: (value, row) => string }]
 */
export function renderTable(columns, rows) {
  const cells = rows.map((row) => columns.map((c) => {
    const v = row[c.key];
    const s = c.format ? c.format(v, row) : v;
    return s === undefined || s === null ? '' : String(s);
  }));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((r) => r[i].length)));
  const line = (values) => values
    .map((v, i) => (columns[i].align === 'right' ? v.padStart(widths[i]) : v.padEnd(widths[i])))
    .join('  ')
    .trimEnd();
  const out = [line(columns.map((c) => c.title)), line(widths.map((w) => '-'.repeat(w)))];
  for (const r of cells) out.push(line(r));
  return out.join('\n');
}

/** Write `data` as bench/results/<prefix>-<ISO time>.json; returns the path. */
export function writeResults(resultsDir, prefix, data, when = new Date()) {
  fs.mkdirSync(resultsDir, { recursive: true });
  const stamp = when.toISOString().replace(/:/g, '-');
  const file = path.join(resultsDir, `${prefix}-${stamp}.json`);
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

/** A right-aligned table column: `format(value)`, or "-" for null. */
export function valueColumn(key, title, format) {
  return { key, title, align: 'right', format: (v) => (v === null ? '-' : format(v)) };
}

export const rpsColumn = valueColumn('rps', 'req/s', formatRps);
export const p50Column = valueColumn('p50Ms', 'p50 ms', formatMs);
export const p99Column = valueColumn('p99Ms', 'p99 ms', formatMs);

/** The last column of every table: status and reason of a row that is not ok, then its notes. */
export const notesColumn = {
  key: 'notes', title: 'notes', align: 'left',
  format: (v, r) => [r.status === 'ok' ? null : `${r.status}: ${r.reason}`, ...(v ?? [])].filter(Boolean).join('; '),
};
