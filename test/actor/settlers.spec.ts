import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { captureSettlers, releaseSettlers, settlers } from '../../lib/actor/call.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('the shared promise executor of grain calls (call.ts `captureSettlers`)', () => {
  it('hands each new promise its own settlers', async () => {
    const first = new Promise<unknown>(captureSettlers);
    const resolveFirst = settlers.resolve;
    const second = new Promise<unknown>(captureSettlers);
    const rejectSecond = settlers.reject;
    releaseSettlers();
    resolveFirst('first');
    rejectSecond(new Error('second'));
    expect(await first).toBe('first');
    await expect(second).rejects.toThrow('second');
  });

  it('keeps nothing of a settled call once released (its promise and value can go)', async () => {
    let ref!: WeakRef<object>;
    await (async () => {
      const promise = new Promise<unknown>(captureSettlers);
      const resolve = settlers.resolve;
      releaseSettlers();
      const value = { payload: new Uint8Array(1 << 20) };
      ref = new WeakRef(value);
      resolve(value);
      expect(await promise).toBe(value);
    })();
    await new Promise((done) => setTimeout(done, 0));
    gc();
    expect(ref.deref()).toBeUndefined();
  });
});
