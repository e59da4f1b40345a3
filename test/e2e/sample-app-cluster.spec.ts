import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemberHarness, type MemberSpec, ROOT } from '../support/member-harness.js';

/**
 * The sample bank as four REAL processes from the build (`dist/sample-app/main.js`, see
 * test/support/global-setup.ts), configured by environment the way the README runs them:
 * three hosting members (REMOTE_PORT, static membership, hash placement) and a client-only
 * member, each with its own HTTP port. Everything is checked over HTTP.
 */
const MAIN = join(ROOT, 'dist', 'sample-app', 'main.js');
const HOSTING = 3;

/** The environment of a sample member; the harness adds CLUSTER_NAME and STATIC_MEMBERS (every hosting member's 127.0.0.1:port). */
function sampleMember(clientOnly: boolean): MemberSpec {
  return {
    script: MAIN,
    clientOnly,
    extraPorts: 1,
    label: clientOnly ? 'bank client' : undefined,
    env: ({ port, extraPorts }) => ({
      HTTP_PORT: String(extraPorts[0]),
      CLUSTER_PROVIDER: 'static',
      IDENTITY_LOOKUP: 'hash',
      ...(clientOnly ? { CLIENT_ONLY: 'true', REMOTE_PORT: undefined } : { CLIENT_ONLY: undefined, REMOTE_PORT: String(port) }),
      REMOTE_HOST: undefined,
      ADVERTISED_HOST: undefined,
      NO_COLOR: '1',
    }),
    isReady: (line) => line.text.includes('[Bank] Listening on http://localhost:'),
  };
}

interface Member {
  readonly id: string;
  readonly address: string;
  readonly kinds: readonly string[];
}
interface MembersView {
  readonly clusterName: string;
  readonly memberId: string;
  readonly kinds: readonly string[];
  readonly members: readonly Member[];
  readonly ready: boolean;
}
interface AccountView {
  readonly id: string;
  readonly balance: number;
  readonly member: string;
  readonly activation: string;
}

/** The HTTP API of the member labelled `label`, listening on `port`. */
function http(label: string, port: number) {
  const base = `http://127.0.0.1:${port}`;
  const send = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return {
    label,
    get: (path: string) => send('GET', path),
    post: (path: string, body: unknown) => send('POST', path, body),
    async members(): Promise<MembersView> {
      const res = await send('GET', '/cluster/members');
      expect(res.status).toBe(200);
      return res.body as unknown as MembersView;
    },
    async account(id: string): Promise<AccountView> {
      const res = await send('GET', `/accounts/${id}`);
      expect(res.status, `${label} GET /accounts/${id}: ${JSON.stringify(res.body)}`).toBe(200);
      return res.body as unknown as AccountView;
    },
  };
}
type Http = ReturnType<typeof http>;

const hostingOf = (view: MembersView) => view.members.filter((m) => m.address !== '' && m.kinds.includes('account'));

/** Resolves once `api` answers GET /cluster/members with every hosting member known and `ready`. */
async function untilClusterFormed(api: Http, timeoutMs = 20_000): Promise<MembersView> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const view = await api.members();
      if (hostingOf(view).length === HOSTING && view.ready) return view;
      last = view;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${api.label}: the cluster did not form within ${timeoutMs} ms; last answer: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

