import { existsSync, readFileSync, writeFileSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server as TlsServer } from 'node:tls';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  Cluster,
  type ClusterOptions,
  GrainConfigurationError,
  GrainError,
  type GrainClass,
  type GrainContext,
  HashIdentityLookup,
  type RemoteTlsOptions,
  StaticProvider,
  UnknownKindError,
} from 'nestjs-grains';
import { eventually, outcome, RecordingLogger } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';
import { startMembers, type InProcessCluster } from '../support/in-process-cluster.js';
import { MemberHarness } from '../support/member-harness.js';
import { handshake, RawPeer, requestBatch } from '../support/raw-peer.js';
import { hasOpenssl, peerCertificateSerial, strangerCredentials, TestCa, tlsAttempt } from '../support/tls.js';

/**
 * Mutual TLS between members (`remote.tls`): members whose certificates the cluster CA
 * signed talk; a stranger — plaintext, no certificate, another CA's certificate — is refused
 * during the TLS handshake, learns nothing, and runs nothing; certificates replaced on disk
 * take effect for new connections without a restart.
 */

const CLUSTER = 'vault-7f3a';
/** gRPC UNAVAILABLE: how a connection that failed its TLS handshake looks to a grpc-js client. */
const UNAVAILABLE = 14;

/** Every execution of `recorder`, in this process. */
const ran: string[] = [];

class RecorderGrain {
  constructor(private readonly ctx: GrainContext) {}
  record(tag: string): string {
    ran.push(`${this.ctx.memberId} ${this.ctx.identity} ${tag}`);
    return this.ctx.memberId;
  }
}

const RECORDER = { name: 'recorder', grainClass: RecorderGrain };

/** A member built here (not by startMembers), hosting `recorder` when it serves. */
async function member(options: Partial<ClusterOptions> & { members: string[] }): Promise<{ cluster: Cluster; logger: RecordingLogger }> {
  const logger = new RecordingLogger();
  const { members, ...rest } = options;
  const cluster = new Cluster({
    clusterName: CLUSTER,
    logger,
    provider: new StaticProvider({ members, probeInterval: 50, startupGrace: 200 }),
    identityLookup: new HashIdentityLookup(),
    requestTimeout: 1_500,
    ...rest,
  });
  if (options.remote?.port !== undefined) {
    cluster.registerKind({ name: 'recorder', grainClass: RecorderGrain as unknown as GrainClass, create: (ctx) => new RecorderGrain(ctx) });
  }
  await cluster.start();
  return { cluster, logger };
}

/** The A-side ends of the established TCP connections of this process to `port` on 127.0.0.1 (local ports), from /proc/net/tcp. */
function connectionsTo(port: number): number[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length > 3 && f[2] === `0100007F:${hex}` && f[3] === '01')
    .map((f) => parseInt(f[1]!.split(':')[1]!, 16));
}

