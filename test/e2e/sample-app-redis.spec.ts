import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemberHarness, type MemberSpec, ROOT } from '../support/member-harness.js';
import { type RedisHandle, type RedisReply, startRedis } from '../support/redis-server.js';

/**
 * The sample bank in Redis mode as three REAL member processes from the build
 * (`dist/sample-app/main.js`, see test/support/global-setup.ts) against one REAL redis-server,
 * configured by environment the way the README runs them: static membership,
 * IDENTITY_LOOKUP=redis (claim first, member leases, epochs), and the ledger and the transfer
 * journal in the same Redis. Everything is checked over HTTP, and in Redis.
 */
const MAIN = join(ROOT, 'dist', 'sample-app', 'main.js');
const CLUSTER = 'bank-redis-e2e';
const PREFIX = 'e2e';
const TAG = `{${PREFIX}:${CLUSTER}}`;

function redisMember(redisUrl: string): MemberSpec {
  return {
    script: MAIN,
    extraPorts: 1,
    env: ({ port, extraPorts }) => ({
      HTTP_PORT: String(extraPorts[0]),
      REMOTE_PORT: String(port),
      CLUSTER_PROVIDER: 'static',
      IDENTITY_LOOKUP: 'redis',
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: PREFIX,
      REDIS_LEASE: 'fast',
      CLIENT_ONLY: undefined,
      REMOTE_HOST: undefined,
      ADVERTISED_HOST: undefined,
      NO_COLOR: '1',
    }),
    isReady: (line) => line.text.includes('[Bank] Listening on http://localhost:'),
  };
}

interface AccountView {
  readonly id: string;
  readonly balance: number;
  readonly member: string;
  readonly activation: string;
}

