import { afterEach, describe, expect, it } from 'vitest';
import {
  CallCycleError,
  ClusterUnavailableError,
  type GrainClient,
  type GrainContext,
  GrainInvocationError,
  GrainSerializationError,
  MessageTooLargeError,
  MethodNotCallableError,
  UnknownKindError,
} from 'nestjs-grains';
import { eventually, outcome } from '../support/cluster.js';
import { type InProcessCluster, startMembers } from '../support/in-process-cluster.js';

/** Reports where it runs; keeps a per-activation counter. */
class EchoGrain {
  private calls = 0;
  constructor(readonly ctx: GrainContext) {}
  where(): { member: string; activation: string; calls: number } {
    return { member: this.ctx.memberId, activation: this.ctx.activationId, calls: ++this.calls };
  }
  echo<T>(value: T): T {
    return value;
  }
  fail(): never {
    throw Object.assign(new RangeError('remote trouble'), { code: 'REMOTE_TROUBLE' });
  }
  big(size: number): string {
    return 'x'.repeat(size);
  }
  returnsFunction(): unknown {
    return () => 1;
  }
  _private(): string {
    return 'no';
  }
}

const wiring: { echoes?: GrainClient<EchoGrain>; relays?: GrainClient<RelayGrain> } = {};

/** Calls an echo grain, possibly back to a relay: drives cross-member chains. */
class RelayGrain {
  constructor(readonly ctx: GrainContext) {}
  async viaEcho(id: string): Promise<string> {
    const where = await wiring.echoes!.get(id).where();
    return `${this.ctx.memberId} -> ${where.member}`;
  }
  async backToMe(): Promise<string> {
    return wiring.relays!.get('r-b').bounce(this.ctx.identity);
  }
  async bounce(from: string): Promise<string> {
    return wiring.relays!.get(from).hello();
  }
  hello(): string {
    return 'hello';
  }
}