describe.skipIf(!hasOpenssl())('mTLS between members (remote.tls)', () => {
  let ca: TestCa;
  let foreign: TestCa;
  const stops: Array<() => Promise<void> | void> = [];

  beforeAll(() => {
    ca = TestCa.create('cluster-ca');
    foreign = TestCa.create('foreign-ca');
  });
  afterAll(() => {
    ca?.remove();
    foreign?.remove();
  });
  beforeEach(() => {
    ran.length = 0;
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  async function tlsMembers(specs: Parameters<typeof startMembers>[0], list: Parameters<typeof startMembers>[2] = {}): Promise<InProcessCluster> {
    const c = await startMembers(specs, CLUSTER, list);
    stops.push(() => c.shutdown());
    return c;
  }

  it('members with certificates of the cluster CA call each other, from files or inline PEM, client-only members too', async () => {
    const b = ca.issue('b');
    const c = await tlsMembers([
      { kinds: [], options: { remote: { tls: ca.tls('a') } } },
      { kinds: [RECORDER], options: { remote: { tls: { ca: ca.ca, cert: Buffer.from(b.cert), key: b.key } } } },
      { kinds: [], clientOnly: true, options: { remote: { tls: ca.tls('c') } } },
    ]);
    const [a, hostB, client] = c.members;
    expect(await a!.client<RecorderGrain>('recorder').get('x').record('from a')).toBe(hostB!.memberId);
    expect(await client!.client<RecorderGrain>('recorder').get('y').record('from c')).toBe(hostB!.memberId);
    expect(ran).toEqual([`${hostB!.memberId} x from a`, `${hostB!.memberId} y from c`]);
    for (const logger of c.loggers) expect(logger.messages('warn')).toEqual([]);
  });

  it('refuses strangers in the TLS handshake — plaintext, no certificate, another CA — which learn nothing and run nothing', async () => {
    const c = await tlsMembers([{ kinds: [RECORDER], options: { remote: { tls: ca.tls('b') } } }]);
    const address = c.members[0]!.remoteAddress;
    const frames = [{ handshake: handshake(CLUSTER) }, requestBatch([{ id: 1, kind: 'recorder', identity: 's', method: 'record', args: ['stranger'] }])];

    const plaintext = new RawPeer(address);
    for (const frame of frames) plaintext.send(frame);
    const plaintextEnd = await plaintext.ended;
    plaintext.close();
    const attempts = {
      plaintext: { frames: plaintext.frames, status: plaintextEnd },
      'no certificate': await tlsAttempt(address, strangerCredentials({ ca: ca.ca }), frames),
      'another CA': await tlsAttempt(address, strangerCredentials({ ca: ca.ca, ...foreign.issue('mallory') }), frames),
      // NOTE: a certificate of the cluster CA meant for servers only: as a client's, TLS refuses it.
      'server-only certificate': await tlsAttempt(address, strangerCredentials({ ca: ca.ca, ...ca.issue('server-only', { eku: 'server' }) }), frames),
    };
    for (const [who, attempt] of Object.entries(attempts)) {
      expect(attempt.frames, who).toEqual([]); // no HandshakeAck: not even a refusal with a reason
      expect(attempt.status?.code, who).toBe(UNAVAILABLE);
      expect(attempt.status?.details, who).not.toContain(CLUSTER);
    }
    expect(ran).toEqual([]);
    expect(c.loggers[0]!.messages('warn')).toEqual([]); // refused below the remote: no handshake, nothing to log

    // Not vacuous: the same frames with a certificate of the cluster CA are answered and run.
    const member = await tlsAttempt(address, strangerCredentials({ ca: ca.ca, ...ca.issue('raw-member') }), frames, 2_000);
    expect(member.frames.some((f) => 'handshakeAck' in f && f.handshakeAck.accepted)).toBe(true);
    expect(ran).toEqual([`${c.members[0]!.memberId} s stranger`]);
  });

  /**
   * A listed address whose handshake never answers is never a member (the provider lists
   * it, the handshake confirms it): once the member's startup grace is over, calls for the
   * kinds only it hosts fail with UnknownKindError, at once.
   */
  async function callWhenReady(cluster: Cluster, tag: string): Promise<unknown> {
    expect(await eventually(() => cluster.ready, 5_000)).toBe(true);
    const result = await outcome(cluster.client<RecorderGrain>('recorder').get('z').record(tag));
    expect(result.ok, tag).toBe(false);
    return (result as { error: unknown }).error;
  }

  it('a member of another CA, and a plaintext member, calling a TLS member: never connected, typed errors, nothing ran', async () => {
    const c = await tlsMembers([{ kinds: [RECORDER], options: { remote: { tls: ca.tls('b') } } }]);
    const address = c.members[0]!.remoteAddress;
    const others = {
      'another CA': await member({ members: [address], remote: { tls: foreign.tls('m') } }),
      plaintext: await member({ members: [address], remote: {} }),
    };
    for (const { cluster } of Object.values(others)) stops.push(() => cluster.shutdown());
    for (const [who, { cluster }] of Object.entries(others)) {
      const error = await callWhenReady(cluster, who);
      expect(error, who).toBeInstanceOf(UnknownKindError);
      expect((error as GrainError).message, who).not.toContain(CLUSTER);
      expect(cluster.members().map((m) => m.id)).not.toContain(c.members[0]!.memberId);
    }
    // The member of another CA says why (its side of the handshake refused the server's certificate first).
    expect(others['another CA'].logger.messages('warn').filter((m) => m.includes('the TLS handshake failed'))).toEqual([
      `Remote ${address}: the TLS handshake failed (self-signed certificate in certificate chain); is it a member with remote.tls and a certificate of the cluster CA?`,
    ]);
    expect(ran).toEqual([]);
    expect(c.loggers[0]!.messages('warn')).toEqual([]);
  });

  it('a TLS member calling a plaintext member: a typed error and a warning naming TLS, nothing ran there', async () => {
    const plain = await tlsMembers([{ kinds: [RECORDER] }]);
    const address = plain.members[0]!.remoteAddress;
    const { cluster, logger } = await member({ members: [address], remote: { tls: ca.tls('t') } });
    stops.push(() => cluster.shutdown());
    expect(await callWhenReady(cluster, 'tls → plaintext')).toBeInstanceOf(UnknownKindError);
    expect(logger.messages('warn')).toEqual([
      `Remote ${address}: the TLS handshake failed (wrong version number); is it a member with remote.tls and a certificate of the cluster CA?`,
    ]);
    expect(ran).toEqual([]);
    expect(plain.loggers[0]!.messages('warn')).toEqual([]);
  });

  describe('configuration: a GrainConfigurationError at start naming the option, never key material', () => {
    it.each<[string, () => RemoteTlsOptions, RegExp]>([
      ['a missing file', () => ({ ...ca.tls('a'), caFile: join(ca.dir, 'nope.pem') }), /remote\.tls\.caFile \(.*nope\.pem\) cannot be read \(ENOENT\)/],
      ['no PEM', () => ({ ...ca.tls('a'), certFile: writeTemp('garbage.pem', 'hello') }), /remote\.tls\.certFile \(.*\) holds no PEM certificate/],
      [
        'a broken PEM',
        () => ({ ...ca.tls('a'), certFile: writeTemp('broken.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n') }),
        /does not parse/,
      ],
      ['a certificate as the key', () => ({ ...ca.tls('a'), keyFile: ca.tls('a').certFile! }), /remote\.tls\.keyFile \(.*\) is not a PEM private key/],
      [
        'the key of another certificate',
        () => ({ ...ca.tls('a'), keyFile: ca.tls('b').keyFile! }),
        /is not the key of the certificate in remote\.tls\.certFile/,
      ],
      [
        'a certificate of another CA',
        () => ({ ...foreign.tls('m'), caFile: ca.caFile }),
        /remote\.tls\.certFile \(.*\) is not signed by the cluster CA in remote\.tls\.caFile/,
      ],
      ['a server-only certificate', () => ({ caFile: ca.caFile, ...certOnly(ca.issue('s', { eku: 'server' })) }), /extended key usage/],
      ['ca and caFile', () => ({ ...ca.tls('a'), ca: ca.ca }), /remote\.tls\.ca and remote\.tls\.caFile are both set/],
      ['no key', () => ({ caFile: ca.caFile, certFile: ca.tls('a').certFile! }), /remote\.tls\.keyFile \(or remote\.tls\.key\) is required/],
      ['inline garbage', () => ({ ca: 'x', cert: 'y', key: 'z' }), /remote\.tls\.ca holds no PEM certificate/],
      ['a bad reload interval', () => ({ ...ca.tls('a'), reloadIntervalMs: 0 }), /remote\.tls\.reloadIntervalMs must be a positive integer/],
    ])('%s', async (_, tls, message) => {
      const options = tls();
      const cluster = new Cluster({ clusterName: CLUSTER, logger: new RecordingLogger(), remote: { host: '127.0.0.1', port: 0, tls: options } });
      const result = await outcome(cluster.start());
      expect(result.ok).toBe(false);
      const error = (result as { error: Error }).error;
      expect(error).toBeInstanceOf(GrainConfigurationError);
      expect(error.message).toMatch(message);
      expect(error.message).not.toMatch(/PRIVATE KEY/);
      for (const keyFile of [options.keyFile, ca.tls('a').keyFile, ca.tls('b').keyFile]) {
        if (keyFile === undefined || !existsSync(keyFile)) continue;
        const body = readFileSync(keyFile, 'utf8').split('\n')[1]!;
        expect(error.message).not.toContain(body.slice(0, 16));
      }
    });
  });

  describe('the plaintext warning', () => {
    it.each<[string, { host: string; advertisedHost?: string; tls?: boolean }, number]>([
      ['binding 0.0.0.0 without TLS: warned once', { host: '0.0.0.0', advertisedHost: '127.0.0.1' }, 1],
      ['binding 0.0.0.0 with TLS: not warned', { host: '0.0.0.0', advertisedHost: '127.0.0.1', tls: true }, 0],
      ['binding loopback without TLS: not warned', { host: '127.0.0.1' }, 0],
    ])('%s', async (_, { host, advertisedHost, tls }, warnings) => {
      const logger = new RecordingLogger();
      // NOTE: advertisedHost given, so the test does not depend on this machine having a non-loopback address.
      const cluster = new Cluster({
        clusterName: CLUSTER,
        logger,
        remote: { host, port: 0, ...(advertisedHost && { advertisedHost }), ...(tls && { tls: ca.tls('w') }) },
      });
      await cluster.start();
      stops.push(() => cluster.shutdown());
      const warned = logger.messages('warn').filter((m) => m.includes('runs without TLS'));
      expect(warned).toHaveLength(warnings);
      if (warnings > 0) expect(warned[0]).toMatch(/anyone who can reach it can call any grain; put it on a trusted network or configure remote\.tls/);
    });
  });

  it('replaced certificate files take effect for new connections without a restart; open connections keep going; a bad set is not used', async () => {
    // Each member's files in a directory of their own, replaced in place below.
    const dirs = ['a', 'b'].map((name) => {
      const dir = mkdtempSync(join(tmpdir(), `grains-member-${name}-`));
      stops.push(() => rmSync(dir, { recursive: true, force: true }));
      const cert = ca.issue(name);
      copyFileSync(cert.certFile, join(dir, 'cert.pem'));
      copyFileSync(cert.keyFile, join(dir, 'key.pem'));
      return { dir, serial: cert.serial, tls: { caFile: ca.caFile, certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), reloadIntervalMs: 100 } };
    });
    // An observer: a TLS server of the cluster CA that records the certificate every new
    // connection presents, then hangs up. Both members keep dialling it (it is listed, but
    // never answers a handshake).
    const seen: string[] = [];
    const observerCert = ca.issue('observer');
    const observer: TlsServer = createServer({ ca: ca.ca, cert: observerCert.cert, key: observerCert.key, requestCert: true, rejectUnauthorized: true });
    observer.on('secureConnection', (socket) => {
      seen.push(socket.getPeerCertificate().serialNumber.toUpperCase());
      socket.destroy();
    });
    const observerPort = await freePort();
    await new Promise<void>((resolve) => observer.listen(observerPort, '127.0.0.1', resolve));
    stops.push(() => new Promise<void>((resolve) => observer.close(() => resolve())));

    const c = await tlsMembers(
      [
        { kinds: [], options: { remote: { tls: dirs[0]!.tls } } },
        { kinds: [RECORDER], options: { remote: { tls: dirs[1]!.tls } } },
      ],
      { extraAddresses: [`127.0.0.1:${observerPort}`], startupGrace: 200 },
    );
    const [a, b] = c.members;
    const bPort = Number(b!.remoteAddress.split(':')[1]);
    const recorder = a!.client<RecorderGrain>('recorder');
    await recorder.get('r').record('before');
    const before = connectionsTo(bPort);
    expect(before).toHaveLength(1);
    expect(await eventually(() => seen.includes(dirs[0]!.serial), 5_000)).toBe(true);
    expect(await peerCertificateSerial(b!.remoteAddress, { ca: ca.ca, ...ca.issue('probe') })).toBe(dirs[1]!.serial);

    // Replace both members' certificate and key (the key first: a set half written is not used).
    const next = ['a', 'b'].map((name, i) => {
      const cert = ca.issue(`${name}-2`);
      writeFileSync(dirs[i]!.tls.keyFile, cert.key);
      writeFileSync(dirs[i]!.tls.certFile, cert.cert);
      return cert;
    });
    const reloaded = (i: number) => c.loggers[i]!.messages('log').some((m) => m.includes('TLS certificates reloaded'));
    expect(await eventually(() => reloaded(0) && reloaded(1), 5_000)).toBe(true);
    const seenBefore = seen.length;
    expect(await eventually(() => seen.slice(seenBefore).includes(next[0]!.serial), 5_000)).toBe(true); // A's new connections
    expect(await peerCertificateSerial(b!.remoteAddress, { ca: ca.ca, ...ca.issue('probe') })).toBe(next[1]!.serial); // B's new connections
    // The connection A opened before (with the old certificates) still carries A's calls.
    await recorder.get('r').record('after');
    expect(connectionsTo(bPort)).toEqual(before);

    // A certificate of another CA written over A's: not used (warned once), the valid set stays.
    const stranger = foreign.issue('a-3');
    writeFileSync(dirs[0]!.tls.keyFile, stranger.key);
    writeFileSync(dirs[0]!.tls.certFile, stranger.cert);
    expect(await eventually(() => c.loggers[0]!.messages('warn').some((m) => m.includes('the TLS files changed but are not used')), 5_000)).toBe(true);
    const warned = c.loggers[0]!.messages('warn').filter((m) => m.includes('the TLS files changed'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/is not signed by the cluster CA/);
    const seenAfterBad = seen.length;
    expect(await eventually(() => seen.length > seenAfterBad + 1, 5_000)).toBe(true);
    expect(seen.slice(seenAfterBad).every((serial) => serial === next[0]!.serial || serial === next[1]!.serial)).toBe(true);
    expect(await recorder.get('r2').record('still')).toBe(b!.memberId);
    expect(ran.map((r) => r.split(' ').at(-1))).toEqual(['before', 'after', 'still']);
  });

  it('over the network: member processes with TLS serve each other; a plaintext process gets typed errors and runs nothing', async () => {
    const files = (name: string) => {
      const tls = ca.tls(name);
      return { TLS_CA_FILE: tls.caFile, TLS_CERT_FILE: tls.certFile, TLS_KEY_FILE: tls.keyFile };
    };
    const h = await MemberHarness.start(
      [
        { env: files('p0'), label: 'tls 0' },
        { env: files('p1'), label: 'tls 1' },
        { clientOnly: true, env: files('p2'), label: 'tls client' },
        { clientOnly: true, env: { REQUEST_TIMEOUT_MS: '1500' }, label: 'plaintext client', wait: false },
      ],
      { clusterName: CLUSTER },
    );
    stops.push(() => h.shutdown());
    const calls = Array.from({ length: 8 }, (_, i) => ({ kind: 'counter', identity: `c${i}`, method: 'exec', args: [`tls-${i}`] }));
    const outcomes = await h.members[2]!.batch(calls);
    expect(outcomes.every((o) => o.ok)).toBe(true);
    await h.readEvents();
    expect(h.execEvents()).toHaveLength(calls.length);
    expect(new Set(h.execEvents().map((e) => e.member)).size).toBe(2); // both hosting members served some

    const before = h.execEvents().length;
    const refused = await h.members[3]!.call('counter', 'c0', 'exec', ['plaintext']);
    expect(refused.ok).toBe(false);
    expect((refused as { error: { code?: string } }).error.code).toMatch(/^GRAIN_/);
    await h.readEvents();
    expect(h.execEvents()).toHaveLength(before);
    expect(h.members[3]!.stderr()).not.toContain('refused this member'); // no handshake ever answered
  });
});

/** `{ certFile, keyFile }` of an issued certificate. */
function certOnly(cert: { certFile: string; keyFile: string }): { certFile: string; keyFile: string } {
  return { certFile: cert.certFile, keyFile: cert.keyFile };
}

let tempDir: string | undefined;
function writeTemp(name: string, text: string): string {
  tempDir ??= mkdtempSync(join(tmpdir(), 'grains-tls-bad-'));
  const path = join(tempDir, name);
  writeFileSync(path, text);
  return path;
}
afterAll(() => {
  if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
});
