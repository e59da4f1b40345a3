import { GrainConfigurationError } from './errors.js';

/** A duration: milliseconds as a number, or a string such as `'500ms'`, `'30s'`, `'10m'`, `'1h'`. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h'}`;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** Parse a Duration into milliseconds; throws GrainConfigurationError naming the option. */
export function toMs(value: Duration, option: string, { allowZero = false }: { allowZero?: boolean } = {}): number {
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else {
    const match = PATTERN.exec(String(value).trim());
    if (match === null) {
      throw new GrainConfigurationError(`${option}: "${String(value)}" is not a duration; use milliseconds or a string like "500ms", "30s", "10m", "1h".`);
    }
    ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  }
  if (!Number.isFinite(ms) || ms < 0 || (ms === 0 && !allowZero)) {
    throw new GrainConfigurationError(`${option}: ${String(value)} must be a ${allowZero ? 'non-negative' : 'positive'}, finite duration.`);
  }
  return ms;
}