describe('members over gRPC (in one process, real streams)', () => {
  let cluster: InProcessCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
  });

  it('places every identity on exactly one member, whichever member calls', async () => {
    cluster = await startMembers([
      { kinds: [{ name: 'echo', grainClass: EchoGrain }] },
      { kinds: [{ name: 'echo', grainClass: EchoGrain }] },
      { kinds: [{ name: 'echo', grainClass: EchoGrain }] },
    ]);
    const ids = Array.from({ length: 300 }, (_, i) => `id-${i}`);
    const seen = new Map<string, Set<string>>();
    const hosts = new Set<string>();
    for (const member of cluster.members) {
      const echoes = member.client<EchoGrain>('echo');
      const results = await Promise.all(ids.map((id) => echoes.get(id).where()));
      results.forEach((r, i) => {
        const set = seen.get(ids[i]!) ?? new Set<string>();
        set.add(r.activation);
        seen.set(ids[i]!, set);
        hosts.add(r.member);
      });
    }
    for (const [, activations] of seen) expect(activations.size).toBe(1);
    expect(hosts).toEqual(new Set(cluster.members.map((m) => m.memberId))); // spread over all three members
    const total = cluster.members.reduce((n, m) => n + m.stats().activations, 0);
    expect(total).toBe(ids.length);
  });

  it('calls a grain hosted on the calling member in-process, without serialization', async () => {
    cluster = await startMembers([{ kinds: [{ name: 'echo', grainClass: EchoGrain }] }, { kinds: [{ name: 'echo', grainClass: EchoGrain }] }]);
    const [first] = cluster.members;
    const echoes = first!.client<EchoGrain>('echo');
    const payload = { nested: { list: [1, 2, 3] } };
    let local = 0;
    let remote = 0;
    for (let i = 0; i < 40; i++) {
      const where = await echoes.get(`l${i}`).where();
      const back = await echoes.get(`l${i}`).echo(payload);
      if (where.member === first!.memberId) {
        expect(back).toBe(payload); // the very same object: it never went through the codec
        local++;
      } else {
        expect(back).not.toBe(payload);
        expect(back).toEqual(payload);
        remote++;
      }
    }
    expect(local).toBeGreaterThan(0);
    expect(remote).toBeGreaterThan(0);
  });

  it('round-trips arguments and results, and carries typed errors across members', async () => {
    cluster = await startMembers([{ kinds: [], clientOnly: true }, { kinds: [{ name: 'echo', grainClass: EchoGrain }] }]);
    const echoes = cluster.members[0]!.client<EchoGrain>('echo');
    const value = {
      n: 1,
      big: 10n ** 20n,
      when: new Date(0),
      tags: new Set(['a']),
      map: new Map([['k', [1, 2]]]),
      bytes: new Uint8Array([1, 2, 3]),
      nothing: null,
    };
    expect(await echoes.get('e1').echo(value)).toEqual(value);
    const failed = (await outcome(echoes.get('e1').fail())) as { error: GrainInvocationError };
    expect(failed.error).toBeInstanceOf(GrainInvocationError);
    expect(failed.error).toMatchObject({ remoteName: 'RangeError', remoteMessage: 'remote trouble', remoteCode: 'REMOTE_TROUBLE', origin: 'echo/e1.fail' });
    const ref = echoes.get('e1') as unknown as Record<string, () => Promise<unknown>>;
    expect(((await outcome(ref['_private']!())) as { error: unknown }).error).toBeInstanceOf(MethodNotCallableError);
    expect(((await outcome(ref['nope']!())) as { error: unknown }).error).toBeInstanceOf(MethodNotCallableError);
    expect(((await outcome(cluster.members[0]!.client<EchoGrain>('nokind').get('x').where())) as { error: unknown }).error).toBeInstanceOf(UnknownKindError);
    expect(((await outcome(echoes.get('e1').returnsFunction())) as { error: unknown }).error).toMatchObject({
      name: 'GrainInvocationError',
      remoteCode: 'GRAIN_SERIALIZATION',
    });
    expect(((await outcome(echoes.get('e1').echo(() => 1))) as { error: unknown }).error).toBeInstanceOf(GrainSerializationError);
  });

  it('refuses oversized arguments and results with a typed error, and the connection carries on', async () => {
    const options = { remote: { maxMessageSize: 256 * 1024 } };
    cluster = await startMembers([
      { kinds: [], clientOnly: true, options },
      { kinds: [{ name: 'echo', grainClass: EchoGrain }], options },
    ]);
    const echoes = cluster.members[0]!.client<EchoGrain>('echo');
    const tooBigArgs = (await outcome(echoes.get('s').echo('y'.repeat(300 * 1024)))) as { error: MessageTooLargeError };
    expect(tooBigArgs.error).toBeInstanceOf(MessageTooLargeError);
    expect(tooBigArgs.error.neverRan).toBe(true);
    const tooBigResult = (await outcome(echoes.get('s').big(300 * 1024))) as { error: MessageTooLargeError };
    expect(tooBigResult.error).toBeInstanceOf(MessageTooLargeError);
    expect(tooBigResult.error.neverRan).toBe(false);
    expect(await echoes.get('s').echo('still fine')).toBe('still fine');
  });

  it('makes grain-to-grain calls across members and fails an A→B→A cycle across members fast', async () => {
    cluster = await startMembers([
      {
        kinds: [
          { name: 'relay', grainClass: RelayGrain },
          { name: 'echo', grainClass: EchoGrain },
        ],
      },
      {
        kinds: [
          { name: 'relay', grainClass: RelayGrain },
          { name: 'echo', grainClass: EchoGrain },
        ],
      },
    ]);
    wiring.echoes = cluster.members[0]!.client<EchoGrain>('echo');
    wiring.relays = cluster.members[0]!.client<RelayGrain>('relay');
    const hops = await Promise.all(Array.from({ length: 20 }, (_, i) => wiring.relays!.get(`r${i}`).viaEcho(`e${i}`)));
    expect(hops.some(([a, b]) => a !== b)).toBe(true);
    expect(new Set(hops.map((h) => h.split(' -> ')[0])).size).toBe(2);
    // find a relay identity not on the member hosting r-b, so the cycle crosses members
    const rbHost = (await wiring.relays!.get('r-b').viaEcho('probe')).split(' -> ')[0];
    let other = '';
    for (let i = 0; i < 50 && other === ''; i++) {
      const host = (await wiring.relays!.get(`r-a${i}`).viaEcho('probe')).split(' -> ')[0];
      if (host !== rbHost) other = `r-a${i}`;
    }
    expect(other).not.toBe('');
    const started = Date.now();
    const result = (await outcome(wiring.relays!.get(other).backToMe())) as { error: GrainInvocationError };
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(result.error).toMatchObject({ remoteName: 'CallCycleError', remoteCode: 'GRAIN_CALL_CYCLE' });
    void CallCycleError;
  });

  it('talks across overlapping protocol ranges, on the highest common version', async () => {
    cluster = await startMembers([
      { kinds: [], clientOnly: true, options: { remote: { protocol: { min: 1, max: 3 } } } },
      { kinds: [{ name: 'echo', grainClass: EchoGrain }], options: { remote: { protocol: { min: 2, max: 5 } } } },
    ]);
    expect(await cluster.members[0]!.client<EchoGrain>('echo').get('v').echo(7)).toBe(7);
  });
});

