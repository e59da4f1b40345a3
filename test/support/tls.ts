/**
 * Certificates for the mTLS tests, made with the `openssl` CLI in a temporary directory:
 * a CA and member certificates it signs (EC P-256, extended key usage serverAuth +
 * clientAuth, valid 2 days), and TLS strangers that open a `Remoting.Connect` stream to a
 * member with whatever credentials a test gives them.
 *
 * API
 *
 *   hasOpenssl()                       whether `openssl` runs here (tests skip without it)
 *   const ca = TestCa.create(name?)    a new CA in a new temp directory (ca.dir, ca.caFile)
 *   ca.issue(name, { eku? })           → IssuedCert { certFile, keyFile, cert, key, serial }
 *                                      signed by this CA; `eku: 'server'` for a server-only one
 *   ca.tls(name, extra?)               → RemoteTlsOptions { caFile, certFile, keyFile, ...extra }
 *                                      (issues `name` on first use)
 *   ca.remove()                        delete the directory
 *   tlsAttempt(address, credentials, frames, waitMs?)
 *                                      a stream opened with `credentials`, `frames` written;
 *                                      → { frames (what came back), status (how it ended) }
 *   strangerCredentials({ ca?, key?, cert? })
 *                                      grpc-js channel credentials that trust `ca` (PEM)
 *                                      without checking the peer's name
 *   peerCertificateSerial(address, { ca, cert, key })
 *                                      the serial number of the certificate a TLS server
 *                                      presents (a plain TLS handshake, ALPN h2)
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { type ChannelCredentials, type ClientDuplexStream, credentials, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import type { RemoteTlsOptions } from 'nestjs-grains';
import { remotingService } from '../../lib/remote/service-definition.js';
import { decodeFrame, encodeFrame, type Frame } from '../../lib/remote/wire.js';

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe', timeout: 20_000 });
}

export interface IssuedCert {
  readonly certFile: string;
  readonly keyFile: string;
  /** The PEM text of each. */
  readonly cert: string;
  readonly key: string;
  /** Upper-case hex, as Node's `getPeerCertificate().serialNumber` and `X509Certificate.serialNumber` give it. */
  readonly serial: string;
}

/** A certificate authority in a temporary directory. */
export class TestCa {
  private readonly issued = new Map<string, IssuedCert>();

  private constructor(
    readonly name: string,
    readonly dir: string,
  ) {}

  static create(name = 'cluster-ca'): TestCa {
    const dir = mkdtempSync(join(tmpdir(), `grains-${name}-`));
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '2',
        '-subj',
        `/CN=${name}`,
      ],
      dir,
    );
    return new TestCa(name, dir);
  }

  get caFile(): string {
    return join(this.dir, 'ca.pem');
  }

  /** The CA certificate, PEM. */
  get ca(): string {
    return readFileSync(this.caFile, 'utf8');
  }

  /** A new certificate for `name` (a new key each time), signed by this CA. */
  issue(name: string, options: { eku?: 'both' | 'server' } = {}): IssuedCert {
    const base = `${name}-${randomBytes(3).toString('hex')}`;
    // NOTE: the first byte 0x10..0x4f: positive, no leading zero, so Node prints it as written.
    const serial = (((randomBytes(1)[0]! & 0x3f) + 0x10).toString(16) + randomBytes(7).toString('hex')).toUpperCase();
    const eku = options.eku === 'server' ? 'serverAuth' : 'serverAuth,clientAuth';
    writeFileSync(join(this.dir, `${base}.ext`), `basicConstraints=CA:FALSE\nextendedKeyUsage=${eku}\nsubjectAltName=DNS:${name}\n`);
    openssl(
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        `${base}.key`,
        '-out',
        `${base}.csr`,
        '-subj',
        `/CN=${name}`,
      ],
      this.dir,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${base}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-set_serial',
        `0x${serial}`,
        '-days',
        '2',
        '-extfile',
        `${base}.ext`,
        '-out',
        `${base}.pem`,
      ],
      this.dir,
    );
    const certFile = join(this.dir, `${base}.pem`);
    const keyFile = join(this.dir, `${base}.key`);
    return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), serial };
  }

  /** `remote.tls` for member `name`: this CA, and `name`'s certificate (issued on first use). */
  tls(name: string, extra: Partial<RemoteTlsOptions> = {}): RemoteTlsOptions {
    let cert = this.issued.get(name);
    if (cert === undefined) {
      cert = this.issue(name);
      this.issued.set(name, cert);
    }
    return { caFile: this.caFile, certFile: cert.certFile, keyFile: cert.keyFile, ...extra };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Channel credentials trusting `ca` (the member's, so this side refuses nothing), presenting `cert` when given. */
export function strangerCredentials(pem: { ca: string; key?: string; cert?: string }): ChannelCredentials {
  return credentials.createSsl(
    Buffer.from(pem.ca),
    pem.key === undefined ? null : Buffer.from(pem.key),
    pem.cert === undefined ? null : Buffer.from(pem.cert),
    { checkServerIdentity: () => undefined },
  );
}

const RemotingClient = makeGenericClientConstructor(remotingService, 'Remoting');

export interface AttemptResult {
  /** Frames the member sent back (decoded). */
  readonly frames: Frame[];
  /** How the stream ended (undefined: still open after `waitMs`). */
  readonly status: { code: number; details: string } | undefined;
}

/**
 * Open a `Remoting.Connect` stream to `address` with `channelCredentials`, write `frames`,
 * and collect what comes back until the stream ends (or `waitMs` passes).
 */
export async function tlsAttempt(address: string, channelCredentials: ChannelCredentials, frames: Frame[], waitMs = 5_000): Promise<AttemptResult> {
  const client = new RemotingClient(address, channelCredentials, { 'grpc.ssl_target_name_override': 'grains-member' });
  const stream = (client as unknown as { connect(): ClientDuplexStream<Buffer, Buffer> }).connect();
  const received: Frame[] = [];
  try {
    const status = await new Promise<{ code: number; details: string } | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), waitMs);
      const finish = (s: { code: number; details: string }) => {
        clearTimeout(timer);
        resolve(s);
      };
      stream.on('data', (chunk: Buffer) => received.push(decodeFrame(chunk)));
      stream.on('status', (s: { code: number; details: string }) => finish({ code: s.code, details: s.details }));
      stream.on('error', (e: ServiceError) => finish({ code: e.code ?? -1, details: e.details ?? e.message }));
      for (const frame of frames) stream.write(encodeFrame(frame));
    });
    return { frames: received, status };
  } finally {
    stream.cancel();
    client.close();
  }
}

/** The serial number of the certificate the TLS server at `address` presents to a client with `pem`. */
export function peerCertificateSerial(address: string, pem: { ca: string; cert: string; key: string }): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host, port, ca: pem.ca, cert: pem.cert, key: pem.key, servername: 'grains-member', ALPNProtocols: ['h2'], checkServerIdentity: () => undefined },
      () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.destroy();
        resolve(serial.toUpperCase());
      },
    );
    socket.once('error', reject);
  });
}
