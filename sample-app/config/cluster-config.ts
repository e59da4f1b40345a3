import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import {
  type ClusterModuleOptions,
  ConsulProvider,
  type Duration,
  HashIdentityLookup,
  type Placement,
  RedisIdentityLookup,
  StaticProvider,
} from 'nestjs-grains';
import type { BankOptions } from '../app.module.js';

/**
 * The bank's configuration from environment variables. Nothing set: the embedded default
 * (one member, in memory, no network) that `npm start` runs. A variable set to the empty
 * string counts as unset.
 *
 * | variable | meaning |
 * | --- | --- |
 * | `HTTP_PORT` | HTTP port, 0 to 65535 (0: any free port). Default 3000 |
 * | `CLUSTER_NAME` | the cluster's name: letters, digits, ".", "_", "-". Default `bank` |
 * | `REMOTE_PORT` | set (1 to 65535): this process is a cluster member serving its grains on this port |
 * | `REMOTE_HOST` | interface the remote binds. Default `127.0.0.1` (this machine only) |
 * | `ADVERTISED_HOST` | host the other members reach this one at. Default `REMOTE_HOST`; required when `REMOTE_HOST` is `0.0.0.0` or `::` (every interface: no one address to advertise) |
 * | `CLUSTER_PROVIDER` | membership; required in cluster mode. Allowed: `static`, `consul` |
 * | `STATIC_MEMBERS` | with `static` (required then): the hosting members' addresses, `host:port,host:port,...` |
 * | `CONSUL_URL` | with `consul`: the Consul agent, `http://` or `https://`. Default `http://127.0.0.1:8500` |
 * | `CONSUL_TOKEN` | with `consul`: an ACL token (`service:write` on the cluster name, `service:read`, `node:read`). Default none |
 * | `IDENTITY_LOOKUP` | placement; required in cluster mode. Allowed: `hash`, `redis` |
 * | `REDIS_URL` | with `redis` (required then): `redis://[user:password@]host:port[/db]` or `rediss://…` |
 * | `REDIS_KEY_PREFIX` | with `redis`: first part of every key (hash tag `{prefix:cluster}`). Default `grains` |
 * | `REDIS_LEASE` | with `redis`: member lease timing, `fast` (failover within ~2 s) or `safe` (~6 s). Default `fast` |
 * | `REDIS_PLACEMENT` | with `redis`: where new grains go, `prefer-local`, `random`, `rendezvous` or `least-loaded` (by the activations members gossip). Default `prefer-local` |
 * | `GOSSIP` | `on` or `off`: gossip between members (heartbeats, suspicion, topology consensus). Default `on` |
 * | `GOSSIP_INTERVAL` | how often a member gossips, a duration such as `300ms`. Default the library's (`300ms`) |
 * | `GOSSIP_SUSPECT_AFTER` | a member whose heartbeat has not advanced for this long is suspected (no new grains there), a duration such as `5s`; at least twice the heartbeat interval (`1s`). Default the library's (`5s`) |
 * | `CLIENT_ONLY` | `true`: join the cluster hosting no kinds (no `REMOTE_PORT`); calls go to the members listed. Default `false` |
 * | `REMOTE_TLS_CA` | mutual TLS between members (`remote.tls`): path of the cluster CA certificate (PEM). All three `REMOTE_TLS_*` or none; the same CA on every member. Default none (plaintext) |
 * | `REMOTE_TLS_CERT` | with TLS: path of this member's certificate (PEM), signed by the cluster CA, usable as TLS server and client |
 * | `REMOTE_TLS_KEY` | with TLS: path of this member's private key (PEM, unencrypted). The three files are re-read while the member runs: replace them to rotate certificates |
 *
 * A member's id is its advertised address (`ADVERTISED_HOST:REMOTE_PORT`), which is also how
 * the others know it: so every hosting member must find its own advertised address in
 * `STATIC_MEMBERS` (one list, the same for every member). This is stricter than
 * `StaticProvider`, and catches the classic mistake of listing `localhost:4001` for a member
 * that advertises `127.0.0.1:4001` (the members would never learn each other).
 *
 * With `IDENTITY_LOOKUP=redis` the members place grains through `RedisIdentityLookup` (claim
 * first, member leases, `ctx.epoch` a fencing token across members), and the hosting members
 * keep the ledger and the transfer journal in the same Redis (`RedisLedgerService`,
 * `RedisTransferJournal`), so an account activated again on another member finds its balance.
 * The `REDIS_*` variables are refused unless `IDENTITY_LOOKUP=redis`.
 */