describe('startup', () => {
  it('places nothing until every listed member has answered, so no grain starts on the wrong member', async () => {
    const { Cluster, StaticProvider, HashIdentityLookup } = await import('nestjs-grains');
    const { freePort } = await import('../support/free-port.js');
    const ports = [await freePort(), await freePort()];
    const list = ports.map((p) => `127.0.0.1:${p}`);
    const make = (port: number) => {
      const member = new Cluster({
        clusterName: 'boot',
        provider: new StaticProvider({ members: list, probeInterval: 20 }),
        identityLookup: new HashIdentityLookup(),
        remote: { host: '127.0.0.1', port },
        logger: { log() {}, warn() {}, error() {} },
      });
      member.registerKind({ name: 'echo', grainClass: EchoGrain, create: (ctx) => new EchoGrain(ctx) });
      return member;
    };
    const first = make(ports[0]!);
    await first.start();
    const second = make(ports[1]!);
    try {
      const early = (await outcome(first.client<EchoGrain>('echo').get('a').where())) as { error: unknown };
      expect(early.error).toBeInstanceOf(ClusterUnavailableError);
      expect(first.stats().activated).toBe(0);
      await second.start();
      expect(await eventually(() => first.members().length === 2 && second.members().length === 2, 5_000)).toBe(true);
      const ids = Array.from({ length: 50 }, (_, i) => `b${i}`);
      const viaFirst = await Promise.all(ids.map((id) => first.client<EchoGrain>('echo').get(id).where()));
      const viaSecond = await Promise.all(ids.map((id) => second.client<EchoGrain>('echo').get(id).where()));
      expect(viaSecond.map((w) => w.activation)).toEqual(viaFirst.map((w) => w.activation));
      expect(first.stats().activations + second.stats().activations).toBe(ids.length);
    } finally {
      await Promise.all([first.shutdown(), second.shutdown()]);
    }
  });
});

describe('strangers', () => {
  it('refuses members of another cluster or with no common protocol, with a typed error and a log line', async () => {
    const a = await startMembers([{ kinds: [{ name: 'echo', grainClass: EchoGrain }] }], 'alpha');
    try {
      const address = a.members[0]!.remoteAddress;
      const { Cluster, StaticProvider, HashIdentityLookup } = await import('nestjs-grains');
      for (const [name, options] of [
        ['beta', {}],
        ['alpha', { remote: { protocol: { min: 7, max: 9 } } }],
      ] as const) {
        const stranger = new Cluster({
          clusterName: name,
          provider: new StaticProvider({ members: [address], probeInterval: 50 }),
          identityLookup: new HashIdentityLookup(),
          logger: { log() {}, warn() {}, error() {} },
          ...options,
        });
        await stranger.start();
        // Refused, it never learns the listed member: nothing can be placed, and the call says so.
        const result = (await outcome(stranger.client<EchoGrain>('echo').get('x').where())) as { error: unknown };
        expect(result.error).toBeInstanceOf(ClusterUnavailableError);
        await eventually(() => a.loggers[0]!.messages('warn').length > (name === 'beta' ? 0 : 1));
        await stranger.shutdown();
      }
      const warnings = a.loggers[0]!.messages('warn').join('\n');
      expect(warnings).toContain('cluster "beta" is not this member\'s cluster "alpha"');
      expect(warnings).toContain('no common protocol version');
      // and the member still serves its own
      expect(await a.members[0]!.client<EchoGrain>('echo').get('x').echo(1)).toBe(1);
    } finally {
      await a.shutdown();
    }
  });
});
