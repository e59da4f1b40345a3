import { afterEach, describe, expect, it } from 'vitest';
import { GrainConfigurationError } from '../../lib/cluster/errors.js';
import type { Member, ProviderMember } from '../../lib/cluster/providers/cluster-provider.js';
import { ConsulProvider } from '../../lib/cluster/providers/consul/consul-provider.js';
import { decodeMeta, encodeMeta, goDuration, joinAddress, registrationOf, splitAddress } from '../../lib/cluster/providers/consul/consul-registration.js';
import { countedMembers, readHealthReply } from '../../lib/cluster/providers/consul/consul-reply.js';
import { ConsulTestAgent } from '../support/consul-agent.js';
import { freePort } from '../support/free-port.js';

const member = (id: string, overrides: Partial<Member> = {}): Member => ({
  id,
  incarnation: `${id}-inc`,
  address: '127.0.0.1:7001',
  kinds: ['counter'],
  ...overrides,
});

/** One entry of GET /v1/health/service/<name>, as Consul answers it. */
function entry(
  serviceId: string,
  meta: Record<string, string> | null,
  options: { address?: string; port?: number; statuses?: string[]; createIndex?: number; nodeAddress?: string } = {},
): unknown {
  return {
    Node: { Node: 'node1', Address: options.nodeAddress ?? '10.0.0.5' },
    Service: {
      ID: serviceId,
      Service: 'grains',
      Address: options.address ?? '127.0.0.1',
      Port: options.port ?? 7001,
      Meta: meta,
      CreateIndex: options.createIndex ?? 10,
    },
    Checks: (options.statuses ?? ['passing', 'passing']).map((Status, i) => ({ CheckID: i === 0 ? 'serfHealth' : `service:${serviceId}`, Status })),
  };
}

describe('ConsulProvider options', () => {
  it('validates every option at construction with a GrainConfigurationError naming it', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ url: 'not a url' }, /url/],
      [{ url: 'ftp://127.0.0.1:8500' }, /http/],
      [{ url: 'http://127.0.0.1:8500/?token=x' }, /query/],
      [{ token: '' }, /token/],
      [{ token: 'has space' }, /token/],
      [{ datacenter: 'dc/1' }, /datacenter/],
      [{ serviceName: 'a/b' }, /serviceName/],
      [{ ttl: '500ms' }, /ttl/],
      [{ ttl: 'soon' }, /ttl/],
      [{ watchWait: '11m' }, /watchWait/],
      [{ watchWait: '10ms' }, /watchWait/],
      [{ requestTimeout: 0 }, /requestTimeout/],
      [{ deregisterCriticalAfter: -1 }, /deregisterCriticalAfter/],
      [{ retryBackoffMin: '2s', retryBackoffMax: '1s' }, /retryBackoffMax/],
    ];
    for (const [options, message] of bad) {
      expect(() => new ConsulProvider(options as never), JSON.stringify(options)).toThrow(GrainConfigurationError);
      expect(() => new ConsulProvider(options as never), JSON.stringify(options)).toThrow(message);
    }
    // a URL's credentials never show in the error
    for (const url of ['ftp://admin:hunter2@127.0.0.1:8500', 'http://admin:hunter2@127.0.0.1:8500/?x=1', 'http://admin:hun ter2@bad url']) {
      let message = '';
      try {
        new ConsulProvider({ url });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message, url).toMatch(/url/);
      expect(message, url).not.toContain('hunter2');
      expect(message, url).not.toContain('hun ter2');
    }
    expect(() => new ConsulProvider()).not.toThrow();
    expect(
      () => new ConsulProvider({ url: 'https://consul.internal:8501/proxy/', token: 'b1gs33cr3t', datacenter: 'eu-1', serviceName: 'grains.v2' }),
    ).not.toThrow();
  });
});

