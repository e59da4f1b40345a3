import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { type ChannelCredentials, experimental, type ServerCredentials } from '@grpc/grpc-js';
import type { RemoteTlsOptions } from './remote-options.js';

/**
 * The server name a member sends (SNI) when it dials a peer over TLS. Peers are dialled by
 * IP address, which TLS may not carry as a server name (RFC 6066), and the name is never
 * checked (trust is "signed by the cluster CA"): a fixed name that says nothing about the cluster.
 */
export const TLS_SERVER_NAME = 'grains-member';

/** A TLS option that is missing, unreadable or invalid; the message names the option, never key material. */
export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

/** The credentials a `Remote` uses on each side of its connections. */
export interface RemoteCredentials {
  /** The server's: requires a client certificate signed by the cluster CA. */
  readonly server: ServerCredentials;
  /** The endpoints' channels: verify the peer against the cluster CA, present this member's certificate. */
  readonly channel: ChannelCredentials;
}

type CaListener = Parameters<experimental.CertificateProvider['addCaCertificateListener']>[0];
type IdentityListener = Parameters<experimental.CertificateProvider['addIdentityCertificateListener']>[0];

/** One of `ca`, `cert`, `key`: inline PEM or a file. */
interface Source {
  /** How messages name it: `remote.tls.certFile (/etc/grains/member.pem)` or `remote.tls.cert`. */
  readonly name: string;
  readonly file?: string;
  readonly inline?: Buffer;
}

interface Sources {
  readonly ca: Source;
  readonly cert: Source;
  readonly key: Source;
}

interface Pem {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
/** Extended key usages a member certificate serves: TLS server and TLS client. */
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
/** How long a change seen in the files must stay the same before it is used (a set being written file by file). */
const MAX_SETTLE_MS = 1_000;

/**
 * A member's TLS material: the cluster CA, its certificate and key, validated together, and
 * re-read from their files while it runs. It is the grpc-js `CertificateProvider` of both
 * the server and the client credentials, so a new set takes effect for new connections
 * (TLS handshakes) on both sides, and open connections keep going.
 *
 * NOTE: grpc-js' own `FileWatcherCertificateProvider` passes on whatever it reads, and a
 * failed read or a certificate that does not match its key leaves the server refusing every
 * connection until the next read; here a set is used only once it is valid, else the one in
 * use is kept.
 */
export class TlsMaterial implements experimental.CertificateProvider {
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private timer: NodeJS.Timeout | undefined;
  private reloading = false;
  private closed = false;
  /** The last problem logged about the files, so it is logged once. */
  private problem: string | undefined;

  private constructor(
    private readonly sources: Sources,
    private pem: Pem,
    private readonly log: (level: 'warn' | 'log', message: string) => void,
  ) {}

  /**
   * Read and check `options`.
   * @throws TlsConfigError naming the option at fault.
   */
  static async load(options: RemoteTlsOptions, log: (level: 'warn' | 'log', message: string) => void): Promise<TlsMaterial> {
    const sources = sourcesOf(options);
    const pem = await readAll(sources);
    validate(pem, sources);
    return new TlsMaterial(sources, pem, log);
  }

  /** True when at least one of the three comes from a file (and can change). */
  get fromFiles(): boolean {
    return [this.sources.ca, this.sources.cert, this.sources.key].some((s) => s.file !== undefined);
  }

  credentials(): RemoteCredentials {
    // NOTE: one provider for both roles: grpc-js 1.14's createCertificateProviderServerCredentials
    // passes its (ca, identity) arguments on in the other order, which then does not matter.
    return {
      server: experimental.createCertificateProviderServerCredentials(this, this, true),
      channel: experimental.createCertificateProviderChannelCredentials(this, this, { checkServerIdentity: () => undefined }),
    };
  }

  /** Re-read the files every `intervalMs` (nothing to do when all three are inline). */
  watch(intervalMs: number): void {
    if (!this.fromFiles || this.timer !== undefined) return;
    this.timer = setInterval(() => void this.reload(Math.min(MAX_SETTLE_MS, intervalMs / 2)), intervalMs);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Read the files now. When they changed (and stayed the same for `settleMs`) and form a
   * valid set, new connections use it from now on; resolves to whether it did.
   */
  async reload(settleMs = 0): Promise<boolean> {
    if (this.reloading || this.closed) return false;
    this.reloading = true;
    try {
      let next = await readAll(this.sources);
      if (same(next, this.pem)) {
        this.problem = undefined;
        return false;
      }
      if (settleMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, settleMs).unref());
        const again = await readAll(this.sources);
        if (!same(again, next)) return false; // still being written: the next check takes it
        next = again;
      }
      validate(next, this.sources);
      if (this.closed) return false;
      this.pem = next;
      this.problem = undefined;
      this.log('log', 'Remote: TLS certificates reloaded; new connections use them.');
      for (const listener of this.caListeners) listener({ caCertificate: next.ca });
      for (const listener of this.identityListeners) listener({ certificate: next.cert, privateKey: next.key });
      return true;
    } catch (error) {
      if (this.closed) return false;
      const message = error instanceof TlsConfigError ? error.message : String(error);
      if (message !== this.problem) {
        this.problem = message;
        this.log('warn', `Remote: the TLS files changed but are not used: ${message}. The certificates in use are kept until the files form a valid set.`);
      }
      return false;
    } finally {
      this.reloading = false;
    }
  }