export interface BankConfig {
  /** The HTTP port to listen on. */
  readonly httpPort: number;
  /** The cluster's name. */
  readonly clusterName: string;
  /** How this process takes part in the cluster. */
  readonly cluster: EmbeddedConfig | MemberConfig | ClientOnlyConfig;
}

/** One member, in memory, no network: every grain lives in this process. */
export interface EmbeddedConfig {
  readonly mode: 'embedded';
}

/** `CLUSTER_PROVIDER=static`: the hosting members' addresses (`host:port`), without duplicates. */
export interface StaticProviderConfig {
  readonly type: 'static';
  readonly members: readonly string[];
}

/** `CLUSTER_PROVIDER=consul`: the Consul agent members register with and watch. */
export interface ConsulProviderConfig {
  readonly type: 'consul';
  /** `CONSUL_URL`. */
  readonly url: string;
  /** `CONSUL_TOKEN`, when set (a secret: never log it). */
  readonly token?: string;
}

/** Where the members learn who is in the cluster. */
export type ProviderConfig = StaticProviderConfig | ConsulProviderConfig;

/** `IDENTITY_LOOKUP=redis`: the Redis server of the lookup (and of the ledger and the journal). */
export interface RedisConfig {
  /** `REDIS_URL`, as given (it may hold a password: never log it). */
  readonly url: string;
  /** `REDIS_KEY_PREFIX`: every key starts with the hash tag `{keyPrefix:clusterName}`. */
  readonly keyPrefix: string;
  /** `REDIS_LEASE`: the member lease timing (`FAST_LEASE` or `SAFE_LEASE`). */
  readonly lease: 'fast' | 'safe';
  /** `REDIS_PLACEMENT`: the lookup's placement. */
  readonly placement: Placement;
}

/** `GOSSIP`, `GOSSIP_INTERVAL`, `GOSSIP_SUSPECT_AFTER`: what differs from the library's gossip defaults. */
export interface GossipConfig {
  readonly enabled: boolean;
  readonly interval?: Duration;
  readonly suspectAfter?: Duration;
}

/** What every member of a cluster of several processes is configured with. */
export type ClusterModeConfig =
  /** `IDENTITY_LOOKUP=hash`: rendezvous hashing over the members hosting the kind; stores in memory, per process. */
  | { readonly provider: ProviderConfig; readonly identityLookup: 'hash' }
  /** `IDENTITY_LOOKUP=redis`: claims and leases in Redis; the ledger and the journal in Redis too. */
  | { readonly provider: ProviderConfig; readonly identityLookup: 'redis'; readonly redis: RedisConfig };

/** `REMOTE_TLS_CA`, `REMOTE_TLS_CERT`, `REMOTE_TLS_KEY`: mutual TLS between members, from PEM files. */
export interface TlsFilesConfig {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A member that hosts the bank's kinds and serves them to the others on `port`. */
export type MemberConfig = ClusterModeConfig & {
  readonly mode: 'member';
  readonly gossip: GossipConfig;
  readonly remote: { readonly host: string; readonly port: number; readonly advertisedHost: string };
  /** Set when the `REMOTE_TLS_*` variables are. */
  readonly tls?: TlsFilesConfig;
};

/** A member that hosts no kinds and serves nothing: its controllers call the grains of the others. */
export type ClientOnlyConfig = ClusterModeConfig & {
  readonly mode: 'client';
  readonly gossip: GossipConfig;
  /** Set when the `REMOTE_TLS_*` variables are. */
  readonly tls?: TlsFilesConfig;
};

/** A configuration problem: `variable` is the environment variable at fault; the message says what is allowed. */
export class BankConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'BankConfigError';
  }
}