describe('the Consul registration format', () => {
  it('writes durations as Go duration strings, never bare numbers (nanoseconds to Consul)', () => {
    expect([goDuration(10_000), goDuration(60_000), goDuration(3_600_000), goDuration(1_500), goDuration(333.4), goDuration(0.2)]).toEqual([
      '10s',
      '1m',
      '1h',
      '1500ms',
      '333ms',
      '1ms',
    ]);
  });

  it('splits host:port and [ipv6]:port, and joins them back', () => {
    expect(splitAddress('10.1.2.3:7001')).toEqual({ host: '10.1.2.3', port: 7001 });
    expect(splitAddress('grains-1.svc:7001')).toEqual({ host: 'grains-1.svc', port: 7001 });
    expect(splitAddress('[::1]:7001')).toEqual({ host: '::1', port: 7001 });
    expect(joinAddress('::1', 7001)).toBe('[::1]:7001');
    expect(joinAddress('10.1.2.3', 7001)).toBe('10.1.2.3:7001');
    for (const bad of ['10.1.2.3', '10.1.2.3:0', '10.1.2.3:70000', '::1:7001', '0.0.0.0:7001', '[::]:7001']) {
      expect(() => splitAddress(bad), bad).toThrow(GrainConfigurationError);
    }
  });

  it('keeps kinds in one Meta value up to 512 characters, and splits longer lists over kinds-1…n', () => {
    const short = encodeMeta(member('a', { kinds: ['counter', 'ledger'] }));
    expect(short).toEqual({ 'member-id': 'a', incarnation: 'a-inc', kinds: 'counter,ledger' });
    expect(decodeMeta(short)).toEqual({ id: 'a', incarnation: 'a-inc', kinds: ['counter', 'ledger'] });

    const kinds = Array.from({ length: 100 }, (_, i) => `kind-number-${i}`);
    const long = encodeMeta(member('a', { kinds }));
    expect(long['kinds']).toBeUndefined();
    expect(Number(long['kinds-parts'])).toBeGreaterThan(1);
    for (const value of Object.values(long)) expect(value.length).toBeLessThanOrEqual(512);
    expect(decodeMeta(long)).toEqual({ id: 'a', incarnation: 'a-inc', kinds });

    const { ['kinds-2']: _lost, ...missingPart } = long;
    expect(decodeMeta(missingPart)).toMatch(/kinds-2/);
    expect(decodeMeta(encodeMeta(member('a', { kinds: [] })))).toEqual({ id: 'a', incarnation: 'a-inc', kinds: [] });
    expect(() => encodeMeta(member('x'.repeat(513)))).toThrow(/memberId/);
  });

  it('registers one instance per incarnation with an explicit TTL check id', () => {
    const registration = registrationOf(member('a', { address: '[::1]:7001' }), 'grains', 1_000, 60_000);
    expect(registration).toMatchObject({
      serviceId: 'grains-a-inc',
      checkId: 'service:grains-a-inc',
      serviceName: 'grains',
      address: '::1',
      port: 7001,
      ttl: '1s',
      deregisterCriticalServiceAfter: '1m',
    });
  });
});

describe('reading Consul health replies', () => {
  const meta = (id: string, incarnation = `${id}-inc`, kinds = 'counter') => ({ 'member-id': id, incarnation, kinds });

  it('counts an instance only while all its checks pass, serfHealth included', () => {
    const reply = readHealthReply([
      entry('grains-a', meta('a')),
      entry('grains-b', meta('b'), { statuses: ['critical', 'passing'] }),
      entry('grains-c', meta('c'), { statuses: ['passing', 'warning'] }),
    ]);
    expect(countedMembers(reply!.instances).map((m) => m.id)).toEqual(['a']);
  });

  it('uses Node.Address when Service.Address is empty, and brackets IPv6 hosts', () => {
    const reply = readHealthReply([
      entry('grains-a', meta('a'), { address: '', nodeAddress: '10.0.0.9' }),
      entry('grains-b', meta('b'), { address: 'fe80::1' }),
    ]);
    expect(countedMembers(reply!.instances).map((m) => m.address)).toEqual(['10.0.0.9:7001', '[fe80::1]:7001']);
  });

  it('keeps the newest instance (CreateIndex) of a member whose old instance is not reaped yet', () => {
    const reply = readHealthReply([
      entry('grains-old', meta('a', 'old'), { createIndex: 5 }),
      entry('grains-new', meta('a', 'new'), { createIndex: 9 }),
      entry('grains-newer-but-dead', meta('a', 'dead'), { createIndex: 12, statuses: ['passing', 'critical'] }),
    ]);
    expect(countedMembers(reply!.instances)).toEqual([{ id: 'a', incarnation: 'new', address: '127.0.0.1:7001', kinds: ['counter'] }]);
  });

  it('skips malformed entries with a reason, and keeps the rest', () => {
    const reply = readHealthReply([
      null,
      { Service: 'nope', Checks: [] },
      { Service: { ID: 7 }, Checks: [] },
      entry('no-meta', null),
      entry('no-incarnation', { 'member-id': 'x' }),
      entry('bad-port', meta('p'), { port: 0 }),
      { ...(entry('bad-checks', meta('q')) as object), Checks: [{ Status: 1 }] },
      { ...(entry('no-checks', meta('r')) as object), Checks: [] },
      { ...(entry('meta-number', meta('s')) as object), Service: { ID: 'meta-number', Address: 'h', Port: 1, Meta: { 'member-id': 5 } } },
      entry('grains-a', meta('a')),
    ]);
    expect(countedMembers(reply!.instances).map((m) => m.id)).toEqual(['a']);
    expect(reply!.skipped.map((s) => s.serviceId)).toEqual([
      '(no Service.ID)',
      '(no Service.ID)',
      '(no Service.ID)',
      'no-meta',
      'no-incarnation',
      'bad-port',
      'bad-checks',
      'no-checks',
      'meta-number',
    ]);
    expect(readHealthReply({ not: 'an array' })).toBeUndefined();
  });
});

