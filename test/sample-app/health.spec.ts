import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, ClusterHealthIndicator } from 'nestjs-grains';
import { createTestApp } from './create-test-app.js';

describe('sample app: GET /health', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('answers 200 with the member up while it is ready', async () => {
    app = await createTestApp();
    const res = await request(app.getHttpServer()).get('/health').expect(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      info: {
        cluster: {
          status: 'up',
          ready: true,
          leaving: false,
          members: 1,
          membershipKnown: true,
          provider: { name: 'in-memory', reachable: true },
          identityLookup: { name: 'in-memory', reachable: true, ready: true },
          // One member agrees with itself; nobody is suspected.
          gossip: { enabled: true, topologyConsensus: true, topologyHash: expect.stringMatching(/^[0-9a-f]{16}$/), suspected: [] },
        },
      },
    });
  });

  it('answers 503 with the member down once it leaves, and says why', async () => {
    app = await createTestApp();
    const server = app.getHttpServer();
    await app.get(Cluster).shutdown();
    const res = await request(server).get('/health').expect(503);
    expect(res.body).toMatchObject({ status: 'error', error: { cluster: { status: 'down', ready: false, leaving: true } } });
    expect(res.body.error.cluster.detail).toContain('leaving');
  });

  it('exports the indicator, keyed as asked', async () => {
    app = await createTestApp();
    expect(app.get(ClusterHealthIndicator).isHealthy('grains')).toMatchObject({ grains: { status: 'up' } });
  });
});
