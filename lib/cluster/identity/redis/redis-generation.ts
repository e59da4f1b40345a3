/**
 * The generation: which life of the Redis data this member's claims belong to. Reading it
 * (and starting a new one when Redis lost data or is another process), and where the epochs
 * of a generation start.
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
}

/**
 * Read (or create) the generation; a change means Redis lost data.
 * `held.generation` is the one this member holds ('' before its first join), read once the
 * Redis replies are in.
 */
export async function readGeneration(redis: Redis, key: string, held: { readonly generation: string }): Promise<GenerationRead> {
  const runId = parseRunId(String(await redis.info('server')));
  const current = await redis.get(key);
  if (current !== null && current.endsWith(`:${runId}`)) return { generation: current, changed: current !== held.generation && held.generation !== '' };
  // Missing (data lost) or written by another Redis process (failover): a new generation.
  // NOTE: the generation records when it began (ms since 1970): its epochs start there.
  const fresh = `${randomBytes(GENERATION_ID_BYTES).toString('hex')}:${Date.now()}:${runId}`;
  const swapped = await scripts.swapGeneration.run(redis, [key], [current ?? '', fresh]);
  const generation = String(swapped);
  return { generation, changed: held.generation !== '' };
}

/**
 * Where a generation's epochs start: the time it began. Epochs of a lost generation stay
 * below it as long as an identity was activated less than once per millisecond on average
 * while that generation lasted, so `ctx.epoch` keeps growing across a Redis data loss.
 */
export function epochFloor(generation: string): number {
  const parts = generation.split(':');
  const floor = parts.length >= 3 ? Number(parts[parts.length - 2]) : 0;
  return Number.isSafeInteger(floor) && floor > 0 ? floor : 0;
}

/** The `run_id` in an `INFO server` reply: which Redis process answers. */
export function parseRunId(info: string): string {
  const match = /run_id:([0-9a-f]+)/.exec(info);
  if (match === null) throw new Error('INFO server has no run_id');
  return match[1]!;
}