describe('sample app: a cluster of three member processes and a client-only member, over HTTP', () => {
  let h: MemberHarness | undefined;
  let apis: Http[] = [];
  let addresses: string[] = [];

  beforeAll(async () => {
    h = await MemberHarness.start([sampleMember(false), sampleMember(false), sampleMember(false), sampleMember(true)], { clusterName: 'bank-e2e' });
    apis = h.members.map((m, i) => http(m.label, h!.extraPorts[i]![0]!));
    addresses = h.addresses;
    await Promise.all(apis.map((api) => untilClusterFormed(api)));
  }, 60_000);

  afterAll(async () => {
    await h?.shutdown();
  }, 30_000);

  it('every member knows the same three hosting members; the client-only one hosts nothing', async () => {
    const views = await Promise.all(apis.map((api) => api.members()));
    views.forEach((view, i) => {
      expect(view.clusterName).toBe('bank-e2e');
      expect(
        hostingOf(view)
          .map((m) => m.id)
          .sort(),
      ).toEqual([...addresses].sort());
      if (i < HOSTING) {
        expect(view.memberId).toBe(addresses[i]); // a member's id is its advertised address
        expect([...view.kinds].sort()).toEqual(['account', 'transfer']);
      } else {
        expect(addresses).not.toContain(view.memberId);
        expect(view.kinds).toEqual([]);
      }
    });
  });

  it('50 accounts deposited through member 1 read the same balance, member and activation through members 2 and 3', async () => {
    const ids = Array.from({ length: 50 }, (_, n) => `acct-${n}`);
    const [m1, m2, m3] = apis as [Http, Http, Http];
    const deposits = await Promise.all(ids.map((id, n) => m1.post(`/accounts/${id}/deposit`, { amount: n + 1 })));
    deposits.forEach((res, n) => expect(res, ids[n]).toEqual({ status: 200, body: { id: ids[n], balance: n + 1 } }));
    await Promise.all(
      ids.map((id, n) => m1.post(`/accounts/${id}/deposit`, { amount: 0.5 }).then((res) => expect(res.body).toEqual({ id, balance: n + 1.5 }))),
    );

    const hosts = new Set<string>();
    for (const [n, id] of ids.entries()) {
      const [a, b, c] = await Promise.all([m1.account(id), m2.account(id), m3.account(id)]);
      expect(a).toMatchObject({ id, balance: n + 1.5 });
      expect(b, `${id} through member 2`).toEqual(a);
      expect(c, `${id} through member 3`).toEqual(a);
      expect(addresses).toContain(a.member);
      hosts.add(a.member);
    }
    expect(hosts).toEqual(new Set(addresses)); // hash placement spreads 50 accounts over all three
  });

  it('a transfer between accounts hosted on different members moves the money once, whichever member is asked', async () => {
    const [m1, m2, m3] = apis as [Http, Http, Http];
    // Two accounts on different members, found by asking.
    const where = new Map<string, string>();
    for (let n = 0; n < 30 && new Set(where.values()).size < 2; n++) {
      const id = `payer-${n}`;
      where.set(id, (await m1.account(id)).member);
    }
    const [from, fromHost] = [...where][0]!;
    const to = [...where].find(([, host]) => host !== fromHost)?.[0];
    expect(to, 'two accounts on different members').toBeDefined();

    expect((await m2.post(`/accounts/${from}/deposit`, { amount: 100 })).status).toBe(200);
    const transfer = { id: 'e2e-t1', from, to: to!, amount: 40 };
    const first = await m3.post('/transfers', transfer);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ ...transfer, status: 'completed' });
    const again = await m1.post('/transfers', transfer); // the same transfer id through another member
    expect(again).toEqual(first);

    for (const api of [m1, m2, m3]) {
      expect(await api.account(from)).toMatchObject({ balance: 60, member: fromHost });
      expect(await api.account(to!)).toMatchObject({ balance: 40, member: where.get(to!) });
    }
    expect((await m2.get('/transfers/e2e-t1')).body).toEqual(first.body);

    // An account's business error crosses members with its code: nothing moves.
    const overdraft = await m1.post('/transfers', { id: 'e2e-t2', from, to: to!, amount: 1_000 });
    expect(overdraft.status).toBe(409);
    expect(overdraft.body).toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect((await m3.account(from)).balance).toBe(60);
    expect((await m3.account(to!)).balance).toBe(40);
  });

  it('the client-only member serves the same accounts from the members hosting them, and writes through them', async () => {
    const [m1, m2, , client] = apis as [Http, Http, Http, Http];
    const ids = Array.from({ length: 10 }, (_, n) => `acct-${n}`); // deposited to in the 50-account test
    for (const id of ids) expect(await client.account(id)).toEqual(await m2.account(id));

    const res = await client.post('/accounts/client-made/deposit', { amount: 7 });
    expect(res).toEqual({ status: 200, body: { id: 'client-made', balance: 7 } });
    const seen = await client.account('client-made');
    expect(addresses).toContain(seen.member);
    expect(await m1.account('client-made')).toEqual(seen);

    const transfer = await client.post('/transfers', { id: 'e2e-client-t', from: 'client-made', to: 'acct-0', amount: 2 });
    expect(transfer.status, JSON.stringify(transfer.body)).toBe(200);
    expect((await m1.account('client-made')).balance).toBe(5);
    expect((await m2.account('acct-0')).balance).toBe(3.5); // 1 + 0.5 earlier, + 2
  });
});

describe('sample app: invalid configuration', () => {
  it('ends the process at startup with exit code 1 and one line naming the variable, no stack trace', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ REMOTE_PORT: 'abc' }, 'Configuration error: REMOTE_PORT must be a port number from 1 to 65535; got "abc".'],
      [{ REMOTE_PORT: '4001', CLUSTER_PROVIDER: 'etcd' }, 'Configuration error: CLUSTER_PROVIDER must be one of: static, consul; got "etcd".'],
      [
        { REMOTE_PORT: '4001', CLUSTER_PROVIDER: 'consul', STATIC_MEMBERS: '127.0.0.1:4001' },
        'Configuration error: STATIC_MEMBERS is set but CLUSTER_PROVIDER is "consul": with Consul the members find each other there; unset STATIC_MEMBERS (or set CLUSTER_PROVIDER=static).',
      ],
    ];
    const bankEnv = [
      'REMOTE_PORT',
      'REMOTE_HOST',
      'ADVERTISED_HOST',
      'CLUSTER_NAME',
      'CLUSTER_PROVIDER',
      'STATIC_MEMBERS',
      'CONSUL_URL',
      'CONSUL_TOKEN',
      'IDENTITY_LOOKUP',
      'CLIENT_ONLY',
      'HTTP_PORT',
    ];
    const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !bankEnv.includes(key)));
    for (const [env, message] of cases) {
      const outcome = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        // NOTE: execFile's timeout kills the child: nothing outlives the test.
        const child = execFile(process.execPath, [MAIN], { cwd: ROOT, env: { ...base, ...env }, timeout: 15_000 }, (_error, stdout, stderr) =>
          resolve({ code: child.exitCode, stdout, stderr }),
        );
      });
      expect(outcome.code, JSON.stringify(env)).toBe(1);
      expect(outcome.stderr).toBe(`${message}\n`);
      expect(outcome.stdout).toBe('');
    }
  });
});
