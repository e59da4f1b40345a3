/** Account and transfer ids: 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit. */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Says what is wrong with `value` as the id named `field`, or returns undefined when it is valid. */
export function identifierProblem(value: unknown, field: string): string | undefined {
  if (value === undefined) return `${field} is required`;
  if (typeof value !== 'string') return `${field} must be a string, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`;
  if (!IDENTIFIER_PATTERN.test(value)) return `${field} must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`;
  return undefined;
}
