import { afterEach, describe, expect, it } from 'vitest';
import { ConsulTestAgent, type ConsulTestAgentOptions, parseGoDuration } from '../support/consul-agent.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const started: ConsulTestAgent[] = [];
async function agent(options?: ConsulTestAgentOptions): Promise<ConsulTestAgent> {
  const a = await ConsulTestAgent.start(options);
  started.push(a);
  return a;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((a) => a.stop()));
});

interface Answer {
  status: number;
  text: string;
  headers: Headers;
  /** X-Consul-Index as a number (NaN when absent). */
  index: number;
  ms: number;
}

async function call(a: ConsulTestAgent, method: string, path: string, body?: string | object, headers: Record<string, string> = {}): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(`${a.url}${path}`, { method, headers, body: typeof body === 'object' ? JSON.stringify(body) : body });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers, index: Number(res.headers.get('x-consul-index')), ms: performance.now() - t0 };
}
const put = (a: ConsulTestAgent, path: string, body?: string | object, headers?: Record<string, string>): Promise<Answer> =>
  call(a, 'PUT', path, body, headers);
const get = (a: ConsulTestAgent, path: string, headers?: Record<string, string>): Promise<Answer> => call(a, 'GET', path, undefined, headers);

interface Entry {
  Node: { Node: string; Address: string; Datacenter: string };
  Service: { ID: string; Service: string; Tags: string[]; Address: string; Meta: Record<string, string> | null; Port?: number; ModifyIndex: number };
  Checks: Array<{ CheckID: string; Status: string; Output: string; Type: string; ServiceID: string }>;
}
async function health(a: ConsulTestAgent, query = '', headers?: Record<string, string>): Promise<{ answer: Answer; entries: Entry[] }> {
  const answer = await get(a, `/v1/health/service/grains${query}`, headers);
  expect(answer.status, answer.text).toBe(200);
  return { answer, entries: JSON.parse(answer.text) as Entry[] };
}

function member(id: string, check: object = { TTL: '10s' }, extra: object = {}): object {
  return { Name: 'grains', ID: id, Port: 7001, Check: check, ...extra };
}