// ---- against the Consul-compatible test agent

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A fake member for the provider: its self, and a record of what the provider told it. */
class FakeMember implements ProviderMember {
  readonly clusterName = 'grains';
  readonly lists: { members: readonly Member[]; complete: boolean | undefined; at: number }[] = [];
  readonly logs: { level: 'log' | 'warn'; message: string }[] = [];
  constructor(public current: Member) {}
  self(): Member {
    return this.current;
  }
  setMembers(members: readonly Member[], complete?: boolean): void {
    this.lists.push({ members, complete, at: Date.now() });
  }
  probe(): void {}
  log(level: 'log' | 'warn', message: string): void {
    this.logs.push({ level, message });
  }
  /** The ids in the last list reported. */
  ids(): string[] {
    return (this.lists.at(-1)?.members ?? []).map((m) => m.id);
  }
  warnings(pattern: RegExp): string[] {
    return this.logs.filter((l) => l.level === 'warn' && pattern.test(l.message)).map((l) => l.message);
  }
}

const agents: ConsulTestAgent[] = [];
const providers: ConsulProvider[] = [];

afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.shutdown()));
  await Promise.all(agents.splice(0).map((a) => a.stop()));
});

async function startAgent(options: Parameters<typeof ConsulTestAgent.start>[0] = {}): Promise<ConsulTestAgent> {
  const agent = await ConsulTestAgent.start(options);
  agents.push(agent);
  return agent;
}

function provider(agentOrUrl: ConsulTestAgent | string, options: ConstructorParameters<typeof ConsulProvider>[0] = {}): ConsulProvider {
  const created = new ConsulProvider({
    url: typeof agentOrUrl === 'string' ? agentOrUrl : agentOrUrl.url,
    ttl: '1s',
    requestTimeout: '2s',
    retryBackoffMin: '50ms',
    retryBackoffMax: '300ms',
    ...options,
  });
  providers.push(created);
  return created;
}

/** A started provider for a serving member `id` on port 7000+n. */
async function serving(agent: ConsulTestAgent, id: string, port: number, options: ConstructorParameters<typeof ConsulProvider>[0] = {}) {
  const member = new FakeMember({ id, incarnation: `${id}-1`, address: `127.0.0.1:${port}`, kinds: ['counter', 'ledger'] });
  const p = provider(agent, options);
  await p.start(member);
  return { provider: p, member };
}

/** Register a service instance by hand, as another tool (or a crashed member) would leave it. */
async function registerByHand(agent: ConsulTestAgent, body: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'grains', ...body }) });
  expect(response.status, await response.text()).toBe(200);
}

