/**
 * Protocol versions this build speaks. Raise MAX with each wire change; raise MIN only when
 * dropping an old one.
 *
 * 1: handshakes, batches of requests and responses.
 * 2: gossip frames (`Frame.gossip`), sent only on streams that negotiated 2 or more.
 */
export const PROTOCOL_MIN = 1;
export const PROTOCOL_MAX = 2;
/** The first version with gossip frames. */
export const GOSSIP_PROTOCOL = 2;

/** A member's protocol range, as sent in the handshake. */
export interface ProtocolRange {
  min: number;
  max: number;
}

/**
 * The highest version both ranges hold, or undefined when they do not overlap. So a
 * rolling upgrade (old [1,1], new [1,2]) keeps talking on 1 until every member speaks 2.
 */
export function negotiate(a: ProtocolRange, b: ProtocolRange): number | undefined {
  const version = Math.min(a.max, b.max);
  return version >= Math.max(a.min, b.min) ? version : undefined;
}
