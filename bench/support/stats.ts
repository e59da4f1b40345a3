/** Median, min and max of a set of round figures. */
export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Every value, in the order measured. */
  readonly values: readonly number[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(values: readonly number[]): Summary {
  return {
    median: median(values),
    min: values.length === 0 ? Number.NaN : Math.min(...values),
    max: values.length === 0 ? Number.NaN : Math.max(...values),
    values: [...values],
  };
}

/** Element-wise ratios of two equally long series (round i against round i). */
export function pairedRatios(numerators: readonly number[], denominators: readonly number[]): number[] {
  const n = Math.min(numerators.length, denominators.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(numerators[i]! / denominators[i]!);
  return out;
}