  // grpc-js CertificateProvider. NOTE: the current material is given on the next tick, as
  // grpc-js' own providers do: the server credentials register their watcher only after
  // adding these listeners.

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => {
      if (this.caListeners.has(listener)) listener({ caCertificate: this.pem.ca });
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => {
      if (this.identityListeners.has(listener)) listener({ certificate: this.pem.cert, privateKey: this.pem.key });
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

/** Which of `ca`/`caFile`, `cert`/`certFile`, `key`/`keyFile` is given; exactly one of each. */
function sourcesOf(options: RemoteTlsOptions): Sources {
  if (typeof options !== 'object' || options === null)
    throw new TlsConfigError('remote.tls must be an object: { caFile, certFile, keyFile } or { ca, cert, key }');
  const source = (field: 'ca' | 'cert' | 'key'): Source => {
    const inline = options[field];
    const file = options[`${field}File`];
    if (inline !== undefined && file !== undefined)
      throw new TlsConfigError(
        `remote.tls.${field} and remote.tls.${field}File are both set; give the PEM (${field}) or the path of its file (${field}File), not both`,
      );
    if (file !== undefined) {
      if (typeof file !== 'string' || file === '') throw new TlsConfigError(`remote.tls.${field}File must be the path of a PEM file`);
      return { name: `remote.tls.${field}File (${file})`, file };
    }
    if (inline === undefined)
      throw new TlsConfigError(
        `remote.tls.${field}File (or remote.tls.${field}) is required: mutual TLS needs the cluster CA, this member's certificate and its key`,
      );
    if (typeof inline !== 'string' && !Buffer.isBuffer(inline)) throw new TlsConfigError(`remote.tls.${field} must be PEM text (a string or a Buffer)`);
    return { name: `remote.tls.${field}`, inline: Buffer.from(inline) };
  };
  const interval = options.reloadIntervalMs;
  if (interval !== undefined && !(Number.isInteger(interval) && interval > 0 && interval <= 2 ** 31 - 1))
    throw new TlsConfigError(`remote.tls.reloadIntervalMs must be a positive integer (ms); got ${String(interval)}`);
  return { ca: source('ca'), cert: source('cert'), key: source('key') };
}

async function readAll(sources: Sources): Promise<Pem> {
  const [ca, cert, key] = await Promise.all([read(sources.ca), read(sources.cert), read(sources.key)]);
  return { ca, cert, key };
}

async function read(source: Source): Promise<Buffer> {
  if (source.inline !== undefined) return source.inline;
  try {
    return await readFile(source.file!);
  } catch (error) {
    throw new TlsConfigError(`${source.name} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function same(a: Pem, b: Pem): boolean {
  return a.ca.equals(b.ca) && a.cert.equals(b.cert) && a.key.equals(b.key);
}

/** The certificates of a PEM bundle, in order. */
function certificates(pem: Buffer, source: Source): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new TlsConfigError(`${source.name} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
  return blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw new TlsConfigError(`${source.name} holds a PEM certificate that does not parse`);
    }
  });
}

/**
 * The checks a peer would make, made at start (and on every reload) so that a wrong file is
 * a clear error here instead of a TLS failure on every other member.
 */
function validate(pem: Pem, sources: Sources, now = Date.now()): void {
  const roots = certificates(pem.ca, sources.ca);
  const [leaf, ...intermediates] = certificates(pem.cert, sources.cert);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem.key);
  } catch {
    throw new TlsConfigError(`${sources.key.name} is not a PEM private key (or it is encrypted: give it unencrypted)`);
  }
  if (key.type !== 'private') throw new TlsConfigError(`${sources.key.name} is not a private key`);
  if (!leaf!.checkPrivateKey(key)) throw new TlsConfigError(`${sources.key.name} is not the key of the certificate in ${sources.cert.name}`);
  if (!chainsTo(leaf!, intermediates, roots)) {
    throw new TlsConfigError(
      `${sources.cert.name} is not signed by the cluster CA in ${sources.ca.name}: the other members would refuse it (subject "${leaf!.subject.replaceAll('\n', ', ')}", issuer "${leaf!.issuer.replaceAll('\n', ', ')}")`,
    );
  }
  if (Date.parse(leaf!.validTo) <= now) throw new TlsConfigError(`${sources.cert.name} expired on ${leaf!.validTo}`);
  const usage = leaf!.keyUsage as string[] | undefined;
  if (usage !== undefined && !(usage.includes(SERVER_AUTH) && usage.includes(CLIENT_AUTH))) {
    throw new TlsConfigError(
      `${sources.cert.name} cannot serve both ends of a connection: its extended key usage must include TLS server and TLS client authentication (serverAuth, clientAuth), or be absent`,
    );
  }
  try {
    createSecureContext({ ca: pem.ca, cert: pem.cert, key: pem.key });
  } catch (error) {
    throw new TlsConfigError(`Node's TLS refused ${sources.ca.name}, ${sources.cert.name} and ${sources.key.name}: ${(error as Error).message}`);
  }
}

/** True when `leaf` is signed by one of `roots`, directly or through `intermediates`. */
function chainsTo(leaf: X509Certificate, intermediates: readonly X509Certificate[], roots: readonly X509Certificate[]): boolean {
  const signedBy = (cert: X509Certificate, issuer: X509Certificate) => cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  let current = leaf;
  for (let depth = 0; depth <= intermediates.length; depth++) {
    if (roots.some((root) => signedBy(current, root))) return true;
    const next = intermediates.find((candidate) => candidate !== current && signedBy(current, candidate));
    if (next === undefined) return false;
    current = next;
  }
  return false;
}
