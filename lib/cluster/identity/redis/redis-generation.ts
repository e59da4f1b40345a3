/**
 * The generation: which life of the Redis data this member's claims belong to. Reading it
 * (a new one starts when Redis lost its data or is another process), and how long ago it
 * began by the Redis server's clock: nothing is claimed in it until it is a lease old.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { scripts } from './redis-scripts.js';

/** Random bytes in a new generation's id (as hex). */
const GENERATION_ID_BYTES = 8;

/** What reading the generation found. */
export interface GenerationRead {
  /** The generation in force now. */
  readonly generation: string;
  /** It is not the one this member held (never true before the member held one). */
  readonly changed: boolean;
  /** How long ago it began, by the Redis server's clock (TIME), in ms. */
  readonly ageMs: number;
}

/**
 * Read (or start) the generation; a change means Redis lost data or is another process.
 * `held.generation` is the one this member holds ('' before its first join), read once the
 * Redis reply is in.
 */
export async function readGeneration(redis: Redis, key: string, held: { readonly generation: string }): Promise<GenerationRead> {
  const reply = await scripts.swapGeneration.run(redis, [key], [randomBytes(GENERATION_ID_BYTES).toString('hex')]);
  if (!Array.isArray(reply) || reply.length !== 2) throw new Error(`swap-generation answered ${JSON.stringify(reply)}`);
  const generation = String(reply[0]);
  const serverNow = Number(reply[1]);
  return { generation, changed: held.generation !== '' && generation !== held.generation, ageMs: serverNow - generationStart(generation) };
}

/**
 * When a generation began: ms since 1970 by the clock of the Redis server that started it
 * (its TIME), or 0 when the generation does not say. Its epochs start there (claim.lua).
 */
export function generationStart(generation: string): number {
  const parts = generation.split(':');
  const start = parts.length >= 3 ? Number(parts[parts.length - 2]) : 0;
  return Number.isSafeInteger(start) && start > 0 ? start : 0;
}
