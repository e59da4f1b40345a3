import { BadRequestException } from '@nestjs/common';

/**
 * The request body as a JSON object with no properties but `allowed`, or a 400. Express
 * leaves the body undefined when the request has none or is not JSON (or form) encoded.
 */
export function jsonObjectBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestException('The request body must be a JSON object (content-type: application/json).');
  }
  const unknown = Object.keys(body).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    throw new BadRequestException(
      `Unknown propert${unknown.length === 1 ? 'y' : 'ies'} ${unknown.map((k) => `"${k}"`).join(', ')}; allowed: ${allowed.join(', ')}.`,
    );
  }
  return body as Record<string, unknown>;
}

/** A 400 for a request whose value is wrong, `problem` saying how. */
export function invalidRequest(problem: string): BadRequestException {
  return new BadRequestException(`${problem.charAt(0).toUpperCase()}${problem.slice(1)}.`);
}
