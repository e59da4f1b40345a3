import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConsulProvider, HashIdentityLookup, RedisIdentityLookup, StaticProvider } from 'nestjs-grains';
import { AppModule } from '../../sample-app/app.module.js';
import { type BankConfig, BankConfigError, bankOptionsOf, readBankConfig } from '../../sample-app/config/cluster-config.js';

const MEMBERS = '127.0.0.1:4001,127.0.0.1:4002,127.0.0.1:4003';
/** A valid hosting member: the first of MEMBERS. */
const MEMBER_ENV = { REMOTE_PORT: '4001', CLUSTER_PROVIDER: 'static', STATIC_MEMBERS: MEMBERS, IDENTITY_LOOKUP: 'hash' };
/** A valid client-only member of the same cluster. */
const CONSUL_ENV = { REMOTE_PORT: '4001', CLUSTER_PROVIDER: 'consul', IDENTITY_LOOKUP: 'hash' };
const CLIENT_ENV = { CLIENT_ONLY: 'true', CLUSTER_PROVIDER: 'static', STATIC_MEMBERS: MEMBERS, IDENTITY_LOOKUP: 'hash' };
/** A valid hosting member placing grains through Redis (and keeping its ledger there). */
const REDIS_ENV = { ...MEMBER_ENV, IDENTITY_LOOKUP: 'redis', REDIS_URL: 'redis://127.0.0.1:6379' };
/** A valid value of each cluster-only variable, for the "set without REMOTE_PORT" cases. */
const STRAY_VALUES: Readonly<Record<string, string>> = { ...MEMBER_ENV, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: 'bank', REDIS_LEASE: 'safe' };

/** The error `readBankConfig(env)` throws; fails the test when it throws nothing or something else. */
function configError(env: NodeJS.ProcessEnv): BankConfigError {
  try {
    readBankConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(BankConfigError);
    return error as BankConfigError;
  }
  throw new Error(`readBankConfig accepted ${JSON.stringify(env)}`);
}

