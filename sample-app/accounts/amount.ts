/**
 * The largest amount a single deposit, withdrawal or transfer may move: 1e11 cents, far below
 * 2^53, so every amount is an exact number of cents and `cents / 100` gives it back exactly.
 */
export const MAX_AMOUNT = 1_000_000_000;

/** The largest balance an account may hold (far inside exact integer cents). */
export const MAX_BALANCE = 1_000_000_000_000;

/**
 * Says what is wrong with `value` as a money amount, or returns undefined when it is valid:
 * a whole number of cents from 0.01 to `MAX_AMOUNT`, that is a finite number greater than 0
 * with at most 2 decimal places — exactly the number a decimal such as `12.34` parses to.
 * Anything else is refused, never rounded: `1e-9` or `0.001` would move nothing (or not what
 * was asked) and be recorded as done. Shared by the HTTP pipes and the grains, which check
 * again: a grain is callable by any code in the cluster, not only by the controllers.
 */
export function amountProblem(value: unknown): string | undefined {
  if (value === undefined) return 'amount is required';
  if (typeof value !== 'number') return `amount must be a number, got ${describeType(value)}`;
  if (!Number.isFinite(value)) return 'amount must be a finite number';
  if (value <= 0) return `amount must be greater than 0, got ${value}`;
  if (value > MAX_AMOUNT) return `amount must be at most ${MAX_AMOUNT}, got ${value}`;
  if (!isWholeCents(value)) return `amount must be whole cents: at most 2 decimal places, got ${value}`;
  return undefined;
}

/**
 * `value` is `n / 100` for a whole number `n` of cents, exactly as a number: the decimal
 * `n / 100` parses to the same number as the division computes (both round correctly), and
 * below MAX_AMOUNT `value * 100` is far closer to `n` than 0.5. No tolerance: `1e-9` is not 0
 * cents, and `0.30000000000000004` is not 0.3.
 */
function isWholeCents(value: number): boolean {
  return Math.round(value * 100) / 100 === value;
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