/** The HTTP API of one member. */
function http(label: string, port: number) {
  const send = async (method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return {
    label,
    get: (path: string) => send('GET', path),
    post: (path: string, body: unknown) => send('POST', path, body),
    async deposit(id: string, amount: number): Promise<void> {
      const res = await send('POST', `/accounts/${id}/deposit`, { amount });
      expect(res.status, `${label} deposit ${amount} to ${id}: ${JSON.stringify(res.body)}`).toBe(200);
    },
    async account(id: string): Promise<AccountView> {
      const res = await send('GET', `/accounts/${id}`);
      expect(res.status, `${label} GET /accounts/${id}: ${JSON.stringify(res.body)}`).toBe(200);
      return res.body as unknown as AccountView;
    },
  };
}
type Http = ReturnType<typeof http>;

function hash(reply: RedisReply): Record<string, string> {
  const flat = reply as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('sample app in Redis mode: three member processes, one redis-server, over HTTP', () => {
  let redis: RedisHandle | undefined;
  let h: MemberHarness | undefined;
  let apis: Http[] = [];
  let addresses: string[] = [];
  /** The lookup entry (`{member, incarnation, address, activation, epoch}`) of `kind/identity`. */
  const entry = async (name: string) => hash(await redis!.command('HGETALL', `${TAG}:ci:${name}`));
  const ledger = async (id: string) => hash(await redis!.command('HGETALL', `${TAG}:ledger:${id}`));

  beforeAll(async () => {
    redis = await startRedis({ label: 'bank redis' });
    h = await MemberHarness.start([redisMember(redis.url), redisMember(redis.url), redisMember(redis.url)], { clusterName: CLUSTER });
    apis = h.members.map((m, i) => http(m.label, h!.extraPorts[i]![0]!));
    addresses = h.addresses;
    // Ready once each member has heard from the other two (until then: 503).
    for (const api of apis) {
      const until = Date.now() + 20_000;
      while ((await api.get('/cluster/members')).body['ready'] !== true) {
        if (Date.now() > until) throw new Error(`${api.label}: the cluster did not form within 20 s`);
        await sleep(100);
      }
    }
  }, 40_000);

  afterAll(async () => {
    await h?.shutdown();
    await redis?.stop();
  }, 30_000);

  it('deposits racing through all three members land on one activation per account; every member reads the same balance and activation', async () => {
    const ids = Array.from({ length: 12 }, (_, n) => `race-${n}`);
    // Every account gets a deposit through every member at once: the members race to claim it.
    await Promise.all(ids.flatMap((id) => apis.map((api) => api.deposit(id, 1.25))));
    for (const id of ids) {
      const views = await Promise.all(apis.map((api) => api.account(id)));
      expect(views[0]).toMatchObject({ id, balance: 3.75 });
      expect(views[1], `${id} through member 2`).toEqual(views[0]);
      expect(views[2], `${id} through member 3`).toEqual(views[0]);
      expect(addresses).toContain(views[0]!.member);
      // Redis agrees: the claim names that activation, and the ledger holds the balance written with its epoch.
      const claim = await entry(`account/${id}`);
      expect(claim).toMatchObject({ member: views[0]!.member, activation: views[0]!.activation });
      expect(await ledger(id)).toEqual({ balance: '3.75', epoch: claim['epoch'] });
    }
  });

  it('a transfer between accounts hosted on different members, asked of the third, moves the money once', async () => {
    const [m1, m2, m3] = apis as [Http, Http, Http];
    // New accounts are claimed by the member first asked (prefer-local placement).
    await m1.deposit('payer', 100);
    await m2.deposit('payee', 1);
    expect((await m3.account('payer')).member).toBe(addresses[0]);
    expect((await m3.account('payee')).member).toBe(addresses[1]);

    const transfer = { id: 'e2e-redis-t1', from: 'payer', to: 'payee', amount: 40 };
    const first = await m3.post('/transfers', transfer);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ ...transfer, status: 'completed' });
    expect(await m1.post('/transfers', transfer)).toEqual(first); // the same id through another member
    for (const api of apis) {
      expect(await api.account('payer')).toMatchObject({ balance: 60, member: addresses[0] });
      expect(await api.account('payee')).toMatchObject({ balance: 41, member: addresses[1] });
    }
    expect(JSON.parse(hash(await redis!.command('HGETALL', `${TAG}:journal:e2e-redis-t1`))['result']!)).toEqual(first.body);
  });

  it('after SIGKILL of the member hosting an account, a survivor activates it again within seconds: same balance (from the Redis ledger), new activation and epoch', async () => {
    // Accounts claimed by member 1 (index 0): "payer" and one more.
    await apis[0]!.deposit('crash-me', 7.5);
    const victims = ['payer', 'crash-me'];
    const before = new Map<string, { view: AccountView; epoch: number }>();
    for (const id of victims) {
      const view = await apis[1]!.account(id);
      expect(view.member).toBe(addresses[0]);
      before.set(id, { view, epoch: Number((await entry(`account/${id}`))['epoch']) });
    }

    await h!.kill(0, 'SIGKILL');
    const killedAt = Date.now();
    const [, s1, s2] = apis as [Http, Http, Http];

    // Ask a survivor until it answers: the dead member's lease must lapse first (fast lease: 1.5 s).
    let view: AccountView | undefined;
    const seen: string[] = [];
    while (view === undefined && Date.now() - killedAt < 15_000) {
      const res = await s1.get('/accounts/payer').catch((error: unknown) => ({ status: 0, body: { error: String(error) } as Record<string, unknown> }));
      if (res.status === 200) view = res.body as unknown as AccountView;
      else {
        seen.push(`${res.status} ${String(res.body['code'] ?? res.body['error'] ?? '')}`);
        await sleep(100);
      }
    }
    const failoverMs = Date.now() - killedAt;
    expect(view, `no answer within 15 s; answers meanwhile: ${seen.join(', ')}`).toBeDefined();
    // The fast lease lapses within 1.5 s; a caller whose cached address of the account is the
    // dead member may also wait out its reconnect backoff to that member (capped at 5 s).
    expect(failoverMs).toBeLessThan(8_000);
    const old = before.get('payer')!;
    expect(view).toMatchObject({ id: 'payer', balance: old.view.balance, member: addresses[1] });
    expect(view!.activation).not.toBe(old.view.activation);
    const claim = await entry('account/payer');
    expect(claim).toMatchObject({ member: addresses[1], activation: view!.activation });
    expect(Number(claim['epoch'])).toBeGreaterThan(old.epoch);

    // The other survivor finds the same new activation (it does not activate its own).
    expect(await s2.account('payer')).toEqual(view);
    // The other account of the dead member: the member asked claims it, with its balance.
    const other = await s2.account('crash-me');
    expect(other).toMatchObject({ balance: 7.5, member: addresses[2] });
    expect(other.activation).not.toBe(before.get('crash-me')!.view.activation);
    expect(await s1.account('crash-me')).toEqual(other);

    // Writes go on with the new epoch, and transfers work across the two survivors.
    await s2.deposit('payer', 0.5);
    expect(await ledger('payer')).toEqual({ balance: '60.5', epoch: claim['epoch'] });
    const transfer = await s2.post('/transfers', { id: 'e2e-redis-t2', from: 'payer', to: 'crash-me', amount: 10 });
    expect(transfer.status, JSON.stringify(transfer.body)).toBe(200);
    expect(await s1.account('payer')).toMatchObject({ balance: 50.5 });
    expect(await s1.account('crash-me')).toMatchObject({ balance: 17.5 });
  });
});