describe('sample app: configuration from the environment (readBankConfig)', () => {
  describe('valid', () => {
    it('nothing set: the embedded default on HTTP port 3000, cluster "bank"', () => {
      expect(readBankConfig({})).toEqual({ httpPort: 3000, clusterName: 'bank', cluster: { mode: 'embedded' } });
    });

    it('embedded with HTTP_PORT and CLUSTER_NAME; empty variables count as unset', () => {
      expect(readBankConfig({ HTTP_PORT: '8080', CLUSTER_NAME: 'bank-2.eu_1' })).toEqual({
        httpPort: 8080,
        clusterName: 'bank-2.eu_1',
        cluster: { mode: 'embedded' },
      });
      expect(readBankConfig({ HTTP_PORT: '0' }).httpPort).toBe(0);
      expect(readBankConfig({ HTTP_PORT: '', CLUSTER_NAME: '', REMOTE_PORT: '', CLUSTER_PROVIDER: '', CLIENT_ONLY: '' })).toEqual({
        httpPort: 3000,
        clusterName: 'bank',
        cluster: { mode: 'embedded' },
      });
      expect(readBankConfig({ CLIENT_ONLY: 'false' }).cluster.mode).toBe('embedded');
    });

    it('REMOTE_PORT set: a hosting member binding 127.0.0.1, advertised as itself', () => {
      expect(readBankConfig({ ...MEMBER_ENV, HTTP_PORT: '3001' })).toEqual({
        httpPort: 3001,
        clusterName: 'bank',
        cluster: {
          mode: 'member',
          provider: { type: 'static', members: ['127.0.0.1:4001', '127.0.0.1:4002', '127.0.0.1:4003'] },
          identityLookup: 'hash',
          gossip: { enabled: true },
          remote: { host: '127.0.0.1', port: 4001, advertisedHost: '127.0.0.1' },
        },
      });
    });

    it('REMOTE_HOST is advertised unless ADVERTISED_HOST says otherwise; STATIC_MEMBERS may have spaces and repeats', () => {
      const bound = readBankConfig({ ...MEMBER_ENV, REMOTE_HOST: '10.0.0.5', STATIC_MEMBERS: '10.0.0.5:4001, 10.0.0.6:4001,10.0.0.5:4001' });
      expect(bound.cluster).toMatchObject({
        mode: 'member',
        remote: { host: '10.0.0.5', port: 4001, advertisedHost: '10.0.0.5' },
        provider: { members: ['10.0.0.5:4001', '10.0.0.6:4001'] },
      });
      const advertised = readBankConfig({
        ...MEMBER_ENV,
        REMOTE_HOST: '0.0.0.0',
        ADVERTISED_HOST: 'bank-1.internal',
        STATIC_MEMBERS: 'bank-1.internal:4001,bank-2.internal:4001',
      });
      expect(advertised.cluster).toMatchObject({ remote: { host: '0.0.0.0', port: 4001, advertisedHost: 'bank-1.internal' } });
      const ipv6 = readBankConfig({ ...MEMBER_ENV, REMOTE_HOST: '::', ADVERTISED_HOST: '127.0.0.1' });
      expect(ipv6.cluster).toMatchObject({ remote: { host: '::', advertisedHost: '127.0.0.1' } });
    });

    it('CLIENT_ONLY=true: a client-only member of the listed cluster, no remote of its own', () => {
      expect(readBankConfig({ ...CLIENT_ENV, CLUSTER_NAME: 'east' })).toEqual({
        httpPort: 3000,
        clusterName: 'east',
        cluster: {
          mode: 'client',
          provider: { type: 'static', members: ['127.0.0.1:4001', '127.0.0.1:4002', '127.0.0.1:4003'] },
          identityLookup: 'hash',
          gossip: { enabled: true },
        },
      });
    });
  });

  describe('invalid: names the variable and what is allowed, in one line', () => {
    it.each<[string, NodeJS.ProcessEnv, string, RegExp]>([
      ['HTTP_PORT not a number', { HTTP_PORT: 'http' }, 'HTTP_PORT', /^HTTP_PORT must be a port number from 0 to 65535; got "http"\.$/],
      ['HTTP_PORT out of range', { HTTP_PORT: '70000' }, 'HTTP_PORT', /^HTTP_PORT must be a port number from 0 to 65535; got "70000"\.$/],
      ['HTTP_PORT negative', { HTTP_PORT: '-1' }, 'HTTP_PORT', /HTTP_PORT must be a port number/],
      ['HTTP_PORT not an integer', { HTTP_PORT: '3000.5' }, 'HTTP_PORT', /HTTP_PORT must be a port number/],
      [
        'CLUSTER_NAME with a space',
        { CLUSTER_NAME: 'my bank' },
        'CLUSTER_NAME',
        /^CLUSTER_NAME must be letters, digits, "\.", "_" or "-", starting with a letter or digit; got "my bank"\.$/,
      ],
      ['REMOTE_PORT not a port', { ...MEMBER_ENV, REMOTE_PORT: 'abc' }, 'REMOTE_PORT', /^REMOTE_PORT must be a port number from 1 to 65535; got "abc"\.$/],
      [
        'REMOTE_PORT 0 (a static member needs a known port)',
        { ...MEMBER_ENV, REMOTE_PORT: '0' },
        'REMOTE_PORT',
        /REMOTE_PORT must be a port number from 1 to 65535; got "0"/,
      ],
      ['REMOTE_PORT too large', { ...MEMBER_ENV, REMOTE_PORT: '65536' }, 'REMOTE_PORT', /REMOTE_PORT must be a port number from 1 to 65535/],
      [
        'REMOTE_PORT equal to HTTP_PORT',
        { ...MEMBER_ENV, HTTP_PORT: '4001' },
        'REMOTE_PORT',
        /^REMOTE_PORT and HTTP_PORT must be different ports; both are 4001\.$/,
      ],
      [
        'CLUSTER_PROVIDER missing in cluster mode',
        { ...MEMBER_ENV, CLUSTER_PROVIDER: undefined },
        'CLUSTER_PROVIDER',
        /^CLUSTER_PROVIDER is required when REMOTE_PORT is set; allowed: static, consul\.$/,
      ],
      [
        'CLUSTER_PROVIDER unknown',
        { ...MEMBER_ENV, CLUSTER_PROVIDER: 'etcd' },
        'CLUSTER_PROVIDER',
        /^CLUSTER_PROVIDER must be one of: static, consul; got "etcd"\.$/,
      ],
      [
        'static without STATIC_MEMBERS',
        { ...MEMBER_ENV, STATIC_MEMBERS: undefined },
        'STATIC_MEMBERS',
        /^STATIC_MEMBERS is required with CLUSTER_PROVIDER=static: the hosting members' addresses, "host:port,host:port,\.\.\."\.$/,
      ],
      [
        'STATIC_MEMBERS entry without a port',
        { ...MEMBER_ENV, STATIC_MEMBERS: '127.0.0.1:4001,127.0.0.1' },
        'STATIC_MEMBERS',
        /STATIC_MEMBERS must be a comma-separated list of host:port addresses .*; "127\.0\.0\.1" is not one\.$/,
      ],
      [
        'STATIC_MEMBERS entry with a bad port',
        { ...MEMBER_ENV, STATIC_MEMBERS: '127.0.0.1:4001,127.0.0.1:99999' },
        'STATIC_MEMBERS',
        /"127\.0\.0\.1:99999" is not one/,
      ],
      ['STATIC_MEMBERS with an empty entry', { ...MEMBER_ENV, STATIC_MEMBERS: '127.0.0.1:4001,' }, 'STATIC_MEMBERS', /"" is not one/],
      [
        'STATIC_MEMBERS entry on 0.0.0.0 (not reachable)',
        { ...MEMBER_ENV, STATIC_MEMBERS: '127.0.0.1:4001,0.0.0.0:4002' },
        'STATIC_MEMBERS',
        /"0\.0\.0\.0:4002" is not one/,
      ],
      [
        "STATIC_MEMBERS without this member's advertised address",
        { ...MEMBER_ENV, STATIC_MEMBERS: 'localhost:4001,localhost:4002' },
        'STATIC_MEMBERS',
        /^STATIC_MEMBERS must list this member's own address 127\.0\.0\.1:4001 \(ADVERTISED_HOST:REMOTE_PORT\), the address the other members know it by; got "localhost:4001,localhost:4002"\.$/,
      ],
      [
        'IDENTITY_LOOKUP missing in cluster mode',
        { ...MEMBER_ENV, IDENTITY_LOOKUP: undefined },
        'IDENTITY_LOOKUP',
        /^IDENTITY_LOOKUP is required when REMOTE_PORT is set; allowed: hash, redis\.$/,
      ],
      [
        'IDENTITY_LOOKUP unknown',
        { ...MEMBER_ENV, IDENTITY_LOOKUP: 'consul' },
        'IDENTITY_LOOKUP',
        /^IDENTITY_LOOKUP must be one of: hash, redis; got "consul"\.$/,
      ],
      [
        'REMOTE_HOST not a host',
        { ...MEMBER_ENV, REMOTE_HOST: 'not a host' },
        'REMOTE_HOST',
        /^REMOTE_HOST must be a host name or an IP address to bind \(such as 0\.0\.0\.0 or 127\.0\.0\.1\); got "not a host"\.$/,
      ],
      [
        'REMOTE_HOST every interface, no ADVERTISED_HOST (every member would advertise 127.0.0.1)',
        { ...MEMBER_ENV, REMOTE_HOST: '0.0.0.0' },
        'ADVERTISED_HOST',
        /^ADVERTISED_HOST is required when REMOTE_HOST is "0\.0\.0\.0" \(every interface\)/,
      ],
      [
        'REMOTE_HOST an IPv6 address, no ADVERTISED_HOST',
        { ...MEMBER_ENV, REMOTE_HOST: '::1' },
        'REMOTE_HOST',
        /REMOTE_HOST "::1" cannot be advertised .*set ADVERTISED_HOST/,
      ],
      [
        'ADVERTISED_HOST 0.0.0.0',
        { ...MEMBER_ENV, ADVERTISED_HOST: '0.0.0.0', STATIC_MEMBERS: '127.0.0.1:4002' },
        'ADVERTISED_HOST',
        /^ADVERTISED_HOST must be a host name or an IPv4 address the other members can reach \(not 0\.0\.0\.0\); got "0\.0\.0\.0"\.$/,
      ],
      [
        'ADVERTISED_HOST with a port',
        { ...MEMBER_ENV, ADVERTISED_HOST: '127.0.0.1:4001' },
        'ADVERTISED_HOST',
        /ADVERTISED_HOST must be a host name or an IPv4 address/,
      ],
      ['CLIENT_ONLY not a boolean', { ...CLIENT_ENV, CLIENT_ONLY: 'yes' }, 'CLIENT_ONLY', /^CLIENT_ONLY must be "true" or "false"; got "yes"\.$/],
      [
        'CLIENT_ONLY=true with REMOTE_PORT',
        { ...CLIENT_ENV, REMOTE_PORT: '4004' },
        'REMOTE_PORT',
        /^REMOTE_PORT must not be set with CLIENT_ONLY=true: a client-only member hosts no grains and serves no remote\.$/,
      ],
      ['CLIENT_ONLY=true with REMOTE_HOST', { ...CLIENT_ENV, REMOTE_HOST: '0.0.0.0' }, 'REMOTE_HOST', /^REMOTE_HOST must not be set with CLIENT_ONLY=true/],
      [
        'CLIENT_ONLY=true without CLUSTER_PROVIDER',
        { ...CLIENT_ENV, CLUSTER_PROVIDER: undefined },
        'CLUSTER_PROVIDER',
        /^CLUSTER_PROVIDER is required with CLIENT_ONLY=true; allowed: static, consul\.$/,
      ],
      [
        'CLIENT_ONLY=true without STATIC_MEMBERS',
        { ...CLIENT_ENV, STATIC_MEMBERS: undefined },
        'STATIC_MEMBERS',
        /^STATIC_MEMBERS is required with CLUSTER_PROVIDER=static/,
      ],
      [
        'CLIENT_ONLY=true without IDENTITY_LOOKUP',
        { ...CLIENT_ENV, IDENTITY_LOOKUP: undefined },
        'IDENTITY_LOOKUP',
        /^IDENTITY_LOOKUP is required with CLIENT_ONLY=true; allowed: hash, redis\.$/,
      ],
      ...(
        [
          'CLUSTER_PROVIDER',
          'STATIC_MEMBERS',
          'CONSUL_URL',
          'CONSUL_TOKEN',
          'IDENTITY_LOOKUP',
          'REMOTE_HOST',
          'ADVERTISED_HOST',
          'REDIS_URL',
          'REDIS_KEY_PREFIX',
          'REDIS_LEASE',
        ] as const
      ).map((name): [string, NodeJS.ProcessEnv, string, RegExp] => [
        `${name} without REMOTE_PORT`,
        { [name]: STRAY_VALUES[name] ?? '127.0.0.1' },
        name,
        new RegExp(
          `^${name} is set but REMOTE_PORT is not: set REMOTE_PORT to run a cluster member \\(or CLIENT_ONLY=true for a client-only member\\), or unset ${name} for the embedded default\\.$`,
        ),
      ]),
    ])('%s', (_case, env, variable, message) => {
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('\n');
    });
  });

  describe('bankOptionsOf: what AppModule.register() is given', () => {
    it('embedded: only the cluster name (no provider, lookup or remote)', () => {
      expect(bankOptionsOf(readBankConfig({ CLUSTER_NAME: 'solo' }))).toEqual({ cluster: { clusterName: 'solo' } });
    });

    it('member: a static provider, hash placement and the remote; new instances on every call', () => {
      const config: BankConfig = readBankConfig(MEMBER_ENV);
      const options = bankOptionsOf(config);
      expect(options.clientOnly).toBe(false);
      expect(options.cluster).toMatchObject({ clusterName: 'bank', remote: { host: '127.0.0.1', port: 4001, advertisedHost: '127.0.0.1' } });
      expect(options.cluster?.provider).toBeInstanceOf(StaticProvider);
      expect(options.cluster?.identityLookup).toBeInstanceOf(HashIdentityLookup);
      const again = bankOptionsOf(config);
      expect(again.cluster?.provider).not.toBe(options.cluster?.provider);
      expect(again.cluster?.identityLookup).not.toBe(options.cluster?.identityLookup);
    });

    it('client only: a remote without a port (serves nothing), and clientOnly', () => {
      const options = bankOptionsOf(readBankConfig(CLIENT_ENV));
      expect(options.clientOnly).toBe(true);
      expect(options.cluster?.remote).toEqual({});
      expect(options.cluster?.provider).toBeInstanceOf(StaticProvider);
      expect(options.cluster?.identityLookup).toBeInstanceOf(HashIdentityLookup);
    });

    it('CLUSTER_PROVIDER=consul: a ConsulProvider on CONSUL_URL (default the local agent), with CONSUL_TOKEN', () => {
      const local = readBankConfig({ ...CONSUL_ENV });
      expect(local.cluster).toMatchObject({ mode: 'member', provider: { type: 'consul', url: 'http://127.0.0.1:8500' } });
      expect(bankOptionsOf(local).cluster?.provider).toBeInstanceOf(ConsulProvider);
      const remote = readBankConfig({ ...CONSUL_ENV, CONSUL_URL: 'https://consul.internal:8501', CONSUL_TOKEN: 's3cret-token' });
      expect(remote.cluster).toMatchObject({ provider: { type: 'consul', url: 'https://consul.internal:8501', token: 's3cret-token' } });
      expect(readBankConfig({ CLIENT_ONLY: 'true', CLUSTER_PROVIDER: 'consul', IDENTITY_LOOKUP: 'hash' }).cluster).toMatchObject({
        mode: 'client',
        provider: { type: 'consul' },
      });
    });

    it.each<[string, NodeJS.ProcessEnv, string, RegExp]>([
      ['STATIC_MEMBERS with consul', { ...CONSUL_ENV, STATIC_MEMBERS: MEMBERS }, 'STATIC_MEMBERS', /^STATIC_MEMBERS is set but CLUSTER_PROVIDER is "consul"/],
      ['CONSUL_URL not http', { ...CONSUL_ENV, CONSUL_URL: 'consul:8500' }, 'CONSUL_URL', /^CONSUL_URL must be an http:\/\/ or https:\/\/ URL/],
      ['CONSUL_TOKEN with a space', { ...CONSUL_ENV, CONSUL_TOKEN: 'a b' }, 'CONSUL_TOKEN', /^CONSUL_TOKEN must be printable ASCII/],
      ['CONSUL_URL with static', { ...MEMBER_ENV, CONSUL_URL: 'http://127.0.0.1:8500' }, 'CONSUL_URL', /^CONSUL_URL is set but CLUSTER_PROVIDER is "static"/],
    ])('consul, invalid: %s', (_case, env, variable, message) => {
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('s3cret');
    });

    it('AppModule.register({ clientOnly: true }) without a provider is refused', () => {
      expect(() => AppModule.register({ clientOnly: true })).toThrow(/needs cluster\.provider and cluster\.identityLookup/);
    });
  });
  describe('GOSSIP, GOSSIP_INTERVAL, GOSSIP_SUSPECT_AFTER', () => {
    it('passes what is set to the cluster, and refuses what is not a switch or a duration', () => {
      expect(readBankConfig({ ...MEMBER_ENV, GOSSIP: 'off' }).cluster).toMatchObject({ gossip: { enabled: false } });
      const timed = readBankConfig({ ...CLIENT_ENV, GOSSIP_INTERVAL: '100ms', GOSSIP_SUSPECT_AFTER: '2s' });
      expect(timed.cluster).toMatchObject({ gossip: { enabled: true, interval: '100ms', suspectAfter: '2s' } });
      expect(bankOptionsOf(timed).cluster?.gossip).toEqual({ enabled: true, interval: '100ms', suspectAfter: '2s' });
      expect(() => readBankConfig({ ...MEMBER_ENV, GOSSIP: 'yes' })).toThrow(/^GOSSIP must be on or off; got "yes"\.$/);
      expect(() => readBankConfig({ ...MEMBER_ENV, GOSSIP_INTERVAL: '300' })).toThrow(/^GOSSIP_INTERVAL must be a positive duration/);
      expect(() => readBankConfig({ ...MEMBER_ENV, GOSSIP_SUSPECT_AFTER: '0s' })).toThrow(/^GOSSIP_SUSPECT_AFTER must be a positive duration/);
      expect(() => readBankConfig({ ...MEMBER_ENV, REDIS_PLACEMENT: 'nearest', IDENTITY_LOOKUP: 'redis', REDIS_URL: 'redis://h' })).toThrow(
        /^REDIS_PLACEMENT must be one of/,
      );
      // Cluster mode only, as every cluster variable.
      expect(() => readBankConfig({ GOSSIP: 'off' })).toThrow(/^GOSSIP is set but REMOTE_PORT is not/);
    });
  });

  describe('IDENTITY_LOOKUP=redis: REDIS_URL, REDIS_KEY_PREFIX, REDIS_LEASE', () => {
    it('a hosting member with REDIS_URL: key prefix "grains" and the fast lease by default', () => {
      expect(readBankConfig({ ...REDIS_ENV, HTTP_PORT: '3001' })).toEqual({
        httpPort: 3001,
        clusterName: 'bank',
        cluster: {
          mode: 'member',
          provider: { type: 'static', members: ['127.0.0.1:4001', '127.0.0.1:4002', '127.0.0.1:4003'] },
          identityLookup: 'redis',
          redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'grains', lease: 'fast', placement: 'prefer-local' },
          gossip: { enabled: true },
          remote: { host: '127.0.0.1', port: 4001, advertisedHost: '127.0.0.1' },
        },
      });
    });

    it('REDIS_KEY_PREFIX and REDIS_LEASE; credentials, TLS and a database number in the URL; a client-only member', () => {
      const url = 'rediss://bank:s3cr%40t@redis.internal:6380/2';
      expect(readBankConfig({ ...REDIS_ENV, REDIS_URL: url, REDIS_KEY_PREFIX: 'bank-eu_1.v2', REDIS_LEASE: 'safe' }).cluster).toMatchObject({
        identityLookup: 'redis',
        redis: { url, keyPrefix: 'bank-eu_1.v2', lease: 'safe' },
      });
      expect(readBankConfig({ ...REDIS_ENV, REDIS_URL: 'redis://localhost', REDIS_LEASE: 'fast' }).cluster).toMatchObject({
        redis: { url: 'redis://localhost', lease: 'fast' },
      });
      expect(readBankConfig({ ...CLIENT_ENV, IDENTITY_LOOKUP: 'redis', REDIS_URL: 'redis://127.0.0.1:6379/' }).cluster).toEqual({
        mode: 'client',
        provider: { type: 'static', members: ['127.0.0.1:4001', '127.0.0.1:4002', '127.0.0.1:4003'] },
        identityLookup: 'redis',
        redis: { url: 'redis://127.0.0.1:6379/', keyPrefix: 'grains', lease: 'fast', placement: 'prefer-local' },
        gossip: { enabled: true },
      });
      expect(readBankConfig({ ...REDIS_ENV, REDIS_PLACEMENT: 'least-loaded' }).cluster).toMatchObject({ redis: { placement: 'least-loaded' } });
      // Empty counts as unset, as for every variable.
      expect(readBankConfig({ ...REDIS_ENV, REDIS_KEY_PREFIX: '', REDIS_LEASE: '' }).cluster).toMatchObject({ redis: { keyPrefix: 'grains', lease: 'fast' } });
    });

    it.each<[string, NodeJS.ProcessEnv, string, RegExp]>([
      [
        'REDIS_URL missing',
        { ...REDIS_ENV, REDIS_URL: undefined },
        'REDIS_URL',
        /^REDIS_URL is required with IDENTITY_LOOKUP=redis: the Redis server's URL, such as redis:\/\/127\.0\.0\.1:6379\.$/,
      ],
      [
        'REDIS_URL missing on a client-only member',
        { ...CLIENT_ENV, IDENTITY_LOOKUP: 'redis' },
        'REDIS_URL',
        /^REDIS_URL is required with IDENTITY_LOOKUP=redis/,
      ],
      [
        'REDIS_URL not a URL',
        { ...REDIS_ENV, REDIS_URL: '127.0.0.1:6379' },
        'REDIS_URL',
        /^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL with a host, such as redis:\/\/127\.0\.0\.1:6379 or rediss:\/\/user:password@host:6380\/0; got "127\.0\.0\.1:6379"\.$/,
      ],
      [
        'REDIS_URL another scheme',
        { ...REDIS_ENV, REDIS_URL: 'http://127.0.0.1:6379' },
        'REDIS_URL',
        /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL.*got "http:\/\/127\.0\.0\.1:6379"\.$/,
      ],
      ['REDIS_URL without a host', { ...REDIS_ENV, REDIS_URL: 'redis://:6379' }, 'REDIS_URL', /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
      ['REDIS_URL with a path that is not a database number', { ...REDIS_ENV, REDIS_URL: 'redis://127.0.0.1:6379/bank' }, 'REDIS_URL', /REDIS_URL must be/],
      ['REDIS_URL with a query', { ...REDIS_ENV, REDIS_URL: 'redis://127.0.0.1:6379?db=1' }, 'REDIS_URL', /REDIS_URL must be/],
      ['REDIS_URL port out of range', { ...REDIS_ENV, REDIS_URL: 'redis://127.0.0.1:70000' }, 'REDIS_URL', /REDIS_URL must be/],
      [
        'REDIS_KEY_PREFIX with a brace (it goes inside the hash tag)',
        { ...REDIS_ENV, REDIS_KEY_PREFIX: 'a{b}' },
        'REDIS_KEY_PREFIX',
        /^REDIS_KEY_PREFIX must be 1 to 64 letters, digits, "\.", "_" or "-", starting with a letter or digit; got "a\{b\}"\.$/,
      ],
      ['REDIS_KEY_PREFIX with a colon', { ...REDIS_ENV, REDIS_KEY_PREFIX: 'a:b' }, 'REDIS_KEY_PREFIX', /REDIS_KEY_PREFIX must be/],
      ['REDIS_KEY_PREFIX too long', { ...REDIS_ENV, REDIS_KEY_PREFIX: 'p'.repeat(65) }, 'REDIS_KEY_PREFIX', /REDIS_KEY_PREFIX must be 1 to 64/],
      ['REDIS_LEASE unknown', { ...REDIS_ENV, REDIS_LEASE: 'slow' }, 'REDIS_LEASE', /^REDIS_LEASE must be one of: fast, safe; got "slow"\.$/],
      ...(['REDIS_URL', 'REDIS_KEY_PREFIX', 'REDIS_LEASE'] as const).map((name): [string, NodeJS.ProcessEnv, string, RegExp] => [
        `${name} with IDENTITY_LOOKUP=hash`,
        { ...MEMBER_ENV, [name]: STRAY_VALUES[name] },
        name,
        new RegExp(`^${name} is set but IDENTITY_LOOKUP is "hash": set IDENTITY_LOOKUP=redis to keep placement and the ledger in Redis, or unset ${name}\\.$`),
      ]),
    ])('%s', (_case, env, variable, message) => {
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('\n');
    });

    it('never repeats the password of an invalid REDIS_URL', () => {
      const error = configError({ ...REDIS_ENV, REDIS_URL: 'https://bank:hunter2@redis.internal:6379' });
      expect(error.message).not.toContain('hunter2');
      expect(error.message).toContain('"https://bank:***@redis.internal:6379"');
    });

    it.each<[string, 'REDIS_URL' | 'CONSUL_URL', string, string, string]>([
      ['a "/" in the password', 'REDIS_URL', 'redis://bank:hun/ter2@redis.internal:6379', 'hun/ter2', 'redis://bank:***@redis.internal:6379'],
      ['an "@" in the password', 'REDIS_URL', 'redis://bank:hun@ter2@redis.internal:6379/bank', 'hun@ter2', 'redis://bank:***@redis.internal:6379/bank'],
      ['a "#" in the password', 'REDIS_URL', 'redis://bank:hun#ter2@redis.internal:6379', 'hun#ter2', 'redis://bank:***@redis.internal:6379'],
      ['a "?" in the password', 'REDIS_URL', 'rediss://bank:hun?ter2@redis.internal:6380', 'hun?ter2', 'rediss://bank:***@redis.internal:6380'],
      ['a ":" in the password', 'REDIS_URL', 'redis://bank:hun:ter2@redis.internal:6379/bank', 'hun:ter2', 'redis://bank:***@redis.internal:6379/bank'],
      ['no user and every special character', 'REDIS_URL', 'redis://:h/u@n#t?e:r2@redis.internal:6379', 'h/u@n#t?e:r2', 'redis://:***@redis.internal:6379'],
      [
        'a percent-encoded password',
        'REDIS_URL',
        'redis://bank:hun%2Fter2@redis.internal:6379/bank',
        'hun%2Fter2',
        'redis://bank:***@redis.internal:6379/bank',
      ],
      [
        'only a user name (which may be the secret)',
        'REDIS_URL',
        'redis://hunter2@redis.internal:6379/bank',
        'hunter2',
        'redis://***@redis.internal:6379/bank',
      ],
      ['a password in the query', 'REDIS_URL', 'rediss://redis.internal:6380/0?password=hunter2', 'hunter2', 'rediss://redis.internal:6380/0?***'],
      ['no scheme', 'REDIS_URL', 'bank:hun/ter2@redis.internal:6379', 'hun/ter2', 'bank:***@redis.internal:6379'],
      ['a "/" in a CONSUL_URL password', 'CONSUL_URL', 'http://ops:hun/ter2@consul.internal:8500', 'hun/ter2', 'http://ops:***@consul.internal:8500'],
    ])('never repeats a password with %s', (_case, variable, value, secret, shown) => {
      const env = variable === 'REDIS_URL' ? { ...REDIS_ENV, REDIS_URL: value } : { ...CONSUL_ENV, CONSUL_URL: value };
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toContain(`got "${shown}".`);
      for (const part of [secret, ...secret.split(/[/@#?:%]/).filter((p) => p.length > 1)]) expect(error.message).not.toContain(part);
    });

    it('bankOptionsOf: a RedisIdentityLookup, and the ledger and journal in the same Redis under the same prefix', () => {
      const options = bankOptionsOf(readBankConfig({ ...REDIS_ENV, REDIS_KEY_PREFIX: 'eu', REDIS_LEASE: 'safe', CLUSTER_NAME: 'east' }));
      expect(options.clientOnly).toBe(false);
      expect(options.cluster).toMatchObject({ clusterName: 'east', remote: { host: '127.0.0.1', port: 4001, advertisedHost: '127.0.0.1' } });
      expect(options.cluster?.provider).toBeInstanceOf(StaticProvider);
      expect(options.cluster?.identityLookup).toBeInstanceOf(RedisIdentityLookup);
      expect(options.redisStores).toEqual({ url: 'redis://127.0.0.1:6379', keyPrefix: 'eu' });
      expect(bankOptionsOf(readBankConfig(MEMBER_ENV)).redisStores).toBeUndefined(); // hash: in memory, as before
    });

    it('bankOptionsOf: a client-only member uses the Redis lookup and keeps no stores', () => {
      const options = bankOptionsOf(readBankConfig({ ...CLIENT_ENV, IDENTITY_LOOKUP: 'redis', REDIS_URL: 'redis://127.0.0.1:6379' }));
      expect(options.clientOnly).toBe(true);
      expect(options.cluster?.identityLookup).toBeInstanceOf(RedisIdentityLookup);
      expect(options.redisStores).toBeUndefined();
    });
  });

  describe('REMOTE_TLS_CA, REMOTE_TLS_CERT, REMOTE_TLS_KEY: mutual TLS between members', () => {
    // NOTE: the configuration checks that the files exist; what is in them is checked when the member starts.
    const dir = mkdtempSync(join(tmpdir(), 'bank-tls-'));
    const TLS_ENV = { REMOTE_TLS_CA: join(dir, 'ca.pem'), REMOTE_TLS_CERT: join(dir, 'member.pem'), REMOTE_TLS_KEY: join(dir, 'member.key') };
    for (const path of Object.values(TLS_ENV)) writeFileSync(path, 'PEM\n');
    const TLS_FILES = { caFile: TLS_ENV.REMOTE_TLS_CA, certFile: TLS_ENV.REMOTE_TLS_CERT, keyFile: TLS_ENV.REMOTE_TLS_KEY };
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('a hosting member with all three: remote.tls from the files, beside its host and port', () => {
      const config = readBankConfig({ ...MEMBER_ENV, ...TLS_ENV });
      expect(config.cluster).toMatchObject({ mode: 'member', remote: { host: '127.0.0.1', port: 4001, advertisedHost: '127.0.0.1' }, tls: TLS_FILES });
      expect(bankOptionsOf(config).cluster?.remote).toEqual({ host: '127.0.0.1', port: 4001, advertisedHost: '127.0.0.1', tls: TLS_FILES });
    });

    it('a client-only member with all three: a remote with TLS and no port', () => {
      const config = readBankConfig({ ...CLIENT_ENV, ...TLS_ENV });
      expect(config.cluster).toMatchObject({ mode: 'client', tls: TLS_FILES });
      expect(bankOptionsOf(config).cluster?.remote).toEqual({ tls: TLS_FILES });
    });

    it('none (or empty): no TLS, as before', () => {
      expect(readBankConfig(MEMBER_ENV).cluster).not.toHaveProperty('tls');
      expect(readBankConfig({ ...MEMBER_ENV, REMOTE_TLS_CA: '', REMOTE_TLS_CERT: '', REMOTE_TLS_KEY: '' }).cluster).not.toHaveProperty('tls');
      expect(bankOptionsOf(readBankConfig(MEMBER_ENV)).cluster?.remote).not.toHaveProperty('tls');
    });

    it.each<[string, NodeJS.ProcessEnv, string, RegExp]>([
      [
        'the CA only',
        { ...MEMBER_ENV, REMOTE_TLS_CA: TLS_ENV.REMOTE_TLS_CA },
        'REMOTE_TLS_CERT',
        /^REMOTE_TLS_CERT is required with REMOTE_TLS_CA: .*all three/,
      ],
      [
        'no key',
        { ...CLIENT_ENV, REMOTE_TLS_CA: TLS_ENV.REMOTE_TLS_CA, REMOTE_TLS_CERT: TLS_ENV.REMOTE_TLS_CERT },
        'REMOTE_TLS_KEY',
        /^REMOTE_TLS_KEY is required with REMOTE_TLS_CA and REMOTE_TLS_CERT/,
      ],
      ['the key only', { ...MEMBER_ENV, REMOTE_TLS_KEY: TLS_ENV.REMOTE_TLS_KEY }, 'REMOTE_TLS_CA', /^REMOTE_TLS_CA is required with REMOTE_TLS_KEY/],
      [
        'a file that does not exist',
        { ...MEMBER_ENV, ...TLS_ENV, REMOTE_TLS_CERT: join(dir, 'nope.pem') },
        'REMOTE_TLS_CERT',
        /^REMOTE_TLS_CERT must be the path of a PEM file; ".*nope\.pem" is not a file\.$/,
      ],
      ['a directory', { ...MEMBER_ENV, ...TLS_ENV, REMOTE_TLS_KEY: dir }, 'REMOTE_TLS_KEY', /^REMOTE_TLS_KEY must be the path of a PEM file/],
      ['set without REMOTE_PORT (embedded)', { ...TLS_ENV }, 'REMOTE_TLS_CA', /^REMOTE_TLS_CA is set but REMOTE_PORT is not/],
    ])('invalid: %s', (_case, env, variable, message) => {
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('\n');
    });
  });
});
