import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

function findLuaDir(): string {
  // NOTE: the same code runs from lib/ (tests) and dist/lib/ (built): walk up to lua/.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'lua', 'claim.lua'))) return join(dir, 'lua');
    dir = dirname(dir);
  }
  throw new Error('nestjs-grains: lua/claim.lua not found next to the package');
}

/** One Lua script: run by SHA, sent whole on the first NOSCRIPT. */
export class RedisScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly body: string,
  ) {
    this.sha = createHash('sha1').update(body).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.body, keys.length, ...keys, ...args);
    }
  }
}

/** The prelude (lua/current-generation.lua) of every script that reads the generation. */
const PRELUDE = 'current-generation';

const dir = findLuaDir();
const read = (name: string) => readFileSync(join(dir, `${name}.lua`), 'utf8');
const prelude = read(PRELUDE);
const load = (name: string) => new RedisScript(name, read(name));
// NOTE: one prelude, so every script decides "is this generation current here?" the same way.
const loadWithPrelude = (name: string) => new RedisScript(name, `${prelude}\n${read(name)}`);

/** The lookup's atomic steps (lua/*.lua). */
export const scripts = {
  join: loadWithPrelude('join'),
  renew: loadWithPrelude('renew'),
  claim: loadWithPrelude('claim'),
  resolve: loadWithPrelude('resolve'),
  release: loadWithPrelude('release'),
  leave: load('leave'),
  cleanup: loadWithPrelude('cleanup'),
  swapGeneration: loadWithPrelude('swap-generation'),
};
