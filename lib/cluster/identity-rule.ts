/**
 * What a grain identity may be: a non-empty, well-formed string (no lone surrogates) of at
 * most `maxIdentityBytes` UTF-8 bytes. Anything else is refused before it is sent, stored or
 * activated anywhere.
 *
 * NOTE: a lone surrogate and U+FFFD encode to the same UTF-8 bytes, so two identities that
 * differ locally would share one Redis entry (and one wire name); and an identity of
 * megabytes would stay in Redis for good. Both are refused here, on the caller's member and
 * again on the member serving a peer's request.
 */

/** The longest identity, in UTF-8 bytes. @default 1024 */
export const DEFAULT_MAX_IDENTITY_BYTES = 1024;

/** Why `identity` is not a valid grain identity, or undefined when it is. */
export function identityProblem(identity: unknown, maxBytes: number): string | undefined {
  if (typeof identity !== 'string') return `a grain identity must be a non-empty string, got ${typeof identity}`;
  if (identity.length === 0) return 'a grain identity must be a non-empty string, got an empty string';
  // NOTE: UTF-8 takes at most 3 bytes per UTF-16 unit, so short identities skip the byte count.
  if (identity.length * 3 > maxBytes && Buffer.byteLength(identity, 'utf8') > maxBytes) {
    return `a grain identity may be at most ${maxBytes} UTF-8 bytes, got ${Buffer.byteLength(identity, 'utf8')}`;
  }
  if (!identity.isWellFormed()) return 'a grain identity must be a well-formed string (it holds a lone surrogate)';
  return undefined;
}