export const DEFAULT_HTTP_PORT = 3000;
export const DEFAULT_CLUSTER_NAME = 'bank';
/**
 * The default of `REMOTE_HOST`: this machine only. NOTE: a member binding every interface must
 * say where the others reach it (`ADVERTISED_HOST`); advertising 127.0.0.1 from every host of
 * a cluster would have each member reach itself.
 */
export const DEFAULT_REMOTE_HOST = '127.0.0.1';
/** The default of `REDIS_KEY_PREFIX`, the same as `RedisIdentityLookup`'s. */
export const DEFAULT_REDIS_KEY_PREFIX = 'grains';
/** The default of `CONSUL_URL`: a Consul agent on this machine, on Consul's default port. */
export const DEFAULT_CONSUL_URL = 'http://127.0.0.1:8500';

/** The variables that only mean something with `IDENTITY_LOOKUP=redis`. */
const REDIS_VARIABLES = ['REDIS_URL', 'REDIS_KEY_PREFIX', 'REDIS_LEASE', 'REDIS_PLACEMENT'] as const;
/** The variables that only mean something in cluster mode (with `REMOTE_PORT` or `CLIENT_ONLY=true`). */
const CLUSTER_ONLY_VARIABLES = [
  'CLUSTER_PROVIDER',
  'STATIC_MEMBERS',
  'CONSUL_URL',
  'CONSUL_TOKEN',
  'IDENTITY_LOOKUP',
  'REMOTE_HOST',
  'ADVERTISED_HOST',
  ...REDIS_VARIABLES,
  'REMOTE_TLS_CA',
  'REMOTE_TLS_CERT',
  'REMOTE_TLS_KEY',
  'GOSSIP',
  'GOSSIP_INTERVAL',
  'GOSSIP_SUSPECT_AFTER',
] as const;
const PROVIDERS = ['static', 'consul'] as const;
const LOOKUPS = ['hash', 'redis'] as const;
const LEASES = ['fast', 'safe'] as const;
const PLACEMENTS = ['prefer-local', 'random', 'rendezvous', 'least-loaded'] as const;
const DURATION_PATTERN = /^\d+(ms|s|m)$/;

const CLUSTER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// NOTE: no "{", "}" or ":": the prefix goes inside the keys' hash tag `{prefix:cluster}`.
const KEY_PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HOST_NAME_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/**
 * Reads the bank's configuration from `env` (see `BankConfig` for the variables).
 * @throws BankConfigError for the first variable that is invalid, or inconsistent with the others.
 */