describe('register: body decoding as Consul does it', () => {
  it('matches keys case-insensitively, ignores unknown top-level keys, reads a number TTL as nanoseconds', async () => {
    const a = await agent();
    const raw = '{"name":"grains","id":"m1","PORT":7001,"tags":["a"],"Whatever":{"x":1},"check":{"ttl":1500000000,"notes":"n"}}';
    expect(await put(a, '/v1/agent/service/register', raw)).toMatchObject({ status: 200, text: '' });
    const [svc] = a.services();
    expect(svc).toMatchObject({ id: 'm1', name: 'grains', port: 7001, tags: ['a'], registerBodies: [raw] });
    expect(svc!.checks).toMatchObject([{ checkId: 'service:m1', name: "Service 'grains' check", notes: 'n', status: 'critical', output: '', ttlMs: 1500 }]);
  });

  it('rejects with Consul texts: empty body, bad JSON, unknown check key, unit-less TTL, type errors, no name, any-address', async () => {
    const a = await agent();
    const cases: Array<[string, string]> = [
      ['', 'Request decode failed: EOF'],
      ['{"Name":"grains",', 'Request decode failed: unexpected EOF'],
      ['{"Name" "grains"}', "Request decode failed: invalid character '\"' after object key"],
      ['{"Name":"grains","Check":{"ID":"c1","TTL":"5s"}}', 'Request decode failed: json: unknown field "ID"'],
      ['{"Name":"grains","Check":{"TTL":"15"}}', 'Request decode failed: time: missing unit in duration "15"'],
      ['{"Name":"grains","Check":{"TTL":"5 s"}}', 'Request decode failed: time: unknown unit " s" in duration "5 s"'],
      ['{"Name":"grains","Port":"7001"}', 'Request decode failed: json: cannot unmarshal string into Go struct field .Port of type int'],
      ['{"Name":"grains","Meta":{"k":1}}', 'Request decode failed: json: cannot unmarshal number into Go struct field .Meta of type string'],
      ['{"ID":"m1","Port":7001}', 'Missing service name'],
      ['{"Name":"grains","Address":"0.0.0.0"}', 'Invalid service address'],
      ['{"Name":"grains","Weights":{"Passing":0,"Warning":1}}', 'Invalid Weights: Passing must be greater than 0'],
      ['{"Name":"grains","Meta":{"a.b":"v"}}', "Invalid Service Meta: Couldn't load metadata pair ('a.b', 'v'): Key contains invalid characters"],
      ['{"Name":"grains","Check":{"DeregisterCriticalServiceAfter":"1m"}}', 'Invalid check: TTL must be > 0 for TTL checks'],
      ['{"Name":"grains","Check":{"TTL":"5s","Interval":"5s"}}', 'Invalid check: Interval and TTL cannot both be specified'],
      ['{"Name":"grains","Check":{"TTL":"5s","Status":"ok"}}', "Status for checks must 'passing', 'warning', 'critical'"],
    ];
    for (const [body, text] of cases) {
      const answer = await put(a, '/v1/agent/service/register', body);
      expect({ body, status: answer.status, text: answer.text }).toEqual({ body, status: 400, text });
      if (text !== '') expect(answer.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    }
    expect(a.services()).toEqual([]);
    // An all-zero Check is ignored; a top-level DeregisterCriticalServiceAfter is silently ignored.
    expect((await put(a, '/v1/agent/service/register', '{"Name":"grains","Check":{},"DeregisterCriticalServiceAfter":"1m"}')).status).toBe(200);
    expect(a.services()[0]!.checks).toEqual([]);
  });

  it('parses Go durations like time.ParseDuration', () => {
    expect(parseGoDuration('1m30s')).toEqual({ ns: 90_000_000_000n });
    expect(parseGoDuration('1.5h')).toEqual({ ns: 5_400_000_000_000n });
    expect(parseGoDuration('-2ms')).toEqual({ ns: -2_000_000n });
    expect(parseGoDuration('0')).toEqual({ ns: 0n });
    expect(parseGoDuration('1s500us')).toEqual({ ns: 1_000_500_000n });
    expect(parseGoDuration('')).toEqual({ error: 'time: invalid duration ""' });
    expect(parseGoDuration('10')).toEqual({ error: 'time: missing unit in duration "10"' });
    expect(parseGoDuration('3d')).toEqual({ error: 'time: unknown unit "d" in duration "3d"' });
  });
});

describe('checks: defaults, updates, TTL', () => {
  it('defaults check IDs, starts critical unless Status is given, and re-registering keeps the status', async () => {
    const a = await agent();
    await put(a, '/v1/agent/service/register', member('m1', { TTL: '10s' }));
    await put(a, '/v1/agent/service/register', { Name: 'grains', ID: 'm2', Checks: [{ TTL: '10s', Status: 'passing' }, { TTL: '10s' }] });
    expect(a.services().map((s) => s.checks.map((c) => [c.checkId, c.status]))).toEqual([
      [['service:m1', 'critical']],
      [
        ['service:m2:1', 'passing'],
        ['service:m2:2', 'critical'],
      ],
    ]);
    expect((await put(a, '/v1/agent/check/pass/service:m1?note=up')).status).toBe(200);
    const before = a.index;
    // Same definition again: the check keeps "passing" (not the initial critical) and nothing changes in the catalog.
    expect((await put(a, '/v1/agent/service/register', member('m1', { TTL: '10s' }))).status).toBe(200);
    expect(a.services()[0]!.checks[0]).toMatchObject({ status: 'passing', output: 'up' });
    expect(a.index).toBe(before);
    // replace-existing-checks drops the checks missing from the request.
    await put(a, '/v1/agent/service/register?replace-existing-checks', { Name: 'grains', ID: 'm2', Check: { CheckID: 'only', TTL: '10s' } });
    expect(a.services()[1]!.checks.map((c) => c.checkId)).toEqual(['only']);
  });

  it('pass/warn/fail/update set status and Output; unknown check → 404; update validates its body', async () => {
    const a = await agent();
    await put(a, '/v1/agent/service/register', member('m1'));
    const index0 = (await health(a)).answer.index;
    expect((await put(a, '/v1/agent/check/pass/service:m1?note=all%20good')).status).toBe(200);
    const { answer, entries } = await health(a);
    expect(answer.index).toBeGreaterThan(index0);
    expect(entries[0]!.Checks.map((c) => [c.CheckID, c.Status, c.Output, c.Type])).toEqual([
      ['serfHealth', 'passing', 'Agent alive and reachable', ''],
      ['service:m1', 'passing', 'all good', 'ttl'],
    ]);
    await put(a, '/v1/agent/check/warn/service:m1');
    expect(a.services()[0]!.checks[0]).toMatchObject({ status: 'warning', output: '' });
    await put(a, '/v1/agent/check/update/service:m1', { Status: 'critical', Output: 'down' });
    expect(a.services()[0]!.checks[0]).toMatchObject({ status: 'critical', output: 'down' });
    expect(await put(a, '/v1/agent/check/update/service:m1', { Status: 'dead' })).toMatchObject({ status: 400, text: "Invalid check status: 'dead'" });
    expect(await put(a, '/v1/agent/check/update/service:m1', { Status: 'passing', Extra: 1 })).toMatchObject({
      status: 400,
      text: 'Request decode failed: json: unknown field "Extra"',
    });
    expect(await put(a, '/v1/agent/check/pass/m1')).toMatchObject({
      status: 404,
      text: 'Unknown check ID "m1". Ensure that the check ID is passed, not the check name.',
    });
  });

  it('a check not updated within its TTL turns critical with "TTL expired", quoting the last output', async () => {
    const a = await agent();
    await put(a, '/v1/agent/service/register', member('m1', { TTL: '300ms', Status: 'passing' }));
    await put(a, '/v1/agent/service/register', member('m2', { TTL: '300ms', Status: 'passing' }));
    await put(a, '/v1/agent/check/pass/service:m1?note=last%20words');
    const index = a.index;
    await sleep(200);
    await put(a, '/v1/agent/check/pass/service:m2'); // resets m2's clock
    await sleep(200);
    const checks = a.services().map((s) => s.checks[0]!);
    expect(checks[0]).toMatchObject({ status: 'critical', output: 'TTL expired (last output before timeout follows): last words' });
    expect(checks[1]).toMatchObject({ status: 'passing' });
    expect(a.index).toBe(index + 1); // the expiry is a write
    await sleep(250);
    expect(a.services()[1]!.checks[0]).toMatchObject({ status: 'critical', output: 'TTL expired' });
  });
});

describe('GET /v1/health/service: answers and blocking queries', () => {
  it('answers [] with a non-zero index when there is nothing; names match case-insensitively; passing filters', async () => {
    const a = await agent();
    const empty = await get(a, '/v1/health/service/grains');
    expect(empty).toMatchObject({ status: 200, text: '[]' });
    expect(empty.index).toBeGreaterThanOrEqual(1);
    expect(empty.headers.get('x-consul-knownleader')).toBe('true');
    expect(empty.headers.get('x-consul-lastcontact')).toBe('0');
    expect(empty.headers.get('content-type')).toBe('application/json');
    await put(a, '/v1/agent/service/register', member('m1'));
    await put(a, '/v1/agent/service/register', member('m2', { TTL: '10s', Status: 'passing' }));
    const { entries } = await health(a);
    expect(entries.map((e) => e.Service)).toMatchObject([
      { ID: 'm1', Service: 'grains', Tags: [], Address: '', Meta: null, Port: 7001 },
      { ID: 'm2', Service: 'grains' },
    ]);
    expect(entries[0]!.Node).toMatchObject({ Node: 'test-node', Address: '127.0.0.1', Datacenter: 'dc1' });
    const upper = JSON.parse((await get(a, '/v1/health/service/GRAINS')).text) as Entry[];
    expect(upper.length).toBe(2);
    const passing = JSON.parse((await get(a, '/v1/health/service/grains?passing')).text) as Entry[];
    expect(passing.map((e) => e.Service.ID)).toEqual(['m2']);
    expect(await get(a, '/v1/health/service/grains?passing=maybe')).toMatchObject({ status: 400, text: 'Invalid value for ?passing' });
    expect(await get(a, '/v1/health/service/grains?dc=dc2')).toMatchObject({ status: 500, text: 'No path to datacenter' });
    expect(await get(a, '/v1/health/service/grains?index=x')).toMatchObject({ status: 400, text: 'Invalid index' });
    expect(await get(a, '/v1/health/service/grains?index=5&wait=30')).toMatchObject({ status: 400, text: 'Invalid wait time' });
  });

  it('blocks while the index is not above `index`; returns on a change, or at `wait` with the same index', async () => {
    const a = await agent();
    await put(a, '/v1/agent/service/register', member('m1'));
    const { answer } = await health(a);
    const waiting = get(a, `/v1/health/service/grains?index=${answer.index}&wait=5s`);
    await sleep(100);
    await put(a, '/v1/agent/check/pass/service:m1');
    const woken = await waiting;
    expect(woken.status).toBe(200);
    expect(woken.index).toBeGreaterThan(answer.index);
    expect(woken.ms).toBeLessThan(2_000);
    expect((JSON.parse(woken.text) as Entry[])[0]!.Checks[1]!.Status).toBe('passing');

    const timedOut = await get(a, `/v1/health/service/grains?index=${woken.index}&wait=400ms`);
    expect(timedOut.index).toBe(woken.index);
    expect(timedOut.ms).toBeGreaterThanOrEqual(390);
    expect(timedOut.ms).toBeLessThan(400 + 400 / 16 + 300);

    // index=0 never blocks.
    expect((await get(a, '/v1/health/service/grains?index=0&wait=5s')).ms).toBeLessThan(1_000);
  });

  it('an index above the current one blocks until the wait ends, then returns the LOWER current index', async () => {
    const a = await agent();
    const current = (await get(a, '/v1/health/service/grains')).index;
    const answer = await get(a, `/v1/health/service/grains?index=${current + 1000}&wait=300ms`);
    expect(answer.status).toBe(200);
    expect(answer.index).toBe(current);
    expect(answer.ms).toBeGreaterThanOrEqual(290);
  });

  it('an identical pass changes nothing and wakes no one; an output-only change is shown but wakes no one either', async () => {
    const a = await agent();
    await put(a, '/v1/agent/service/register', member('m1'));
    await put(a, '/v1/agent/check/pass/service:m1?note=same');
    const { answer } = await health(a);
    const waiting = get(a, `/v1/health/service/grains?index=${answer.index}&wait=500ms`);
    await sleep(50);
    await put(a, '/v1/agent/check/pass/service:m1?note=same');
    await put(a, '/v1/agent/check/pass/service:m1?note=other');
    const result = await waiting;
    expect(result.index).toBe(answer.index);
    expect(result.ms).toBeGreaterThanOrEqual(490);
    expect((JSON.parse(result.text) as Entry[])[0]!.Checks[1]!.Output).toBe('other');
  });

  it('a watch on a service without instances wakes on any write (its index is the catalog index)', async () => {
    const a = await agent();
    const none = await get(a, '/v1/health/service/other');
    const waiting = get(a, `/v1/health/service/other?index=${none.index}&wait=5s`);
    await sleep(50);
    await put(a, '/v1/agent/service/register', member('m1'));
    const result = await waiting;
    expect(result).toMatchObject({ status: 200, text: '[]' });
    expect(result.index).toBeGreaterThan(none.index);
    expect(result.ms).toBeLessThan(2_000);
  });

  it('stop() ends a blocking query without an answer (as a crash would) and keeps the state for assertions', async () => {
    const a = await agent();
    await put(a, '/v1/agent/service/register', member('m1'));
    const index = (await health(a)).answer.index;
    const waiting = get(a, `/v1/health/service/grains?index=${index}&wait=5s`).then(
      () => 'answered',
      () => 'connection failed',
    );
    await sleep(50);
    await a.stop();
    expect(await waiting).toBe('connection failed');
    expect(a.services().map((s) => s.id)).toEqual(['m1']);
    // A new agent on the same port is a restarted dev agent: empty.
    const back = await agent({ port: a.port });
    expect((await get(back, '/v1/health/service/grains')).text).toBe('[]');
    expect((await put(back, '/v1/agent/check/pass/service:m1')).status).toBe(404);
  });
});

describe('deregister and the reaper', () => {
  it('deregister removes the service and its checks; an unknown ID → 404', async () => {
    const a = await agent();
    await put(a, '/v1/agent/service/register', member('m1'));
    const index = a.index;
    expect(await put(a, '/v1/agent/service/deregister/m1')).toMatchObject({ status: 200, text: '' });
    expect(a.index).toBe(index + 1);
    expect(a.services()).toEqual([]);
    expect((await put(a, '/v1/agent/check/pass/service:m1')).status).toBe(404);
    expect(await put(a, '/v1/agent/service/deregister/m1')).toMatchObject({
      status: 404,
      text: 'Unknown service ID "m1". Ensure that the service ID is passed, not the service name.',
    });
  });

  it('reaps a service whose check stayed critical past DeregisterCriticalServiceAfter (raised to the minimum)', async () => {
    const a = await agent({ minDeregisterCriticalAfter: 300, reapInterval: 50 });
    // 10ms is below the minimum: raised to 300 ms. The clock starts when the TTL expires (200 ms).
    await put(a, '/v1/agent/service/register', member('m1', { TTL: '200ms', Status: 'passing', DeregisterCriticalServiceAfter: '10ms' }));
    // On the service object the field is not part of the check: never reaped.
    await put(a, '/v1/agent/service/register', member('m2', { TTL: '200ms', Status: 'passing' }, { DeregisterCriticalServiceAfter: '10ms' }));
    expect(a.services()[0]!.checks[0]!.deregisterCriticalServiceAfterMs).toBe(300);
    await sleep(400); // expired at ~200 ms, critical for ~200 ms < 300 ms
    expect(a.services().map((s) => [s.id, s.checks[0]!.status])).toEqual([
      ['m1', 'critical'],
      ['m2', 'critical'],
    ]);
    await sleep(300);
    expect(a.services().map((s) => s.id)).toEqual(['m2']);
    expect((await put(a, '/v1/agent/check/pass/service:m1')).status).toBe(404);
  });
});

describe('ACLs (token option: default deny)', () => {
  it('anonymous writes → 403 with Consul text, unknown token → 403 ACL not found, reads filtered to []', async () => {
    const a = await agent({ token: 'root-secret' });
    const denied = await put(a, '/v1/agent/service/register', member('m1'));
    expect(denied).toMatchObject({
      status: 403,
      text: 'Permission denied: anonymous token lacks permission \'service:write\' on "grains". The anonymous token is used implicitly when a request does not specify a token.',
    });
    expect(denied.headers.get('x-consul-default-acl-policy')).toBe('deny');
    expect(await put(a, '/v1/agent/service/register', member('m1'), { 'X-Consul-Token': 'nope' })).toMatchObject({ status: 403, text: 'ACL not found' });
    expect((await put(a, '/v1/agent/service/register', member('m1'), { 'X-Consul-Token': 'root-secret' })).status).toBe(200);
    expect((await put(a, '/v1/agent/check/pass/service:m1', undefined, { Authorization: 'Bearer root-secret' })).status).toBe(200);
    expect((await put(a, '/v1/agent/check/pass/service:m1', undefined, { 'X-Consul-Token': 'anonymous' })).status).toBe(403);
    // Unknown IDs are vetted before permissions.
    expect((await put(a, '/v1/agent/service/deregister/nope')).status).toBe(404);
    expect((await put(a, '/v1/agent/service/deregister/m1')).status).toBe(403);

    const anonymous = await health(a);
    expect(anonymous.entries).toEqual([]);
    expect(anonymous.answer.index).toBeGreaterThan(1);
    expect((await health(a, '', { 'X-Consul-Token': 'root-secret' })).entries.length).toBe(1);
    expect(await get(a, '/v1/health/service/grains', { 'X-Consul-Token': 'nope' })).toMatchObject({ status: 403, text: 'ACL not found' });
    // ?token= wins over the header, the header over Authorization.
    expect((await health(a, '?token=root-secret', { 'X-Consul-Token': 'nope' })).entries.length).toBe(1);
    expect((await get(a, '/v1/health/service/grains?token=nope', { 'X-Consul-Token': 'root-secret' })).status).toBe(403);
    expect((await health(a, '', { 'X-Consul-Token': 'root-secret', Authorization: 'Bearer nope' })).entries.length).toBe(1);
    expect(a.requests.at(-1)).toMatchObject({ method: 'GET', path: '/v1/health/service/grains', token: 'root-secret', tokenSource: 'header', status: 200 });
  });
});

describe('routing', () => {
  it('405 with Allow for a wrong method, OPTIONS lists the methods, unknown URLs → 404 text', async () => {
    const a = await agent();
    const wrong = await get(a, '/v1/agent/check/pass/service:m1');
    expect(wrong).toMatchObject({ status: 405, text: 'method GET not allowed' });
    expect(wrong.headers.get('allow')).toBe('OPTIONS,PUT');
    const wrongRead = await put(a, '/v1/health/service/grains');
    expect(wrongRead.status).toBe(405);
    expect(wrongRead.headers.get('allow')).toBe('OPTIONS,GET');
    const options = await call(a, 'OPTIONS', '/v1/agent/service/register');
    expect(options).toMatchObject({ status: 200, text: '' });
    expect(options.headers.get('allow')).toBe('OPTIONS,PUT');
    expect(await get(a, '/v1/catalog/services')).toMatchObject({ status: 404, text: 'Invalid URL path: not a recognized HTTP API endpoint\n' });
    expect(await put(a, '/v1/agent/service/register/extra', member('m1'))).toMatchObject({ status: 404 });
    expect(await get(a, '/v1/health/service/')).toMatchObject({ status: 400, text: 'Missing service name' });
    expect(await get(a, '/v1/health/service/grains?ns=team')).toMatchObject({
      status: 400,
      text: 'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature',
    });
    expect(await get(a, '/v1/health/service/grains?filter=Service.Port%3D%3D1')).toMatchObject({ status: 500 });
  });
});
