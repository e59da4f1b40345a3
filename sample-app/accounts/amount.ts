/** The largest amount a single deposit, withdrawal or transfer may move. */
export const MAX_AMOUNT = 1_000_000_000;

/** The largest balance an account may hold (far inside exact integer cents). */
export const MAX_BALANCE = 1_000_000_000_000;

/**
 * Says what is wrong with `value` as a money amount, or returns undefined when it is valid: a
 * finite number greater than 0, at most `MAX_AMOUNT`, with at most 2 decimal places (cents).
 * Shared by the HTTP pipes and the grains, which check again: a grain is callable by any
 * code in the cluster, not only by the controllers.
 */
export function amountProblem(value: unknown): string | undefined {
  if (value === undefined) return 'amount is required';
  if (typeof value !== 'number') return `amount must be a number, got ${describeType(value)}`;
  if (!Number.isFinite(value)) return 'amount must be a finite number';
  if (value <= 0) return `amount must be greater than 0, got ${value}`;
  if (value > MAX_AMOUNT) return `amount must be at most ${MAX_AMOUNT}, got ${value}`;
  if (Math.abs(value * 100 - Math.round(value * 100)) > 1e-6) return `amount must have at most 2 decimal places, got ${value}`;
  return undefined;
}

/** `a + b`, computed in integer cents so that 0.1 + 0.2 is 0.3. */
export function addAmounts(a: number, b: number): number {
  return (toCents(a) + toCents(b)) / 100;
}

/** `a - b`, computed in integer cents. */
export function subtractAmounts(a: number, b: number): number {
  return (toCents(a) - toCents(b)) / 100;
}

function toCents(amount: number): number {
  return Math.round(amount * 100);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
