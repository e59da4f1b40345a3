/** Plain-text tables and number formats for the console report. */

export function fmtRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return 'n/a';
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k`;
  return perSecond.toFixed(0);
}

export function fmtNum(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toFixed(digits);
}

export function fmtRatio(value: number): string {
  return Number.isFinite(value) ? value.toFixed(3) : 'n/a';
}

export function fmtPct(share: number | undefined): string {
  return share === undefined || !Number.isFinite(share) ? '' : `${(share * 100).toFixed(1)}%`;
}

export type Align = 'left' | 'right';

/** Render rows as aligned columns; the first row is the header, underlined. */
export function table(rows: readonly (readonly string[])[], align: readonly Align[], indent = '  '): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const line = (row: readonly string[]) =>
    indent +
    row
      .map((cell, i) => (align[i] === 'right' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const [header, ...body] = rows;
  const out = [line(header!), indent + widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of body) out.push(line(row));
  return out.join('\n');
}