export function readBankConfig(env: NodeJS.ProcessEnv = process.env): BankConfig {
  const get = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);

  const httpPort = parsePort(get('HTTP_PORT'), 'HTTP_PORT', 0) ?? DEFAULT_HTTP_PORT;
  const clusterName = get('CLUSTER_NAME') ?? DEFAULT_CLUSTER_NAME;
  if (!CLUSTER_NAME_PATTERN.test(clusterName)) {
    throw new BankConfigError('CLUSTER_NAME', `CLUSTER_NAME must be letters, digits, ".", "_" or "-", starting with a letter or digit; got "${clusterName}".`);
  }
  const remotePort = parsePort(get('REMOTE_PORT'), 'REMOTE_PORT', 1);
  const clientOnly = parseBoolean(get('CLIENT_ONLY'), 'CLIENT_ONLY');

  if (remotePort === undefined && !clientOnly) {
    const stray = CLUSTER_ONLY_VARIABLES.find((name) => get(name) !== undefined);
    if (stray !== undefined) {
      throw new BankConfigError(
        stray,
        `${stray} is set but REMOTE_PORT is not: set REMOTE_PORT to run a cluster member (or CLIENT_ONLY=true for a client-only member), or unset ${stray} for the embedded default.`,
      );
    }
    return { httpPort, clusterName, cluster: { mode: 'embedded' } };
  }

  if (clientOnly) {
    for (const name of ['REMOTE_PORT', 'REMOTE_HOST', 'ADVERTISED_HOST'] as const) {
      if (get(name) !== undefined)
        throw new BankConfigError(name, `${name} must not be set with CLIENT_ONLY=true: a client-only member hosts no grains and serves no remote.`);
    }
  }

  const providerName = get('CLUSTER_PROVIDER');
  if (providerName === undefined)
    throw new BankConfigError(
      'CLUSTER_PROVIDER',
      `CLUSTER_PROVIDER is required ${clientOnly ? 'with CLIENT_ONLY=true' : 'when REMOTE_PORT is set'}; allowed: ${PROVIDERS.join(', ')}.`,
    );
  if (!isOneOf(providerName, PROVIDERS))
    throw new BankConfigError('CLUSTER_PROVIDER', `CLUSTER_PROVIDER must be one of: ${PROVIDERS.join(', ')}; got "${providerName}".`);
  const provider = providerName === 'static' ? readStaticProvider(get) : readConsulProvider(get);

  const lookupName = get('IDENTITY_LOOKUP');
  if (lookupName === undefined)
    throw new BankConfigError(
      'IDENTITY_LOOKUP',
      `IDENTITY_LOOKUP is required ${clientOnly ? 'with CLIENT_ONLY=true' : 'when REMOTE_PORT is set'}; allowed: ${LOOKUPS.join(', ')}.`,
    );
  if (!isOneOf(lookupName, LOOKUPS))
    throw new BankConfigError('IDENTITY_LOOKUP', `IDENTITY_LOOKUP must be one of: ${LOOKUPS.join(', ')}; got "${lookupName}".`);

  let common: ClusterModeConfig;
  if (lookupName === 'redis') {
    common = { provider, identityLookup: 'redis', redis: readRedisConfig(get) };
  } else {
    const stray = REDIS_VARIABLES.find((name) => get(name) !== undefined);
    if (stray !== undefined)
      throw new BankConfigError(
        stray,
        `${stray} is set but IDENTITY_LOOKUP is "${lookupName}": set IDENTITY_LOOKUP=redis to keep placement and the ledger in Redis, or unset ${stray}.`,
      );
    common = { provider, identityLookup: 'hash' };
  }
  const tls = readTlsFiles(get);
  const gossip = readGossip(get);
  if (clientOnly) return { httpPort, clusterName, cluster: { mode: 'client', ...common, gossip, ...(tls !== undefined && { tls }) } };

  const port = remotePort!;
  const host = get('REMOTE_HOST') ?? DEFAULT_REMOTE_HOST;
  if (!isHost(host))
    throw new BankConfigError('REMOTE_HOST', `REMOTE_HOST must be a host name or an IP address to bind (such as 0.0.0.0 or 127.0.0.1); got "${host}".`);
  if ((host === '0.0.0.0' || host === '::') && get('ADVERTISED_HOST') === undefined) {
    throw new BankConfigError(
      'ADVERTISED_HOST',
      `ADVERTISED_HOST is required when REMOTE_HOST is "${host}" (every interface): the address the other members reach this one at, such as its IP or DNS name.`,
    );
  }
  const advertisedHost = get('ADVERTISED_HOST') ?? host;
  if (!isAdvertisableHost(advertisedHost)) {
    const variable = get('ADVERTISED_HOST') === undefined ? 'REMOTE_HOST' : 'ADVERTISED_HOST';
    throw new BankConfigError(
      variable,
      variable === 'ADVERTISED_HOST'
        ? `ADVERTISED_HOST must be a host name or an IPv4 address the other members can reach (not 0.0.0.0); got "${advertisedHost}".`
        : `REMOTE_HOST "${host}" cannot be advertised to the other members (an IPv6 address): set ADVERTISED_HOST to a host name or an IPv4 address they can reach.`,
    );
  }
  if (port === httpPort) throw new BankConfigError('REMOTE_PORT', `REMOTE_PORT and HTTP_PORT must be different ports; both are ${port}.`);
  const self = `${advertisedHost}:${port}`;
  if (provider.type === 'static' && !provider.members.includes(self)) {
    throw new BankConfigError(
      'STATIC_MEMBERS',
      `STATIC_MEMBERS must list this member's own address ${self} (ADVERTISED_HOST:REMOTE_PORT), the address the other members know it by; got "${provider.members.join(',')}".`,
    );
  }
  return { httpPort, clusterName, cluster: { mode: 'member', ...common, gossip, remote: { host, port, advertisedHost }, ...(tls !== undefined && { tls }) } };
}

