import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    expect(members[0].id).toBe(memberId);
    expect([...members[0].kinds].sort()).toEqual(['account', 'transfer']);
  });

  it('names the member that serves the accounts', async () => {
    const { memberId } = (await request(app.getHttpServer()).get('/cluster/members').expect(200)).body;
    const account = (await request(app.getHttpServer()).get('/accounts/whoever').expect(200)).body;
    expect(account.member).toBe(memberId);
  });
});