describe('ConsulProvider against a Consul agent', () => {
  it('registers a serving member with its TTL check passing, and reports the first list before start resolves', async () => {
    const agent = await startAgent();
    const { member } = await serving(agent, 'a', 7001);

    const [service] = agent.services();
    const body = JSON.parse(service!.registerBodies[0]!) as Record<string, unknown>;
    expect(body).toEqual({
      Name: 'grains',
      ID: 'grains-a-1',
      Address: '127.0.0.1',
      Port: 7001,
      Meta: { 'member-id': 'a', incarnation: 'a-1', kinds: 'counter,ledger' },
      Check: expect.objectContaining({ CheckID: 'service:grains-a-1', TTL: '1s', DeregisterCriticalServiceAfter: '1m', Status: 'passing' }),
    });
    expect(service!.checks.map((c) => [c.checkId, c.status, c.ttlMs, c.deregisterCriticalServiceAfterMs])).toEqual([
      ['service:grains-a-1', 'passing', 1000, 60_000],
    ]);
    expect(member.lists[0]!.complete).toBe(true);
    expect(member.lists.at(-1)!.members).toEqual([{ id: 'a', incarnation: 'a-1', address: '127.0.0.1:7001', kinds: ['counter', 'ledger'] }]);
    const watches = agent.requests.filter((r) => r.path === '/v1/health/service/grains');
    expect(watches[0]!.query).toMatchObject({ index: '0', wait: '20s' });
  });

  it('keeps the check passing past several TTLs', async () => {
    const agent = await startAgent();
    await serving(agent, 'a', 7001);
    await sleep(3_500);
    expect(agent.services()[0]!.checks[0]!.status).toBe('passing');
    const passes = agent.requests.filter((r) => r.path === '/v1/agent/check/pass/service:grains-a-1' && r.status === 200);
    expect(passes.length).toBeGreaterThanOrEqual(8); // every ttl/3
    // Passes that change nothing wake no watcher: the watch stays blocked rather than polling.
    expect(agent.requests.filter((r) => r.path === '/v1/health/service/grains').length).toBeLessThanOrEqual(3);
  });

  it('lets two members see each other: the blocking watch wakes on a registration, long before its wait', async () => {
    const agent = await startAgent();
    const a = await serving(agent, 'a', 7001);
    await sleep(200); // a's watch is blocked now (index > 0, wait 20s)
    const b = await serving(agent, 'b', 7002);
    await waitFor('a to see b', () => a.member.ids().includes('b'));
    const registeredAt = agent.requests.find((r) => r.path === '/v1/agent/service/register' && r.body.includes('grains-b-1'))!.at;
    expect(a.member.lists.at(-1)!.at - registeredAt).toBeLessThan(500);
    expect(a.member.ids()).toEqual(['a', 'b']);
    expect(b.member.ids()).toEqual(['a', 'b']);
    const watches = agent.requests.filter((r) => r.path === '/v1/health/service/grains' && r.token === '');
    expect(watches.filter((r) => r.query['index'] !== '0').length).toBeGreaterThan(0);
    // Only real changes are reported: no repeated identical lists.
    const signatures = a.member.lists.map((l) => JSON.stringify(l.members));
    expect(new Set(signatures).size).toBe(signatures.length);
  });

  it('advertises IPv6 addresses unbracketed and reads them back bracketed', async () => {
    const agent = await startAgent();
    const member = new FakeMember({ id: 'v6', incarnation: 'v6-1', address: '[::1]:7009', kinds: [] });
    await provider(agent).start(member);
    expect(agent.services()[0]).toMatchObject({ address: '::1', port: 7009 });
    expect(member.lists.at(-1)!.members).toEqual([{ id: 'v6', incarnation: 'v6-1', address: '[::1]:7009', kinds: [] }]);
  });

  it('stops counting a member once one of its checks is not passing: set critical, or its TTL expired', async () => {
    const agent = await startAgent();
    const a = await serving(agent, 'a', 7001);
    const check = (id: string) => ({ CheckID: `service:${id}`, TTL: '1s', Status: 'passing' });
    await registerByHand(agent, {
      ID: 'grains-x-1',
      Address: '127.0.0.1',
      Port: 7010,
      Meta: { 'member-id': 'x', incarnation: 'x-1', kinds: 'k' },
      Check: check('grains-x-1'),
    });
    await registerByHand(agent, {
      ID: 'grains-y-1',
      Address: '127.0.0.1',
      Port: 7011,
      Meta: { 'member-id': 'y', incarnation: 'y-1', kinds: 'k' },
      Check: check('grains-y-1'),
    });
    await waitFor('x and y counted', () => a.member.ids().join() === 'a,x,y');

    agent.setCheckStatus('service:grains-x-1', 'critical', 'operator says no');
    await waitFor('x dropped', () => a.member.ids().join() === 'a,y', 500);
    // y is never passed: its TTL expires and it turns critical.
    await waitFor('y dropped at TTL expiry', () => a.member.ids().join() === 'a', 2_000);
  });

  it('deregisters on leave but keeps watching; shutdown stops the watch at once', async () => {
    const agent = await startAgent();
    const a = await serving(agent, 'a', 7001);
    const b = await serving(agent, 'b', 7002);
    await waitFor('a to see b', () => a.member.ids().join() === 'a,b');

    await Promise.all([b.provider.leave(), b.provider.leave()]);
    expect(agent.services().map((s) => s.id)).toEqual(['grains-a-1']);
    await waitFor('a to drop b', () => a.member.ids().join() === 'a');
    await waitFor('b (leaving) still watching', () => b.member.ids().join() === 'a');
    const passesBefore = agent.requests.filter((r) => r.path.endsWith('grains-b-1')).length;

    const started = Date.now();
    await Promise.all([b.provider.shutdown(), b.provider.shutdown()]);
    expect(Date.now() - started).toBeLessThan(1_000); // the 20s blocking query was aborted
    await a.provider.shutdown();
    expect(agent.services()).toEqual([]);
    const count = agent.requests.length;
    await sleep(500);
    expect(agent.requests.length).toBe(count);
    expect(agent.requests.filter((r) => r.path.endsWith('grains-b-1')).length).toBe(passesBefore);
    expect(a.provider.health()).toEqual({ reachable: false, detail: 'shut down' });
  });

  it('sends the ACL token; without it, registration is refused with a clear 403', async () => {
    const agent = await startAgent({ token: 's3cret' });
    const a = await serving(agent, 'a', 7001, { token: 's3cret' });
    expect(a.member.ids()).toEqual(['a']);
    expect(agent.requests.every((r) => r.token === 's3cret' && r.tokenSource === 'header')).toBe(true);

    const anonymous = new FakeMember({ id: 'b', incarnation: 'b-1', address: '127.0.0.1:7002', kinds: [] });
    const refused = provider(agent).start(anonymous);
    await expect(refused).rejects.toThrow(GrainConfigurationError);
    await expect(refused).rejects.toThrow(/403.*Permission denied.*token is missing/);
    expect(anonymous.warnings(/403/).length).toBe(1);

    const wrong = new FakeMember({ id: 'c', incarnation: 'c-1', address: '', kinds: [] });
    await expect(provider(agent, { token: 'wrong' }).start(wrong)).rejects.toThrow(/403.*ACL not found.*unknown to Consul or lacks permission/);

    // A client-only member without a token reads a filtered, empty list: it is told why.
    const reader = new FakeMember({ id: 'd', incarnation: 'd-1', address: '', kinds: [] });
    await provider(agent).start(reader);
    expect(reader.ids()).toEqual([]);
    expect(reader.warnings(/no token is set/).length).toBe(1);
  });

  it('keeps the member list while Consul is down, and re-registers when a restarted agent comes back', async () => {
    const first = await startAgent();
    const port = first.port;
    const a = await serving(first, 'a', 7001);
    const b = await serving(first, 'b', 7002);
    await waitFor('a to see b', () => a.member.ids().join() === 'a,b');
    const reported = a.member.lists.length;

    await first.stop();
    await waitFor('a to notice', () => !a.provider.health().reachable);
    expect(a.provider.health().detail).toMatch(/failing since .*keeping the last member list \(2 members\)/);
    await sleep(1_500); // more than a TTL: passes fail too
    expect(a.member.lists.length).toBe(reported);
    expect(a.member.warnings(/cannot be reached/).length).toBe(1);

    const second = await startAgent({ port });
    await waitFor('both registered again', () => second.services().length === 2, 3_000);
    await waitFor('a reachable again', () => a.provider.health().reachable && b.provider.health().reachable);
    expect(a.member.logs.filter((l) => /answers again/.test(l.message)).length).toBe(1);
    expect(a.member.logs.some((l) => /no longer knows check/.test(l.message))).toBe(true);
    await sleep(1_200); // past the hold after recovery
    // The restarted agent's empty list was never reported as everyone gone.
    expect(a.member.lists.slice(reported).every((l) => l.members.length === 2)).toBe(true);
    expect(a.member.ids()).toEqual(['a', 'b']);
  });

  it('waits at start while Consul cannot be reached, and starts once it answers', async () => {
    const port = await freePort();
    const member = new FakeMember({ id: 'a', incarnation: 'a-1', address: '127.0.0.1:7001', kinds: [] });
    const p = provider(`http://127.0.0.1:${port}`);
    let started = false;
    const starting = p.start(member).then(() => (started = true));
    await sleep(700);
    expect(started).toBe(false);
    expect(p.health().reachable).toBe(false);
    expect(member.warnings(/cannot be reached .*ECONNREFUSED/).length).toBe(1);
    const agent = await startAgent({ port });
    await starting;
    expect(agent.services().map((s) => s.id)).toEqual(['grains-a-1']);
    expect(p.health()).toEqual({ reachable: true });
  });

  it('refuses to start on an unknown datacenter, and never throws out of leave while Consul is down', async () => {
    const agent = await startAgent();
    const reader = new FakeMember({ id: 'r', incarnation: 'r-1', address: '', kinds: [] });
    await expect(provider(agent, { datacenter: 'dc9' }).start(reader)).rejects.toThrow(/No path to datacenter/);
    expect(agent.requests.filter((r) => r.path.startsWith('/v1/agent/')).length).toBe(0); // a client-only member never registers

    const a = await serving(agent, 'a', 7001);
    await agent.stop();
    await a.provider.leave();
    expect(a.member.warnings(/could not deregister grains-a-1/).length).toBe(1);
    const started = Date.now();
    await a.provider.shutdown();
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('registers a new incarnation in place of the old one, promptly, and keeps passing it', async () => {
    const agent = await startAgent();
    const a = await serving(agent, 'a', 7001);
    const b = await serving(agent, 'b', 7002);
    a.member.current = { ...a.member.current, incarnation: 'a-2' };
    const changedAt = Date.now();
    a.provider.selfChanged(a.member.current);
    await waitFor('b to see a-2', () => b.member.lists.at(-1)!.members.find((m) => m.id === 'a')?.incarnation === 'a-2', 1_000);
    await waitFor('the old instance gone', () => !agent.services().some((s) => s.id === 'grains-a-1'), 1_000);
    expect(Date.now() - changedAt).toBeLessThan(1_000);
    await sleep(1_500);
    const instance = agent.services().find((s) => s.id === 'grains-a-2');
    expect(instance?.checks[0]?.status).toBe('passing');
    expect(instance?.meta).toMatchObject({ 'member-id': 'a', incarnation: 'a-2' });
  });

  it('skips instances that hold no member, warning once, and keeps the newest instance of a member', async () => {
    const agent = await startAgent();
    const a = await serving(agent, 'a', 7001);
    const passing = (id: string) => ({ CheckID: `service:${id}`, TTL: '1m', Status: 'passing' });
    await registerByHand(agent, { ID: 'stranger', Address: '127.0.0.1', Port: 9000, Check: passing('stranger') });
    await registerByHand(agent, { ID: 'half', Address: '127.0.0.1', Port: 9001, Meta: { 'member-id': 'h' }, Check: passing('half') });
    await registerByHand(agent, {
      ID: 'grains-z-1',
      Address: '127.0.0.1',
      Port: 7020,
      Meta: { 'member-id': 'z', incarnation: 'z-1', kinds: 'k' },
      Check: passing('grains-z-1'),
    });
    await registerByHand(agent, {
      ID: 'grains-z-2',
      Address: '127.0.0.1',
      Port: 7021,
      Meta: { 'member-id': 'z', incarnation: 'z-2', kinds: 'k' },
      Check: passing('grains-z-2'),
    });
    await waitFor('z counted', () => a.member.ids().join() === 'a,z');
    expect(a.member.lists.at(-1)!.members.find((m) => m.id === 'z')).toMatchObject({ incarnation: 'z-2', address: '127.0.0.1:7021' });
    // More changes, more polls: still one warning per skipped instance.
    await registerByHand(agent, {
      ID: 'grains-w-1',
      Address: '127.0.0.1',
      Port: 7030,
      Meta: { 'member-id': 'w', incarnation: 'w-1', kinds: '' },
      Check: passing('grains-w-1'),
    });
    await waitFor('w counted', () => a.member.ids().join() === 'a,w,z');
    const skipped = a.member.warnings(/do not hold a member/).join('\n');
    expect(skipped.match(/"stranger"/g)?.length).toBe(1);
    expect(skipped.match(/"half"/g)?.length).toBe(1);
    expect(skipped).toMatch(/"half" \(its Meta has no "incarnation"\)/);
  });
});