/**
 * The options `AppModule.register()` takes for `config`. Each call builds a new provider and
 * identity lookup: one per application.
 */
export function bankOptionsOf(config: BankConfig): BankOptions {
  const { cluster, clusterName } = config;
  if (cluster.mode === 'embedded') return { cluster: { clusterName } };
  const redis = cluster.identityLookup === 'redis' ? cluster.redis : undefined;
  const options: Partial<ClusterModuleOptions> = {
    clusterName,
    provider:
      cluster.provider.type === 'static'
        ? new StaticProvider({ members: cluster.provider.members })
        : new ConsulProvider({ url: cluster.provider.url, ...(cluster.provider.token !== undefined && { token: cluster.provider.token }) }),
    identityLookup:
      redis === undefined
        ? new HashIdentityLookup()
        : new RedisIdentityLookup({ url: redis.url, keyPrefix: redis.keyPrefix, lease: redis.lease, placement: redis.placement }),
    gossip: { ...cluster.gossip },
    remote: {
      ...(cluster.mode === 'member' && cluster.remote),
      ...(cluster.tls !== undefined && { tls: { ...cluster.tls } }),
    },
  };
  const clientOnly = cluster.mode === 'client';
  // NOTE: a client-only member keeps no ledger or journal (the hosting members do); it needs
  // Redis for the lookup only.
  if (redis === undefined || clientOnly) return { cluster: options, clientOnly };
  return { cluster: options, clientOnly, redisStores: { url: redis.url, keyPrefix: redis.keyPrefix } };
}

/** The `REMOTE_TLS_*` variables: all three (each an existing file) or none. */
function readTlsFiles(get: (name: string) => string | undefined): TlsFilesConfig | undefined {
  const variables = ['REMOTE_TLS_CA', 'REMOTE_TLS_CERT', 'REMOTE_TLS_KEY'] as const;
  const set = variables.filter((name) => get(name) !== undefined);
  if (set.length === 0) return undefined;
  const missing = variables.find((name) => get(name) === undefined);
  if (missing !== undefined)
    throw new BankConfigError(
      missing,
      `${missing} is required with ${set.join(' and ')}: mutual TLS between members needs all three of REMOTE_TLS_CA, REMOTE_TLS_CERT and REMOTE_TLS_KEY (paths of PEM files), or none.`,
    );
  const [caFile, certFile, keyFile] = variables.map((name) => {
    const path = get(name)!;
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {
      // not there, or not reachable: said below
    }
    if (!isFile) throw new BankConfigError(name, `${name} must be the path of a PEM file; "${path}" is not a file.`);
    return path;
  });
  return { caFile: caFile!, certFile: certFile!, keyFile: keyFile! };
}

/** `STATIC_MEMBERS`, for `CLUSTER_PROVIDER=static` (the `CONSUL_*` variables are refused then). */
function readStaticProvider(get: (name: string) => string | undefined): StaticProviderConfig {
  const stray = (['CONSUL_URL', 'CONSUL_TOKEN'] as const).find((name) => get(name) !== undefined);
  if (stray !== undefined)
    throw new BankConfigError(stray, `${stray} is set but CLUSTER_PROVIDER is "static": set CLUSTER_PROVIDER=consul to use Consul, or unset ${stray}.`);
  const listed = get('STATIC_MEMBERS');
  if (listed === undefined)
    throw new BankConfigError(
      'STATIC_MEMBERS',
      'STATIC_MEMBERS is required with CLUSTER_PROVIDER=static: the hosting members\' addresses, "host:port,host:port,...".',
    );
  return { type: 'static', members: parseMembers(listed) };
}

