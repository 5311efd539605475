// Hand-written SVG charts for result files: horizontal bar panels stacked under one title, no
// dependencies. Each panel has its own scale; optional dashed reference lines mark targets.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A "nice" axis maximum at or above v: 1, 2, 2.5 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * panels: [{ title, format: (v) => string, rows: [{ label, value (number|null), color?, text? }],
 *            refs?: [{ value, label }] }]
 * legend: [{ color, label }] drawn under the subtitle.
 * Rows with value null are drawn as "n/a" (text overrides the printed value).
 * Returns the SVG document as a string.
 */
export function barChartSvg({ title, subtitle = '', panels, legend = [], width = 920 }) {
  const labelW = 250;
  const valueW = 90;
  const barX = labelW + 10;
  const barW = width - barX - valueW - 10;
  const rowH = 22;
  const out = [];
  let y = 30;
  out.push(`<text x="12" y="${y}" font-size="17" font-weight="bold">${esc(title)}</text>`);
  if (subtitle) {
    y += 20;
    out.push(`<text x="12" y="${y}" font-size="12" fill="#555">${esc(subtitle)}</text>`);
  }
  if (legend.length > 0) {
    y += 20;
    let x = 12;
    for (const item of legend) {
      out.push(`<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${item.color}"/>`);
      out.push(`<text x="${x + 17}" y="${y}" font-size="12">${esc(item.label)}</text>`);
      x += 30 + item.label.length * 6.1;
    }
  }
  y += 16;
  for (const panel of panels) {
    y += 24;
    out.push(`<text x="12" y="${y}" font-size="14" font-weight="bold">${esc(panel.title)}</text>`);
    y += 10;
    const values = panel.rows.map((r) => r.value).filter((v) => Number.isFinite(v));
    const refs = (panel.refs ?? []).filter((r) => Number.isFinite(r.value));
    const max = niceMax(Math.max(0, ...values, ...refs.map((r) => r.value)));
    const scale = (v) => (Math.max(0, v) / max) * barW;
    const top = y;
    for (const row of panel.rows) {
      const cy = y + rowH / 2;
      out.push(`<text x="${labelW}" y="${cy + 4}" font-size="12" text-anchor="end">${esc(row.label)}</text>`);
      if (Number.isFinite(row.value)) {
        const w = Math.max(1, scale(row.value));
        out.push(`<rect x="${barX}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${row.color ?? '#4e79a7'}"/>`);
        out.push(`<text x="${(barX + w + 5).toFixed(1)}" y="${cy + 4}" font-size="11">${esc(row.text ?? panel.format(row.value))}</text>`);
      } else {
        out.push(`<text x="${barX + 5}" y="${cy + 4}" font-size="11" fill="#999">${esc(row.text ?? 'n/a')}</text>`);
      }
      y += rowH;
    }
    // Axis with the scale maximum, then the reference lines over the bars.
    out.push(`<line x1="${barX}" y1="${top}" x2="${barX}" y2="${y}" stroke="#333"/>`);
    out.push(`<line x1="${barX}" y1="${y}" x2="${barX + barW}" y2="${y}" stroke="#333"/>`);
    out.push(`<text x="${barX}" y="${y + 14}" font-size="10" fill="#555">0</text>`);
    out.push(`<text x="${barX + barW}" y="${y + 14}" font-size="10" fill="#555" text-anchor="end">${esc(panel.format(max))}</text>`);
    for (const ref of refs) {
      const x = (barX + scale(ref.value)).toFixed(1);
      out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${y + 16}" stroke="#e15759" stroke-dasharray="4 3"/>`);
      out.push(`<text x="${x}" y="${y + 27}" font-size="10" fill="#e15759" text-anchor="middle">${esc(ref.label)}</text>`);
    }
    y += refs.length > 0 ? 34 : 20;
  }
  const height = y + 10;
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${out.join('\n')}
</svg>
`;
}
