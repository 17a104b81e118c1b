// Figures for `npm run bench`: printed, never asserted.
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function summarize(samples: number[]): { p50: number; p99: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), n: s.length };
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/** One line: ours beside the raw baseline measured in the same run, and the ratio. */
export function row(label: string, ours: number, baseline: number, unit: string, target?: string): void {
  const ratio = unit.endsWith('/s') ? baseline / ours : ours / baseline;
  console.log(
    `${label.padEnd(44)} ${fmt(ours).padStart(9)} ${unit.padEnd(6)} raw ${fmt(baseline).padStart(9)} ${unit.padEnd(6)} ` +
      `ratio ${ratio.toFixed(2)}×${target ? `   target ${target}` : ''}`,
  );
}

export function line(label: string, value: number, unit: string, target?: string): void {
  console.log(`${label.padEnd(44)} ${fmt(value).padStart(9)} ${unit}${target ? `   target ${target}` : ''}`);
}

export function heading(text: string): void {
  console.log(`\n== ${text}`);
}