/** `CONSUL_URL` and `CONSUL_TOKEN`, for `CLUSTER_PROVIDER=consul` (`STATIC_MEMBERS` is refused then: Consul is the membership). */
function readConsulProvider(get: (name: string) => string | undefined): ConsulProviderConfig {
  if (get('STATIC_MEMBERS') !== undefined)
    throw new BankConfigError(
      'STATIC_MEMBERS',
      'STATIC_MEMBERS is set but CLUSTER_PROVIDER is "consul": with Consul the members find each other there; unset STATIC_MEMBERS (or set CLUSTER_PROVIDER=static).',
    );
  const url = get('CONSUL_URL') ?? DEFAULT_CONSUL_URL;
  if (!isHttpUrl(url))
    throw new BankConfigError(
      'CONSUL_URL',
      `CONSUL_URL must be an http:// or https:// URL with a host, such as ${DEFAULT_CONSUL_URL}; got "${redactPassword(url)}".`,
    );
  const token = get('CONSUL_TOKEN');
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token))
    throw new BankConfigError('CONSUL_TOKEN', 'CONSUL_TOKEN must be printable ASCII without spaces (a Consul ACL secret).');
  return token === undefined ? { type: 'consul', url } : { type: 'consul', url, token };
}

function isHttpUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.search === '' && url.hash === '';
}

/** `REDIS_URL`, `REDIS_KEY_PREFIX` and `REDIS_LEASE`, for `IDENTITY_LOOKUP=redis`. */
function readRedisConfig(get: (name: string) => string | undefined): RedisConfig {
  const url = get('REDIS_URL');
  if (url === undefined)
    throw new BankConfigError('REDIS_URL', "REDIS_URL is required with IDENTITY_LOOKUP=redis: the Redis server's URL, such as redis://127.0.0.1:6379.");
  if (!isRedisUrl(url)) {
    throw new BankConfigError(
      'REDIS_URL',
      `REDIS_URL must be a redis:// or rediss:// URL with a host, such as redis://127.0.0.1:6379 or rediss://user:password@host:6380/0; got "${redactPassword(url)}".`,
    );
  }
  const keyPrefix = get('REDIS_KEY_PREFIX') ?? DEFAULT_REDIS_KEY_PREFIX;
  if (!KEY_PREFIX_PATTERN.test(keyPrefix)) {
    throw new BankConfigError(
      'REDIS_KEY_PREFIX',
      `REDIS_KEY_PREFIX must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit; got "${keyPrefix}".`,
    );
  }
  const lease = get('REDIS_LEASE') ?? 'fast';
  if (!isOneOf(lease, LEASES)) throw new BankConfigError('REDIS_LEASE', `REDIS_LEASE must be one of: ${LEASES.join(', ')}; got "${lease}".`);
  const placement = get('REDIS_PLACEMENT') ?? 'prefer-local';
  if (!isOneOf(placement, PLACEMENTS))
    throw new BankConfigError('REDIS_PLACEMENT', `REDIS_PLACEMENT must be one of: ${PLACEMENTS.join(', ')}; got "${placement}".`);
  return { url, keyPrefix, lease, placement };
}

