import { afterEach, describe, expect, it } from 'vitest';
import { CallCycleError, type Cluster, type GrainClient, type GrainContext } from 'nestjs-grains';
import { outcome, sleep, startCluster } from '../support/cluster.js';

/** Grains that call each other through a client handed to them by the test. */
const wiring: { pings?: GrainClient<PingGrain>; pongs?: GrainClient<PongGrain> } = {};

class PingGrain {
  constructor(readonly ctx: GrainContext) {}
  /** ping → pong → (optionally) back to this ping. */
  async ping(callBack: boolean): Promise<string> {
    return `ping(${await wiring.pongs!.get('b').pong(this.ctx.identity, callBack)})`;
  }
  /** A → A */
  async self(): Promise<string> {
    return wiring.pings!.get(this.ctx.identity).hello();
  }
  hello(): string {
    return `hello from ${this.ctx.identity}`;
  }
  async peekAfterPong(): Promise<string> {
    return wiring.pongs!.get('b').peekBack(this.ctx.identity);
  }
  /** Read-only, interleaved in the tests that say so. */
  async peek(): Promise<string> {
    return `peek ${this.ctx.identity}`;
  }
  /** Schedules a call to itself after this turn has ended. */
  later(): void {
    setTimeout(() => {
      void wiring
        .pings!.get(this.ctx.identity)
        .hello()
        .then(
          (v) => (laterResult.value = v),
          (e: unknown) => (laterResult.error = e),
        );
    }, 20);
  }
}
const laterResult: { value?: string; error?: unknown } = {};

class PongGrain {
  constructor(readonly ctx: GrainContext) {}
  async pong(from: string, callBack: boolean): Promise<string> {
    return callBack ? `pong(${await wiring.pings!.get(from).hello()})` : 'pong';
  }
  async peekBack(from: string): Promise<string> {
    return wiring.pings!.get(from).peek();
  }
}

describe('call cycles', () => {
  let cluster: Cluster;
  afterEach(async () => cluster?.shutdown());

  async function start(pingInterleaved: string[] = []) {
    ({ cluster } = await startCluster(
      [
        { name: 'ping', grainClass: PingGrain, interleavedMethods: pingInterleaved },
        { name: 'pong', grainClass: PongGrain },
      ],
      { requestTimeout: '5s' },
    ));
    wiring.pings = cluster.client<PingGrain>('ping');
    wiring.pongs = cluster.client<PongGrain>('pong');
  }

  it('calls across grains without a cycle', async () => {
    await start();
    expect(await wiring.pings!.get('a').ping(false)).toBe('ping(pong)');
  });

  it('fails A→B→A fast with a CallCycleError naming the cycle', async () => {
    await start();
    const started = Date.now();
    const result = await outcome(wiring.pings!.get('a').ping(true));
    expect(Date.now() - started).toBeLessThan(1_000); // the timeout is 5 s: it did not wait for it
    expect(result.ok).toBe(false);
    const error = (result as { error: { cause?: unknown } }).error;
    // ping's turn receives the cycle error from pong and rethrows it; the cycle error itself is the cause chain's root.
    const cycle = findCycleError(error);
    expect(cycle).toBeInstanceOf(CallCycleError);
    expect(cycle!.cycle).toEqual(['ping/a', 'pong/b', 'ping/a']);
    expect(cycle!.code).toBe('GRAIN_CALL_CYCLE');
    // What the outer caller sees: ping threw what pong threw, which was the cycle error.
    expect(error).toMatchObject({
      name: 'GrainInvocationError',
      remoteName: 'CallCycleError',
      remoteCode: 'GRAIN_CALL_CYCLE',
      method: 'ping',
      origin: 'pong/b.pong',
    });
  });

  it('fails A→A fast', async () => {
    await start();
    const result = await outcome(wiring.pings!.get('a').self());
    const cycle = findCycleError((result as { error: unknown }).error);
    expect(cycle?.cycle).toEqual(['ping/a', 'ping/a']);
  });

  it('does not report a cycle for a call made after the turn ended', async () => {
    await start();
    laterResult.value = undefined;
    laterResult.error = undefined;
    await wiring.pings!.get('a').later();
    await sleep(100);
    expect(laterResult.error).toBeUndefined();
    expect(laterResult.value).toBe('hello from a');
  });

  it('still fails A(exclusive)→B→A(interleaved): the exclusive turn blocks the read', async () => {
    await start(['peek']);
    const result = await outcome(wiring.pings!.get('a').peekAfterPong());
    expect(findCycleError((result as { error: unknown }).error)?.cycle).toEqual(['ping/a', 'pong/b', 'ping/a']);
  });

  it('lets A(interleaved)→B→A(interleaved) through', async () => {
    await start(['peek', 'peekAfterPong']);
    expect(await wiring.pings!.get('a').peekAfterPong()).toBe('peek a');
  });
});

function findCycleError(error: unknown): CallCycleError | undefined {
  for (let e: unknown = error; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    if (e instanceof CallCycleError) return e;
  }
  return undefined;
}
