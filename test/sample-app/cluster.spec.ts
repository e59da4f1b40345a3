import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashIdentityLookup, StaticProvider } from 'nestjs-grains';
import { createTestApp } from './create-test-app.js';

describe('sample app: GET /cluster/members', () => {
  let app: INestApplication;

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('lists the one embedded member with the kinds it hosts', async () => {
    const res = await request(app.getHttpServer()).get('/cluster/members').expect(200);
    const { memberId, kinds, members, clusterName } = res.body;
    expect(clusterName).toBe(process.env.CLUSTER_NAME ?? 'bank');
    expect(typeof memberId).toBe('string');
    expect([...kinds].sort()).toEqual(['account', 'transfer']);
    expect(members).toHaveLength(1);
    expect(res.body.ready).toBe(true);
    expect(members[0].id).toBe(memberId);
    expect([...members[0].kinds].sort()).toEqual(['account', 'transfer']);
    // Gossip status: the member itself, alive, its own heartbeat fresh; one member agrees with itself.
    expect(members[0].status).toBe('alive');
    expect(members[0].heartbeatAgeMs).toBeGreaterThanOrEqual(0);
    expect(members[0].activations).toBeGreaterThanOrEqual(0);
    expect(res.body.topology).toEqual({ consensus: true, hash: expect.stringMatching(/^[0-9a-f]{16}$/) });
  });

  it('names the member that serves the accounts', async () => {
    const { memberId } = (await request(app.getHttpServer()).get('/cluster/members').expect(200)).body;
    const account = (await request(app.getHttpServer()).get('/accounts/whoever').expect(200)).body;
    expect(account.member).toBe(memberId);
  });
});

describe('sample app: a cluster member that has not heard from every listed member yet', () => {
  let app: INestApplication;

  beforeAll(async () => {
    // Port 1 on loopback: a listed member that never answers.
    const provider = new StaticProvider({ members: ['127.0.0.1:1'], probeInterval: 50 });
    app = await createTestApp({ bank: { cluster: { provider, identityLookup: new HashIdentityLookup(), remote: { host: '127.0.0.1', port: 0 } } } });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('says it is not ready, and answers account and transfer requests 503 (nothing placed, nothing changed)', async () => {
    const view = (await request(app.getHttpServer()).get('/cluster/members').expect(200)).body;
    expect(view.ready).toBe(false);
    expect(view.members).toHaveLength(1);
    const unavailable = {
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'The resource is not available right now; nothing was changed. Retry later.',
      code: 'GRAIN_CLUSTER_UNAVAILABLE',
    };
    for (const req of [
      request(app.getHttpServer()).get('/accounts/alice'),
      request(app.getHttpServer()).post('/accounts/alice/deposit').send({ amount: 1 }),
      request(app.getHttpServer()).post('/transfers').send({ from: 'alice', to: 'bob', amount: 1 }),
      request(app.getHttpServer()).get('/transfers/t1'),
    ]) {
      const res = await req.expect(503);
      expect(res.body).toEqual(unavailable);
      expect(res.headers['retry-after']).toBe('1');
    }
  });
});