/** `GOSSIP`, `GOSSIP_INTERVAL`, `GOSSIP_SUSPECT_AFTER` (the library checks how they fit together when the cluster starts). */
function readGossip(get: (name: string) => string | undefined): GossipConfig {
  const enabled = get('GOSSIP') ?? 'on';
  if (enabled !== 'on' && enabled !== 'off') throw new BankConfigError('GOSSIP', `GOSSIP must be on or off; got "${enabled}".`);
  const duration = (name: 'GOSSIP_INTERVAL' | 'GOSSIP_SUSPECT_AFTER'): Duration | undefined => {
    const value = get(name);
    if (value === undefined) return undefined;
    if (!DURATION_PATTERN.test(value) || /^0+[a-z]/.test(value))
      throw new BankConfigError(name, `${name} must be a positive duration such as 300ms, 5s or 1m; got "${value}".`);
    return value as Duration;
  };
  const interval = duration('GOSSIP_INTERVAL');
  const suspectAfter = duration('GOSSIP_SUSPECT_AFTER');
  return { enabled: enabled === 'on', ...(interval !== undefined && { interval }), ...(suspectAfter !== undefined && { suspectAfter }) };
}

/** `redis://` or `rediss://`, a host, an optional port and database number, nothing else. */
function isRedisUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (
    (url.protocol === 'redis:' || url.protocol === 'rediss:') &&
    url.hostname !== '' &&
    /^(\/\d{0,2})?$/.test(url.pathname) &&
    url.search === '' &&
    url.hash === ''
  );
}

/**
 * `value` fit for an error message: the user info replaced by `***` (the user name kept when
 * a password follows it), and everything after a `?` or `#` too (ioredis reads a password
 * from the query). The value is not a valid URL here, so it is not parsed as one: everything
 * from the scheme to the LAST `@` counts as user info, so a password holding an unencoded
 * `/`, `@`, `#`, `?` or `:` is hidden whole (at worst, more than the user info is).
 */
function redactPassword(value: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(value)?.[0] ?? '';
  let rest = value.slice(scheme.length);
  let userinfo = '';
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    const colon = rest.indexOf(':');
    userinfo = `${colon !== -1 && colon < at ? rest.slice(0, colon + 1) : ''}***@`;
    rest = rest.slice(at + 1);
  }
  const tail = rest.search(/[?#]/);
  if (tail !== -1) rest = `${rest.slice(0, tail + 1)}***`;
  return scheme + userinfo + rest;
}

function isOneOf<T extends string>(value: string, allowed: readonly T[]): value is T {
  return (allowed as readonly string[]).includes(value);
}

/** `value` as a port number from `min` to 65535, or undefined when unset. */
function parsePort(value: string | undefined, variable: string, min: 0 | 1): number | undefined {
  if (value === undefined) return undefined;
  const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!(port >= min && port <= 65_535)) throw new BankConfigError(variable, `${variable} must be a port number from ${min} to 65535; got "${value}".`);
  return port;
}

function parseBoolean(value: string | undefined, variable: string): boolean {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new BankConfigError(variable, `${variable} must be "true" or "false"; got "${value}".`);
}

/** `STATIC_MEMBERS`: comma-separated `host:port` (spaces around entries ignored), duplicates dropped. */
function parseMembers(value: string): string[] {
  const members: string[] = [];
  for (const entry of value.split(',').map((e) => e.trim())) {
    const match = /^([^\s:]+):(\d{1,5})$/.exec(entry);
    const port = match === null ? Number.NaN : Number(match[2]);
    if (match === null || !isAdvertisableHost(match[1]!) || !(port >= 1 && port <= 65_535)) {
      throw new BankConfigError(
        'STATIC_MEMBERS',
        `STATIC_MEMBERS must be a comma-separated list of host:port addresses (port 1 to 65535, such as 127.0.0.1:4001,127.0.0.1:4002); "${entry}" is not one.`,
      );
    }
    if (!members.includes(entry)) members.push(entry);
  }
  return members;
}

function isHost(value: string): boolean {
  return isIP(value) !== 0 || HOST_NAME_PATTERN.test(value);
}

/** A host other members can dial, written without ":" (member addresses are `host:port`). */
function isAdvertisableHost(value: string): boolean {
  return value !== '0.0.0.0' && (isIP(value) === 4 || HOST_NAME_PATTERN.test(value));
}
