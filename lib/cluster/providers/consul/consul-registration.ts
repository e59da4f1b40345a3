import { GrainConfigurationError } from '../../errors.js';
import type { Member } from '../cluster-provider.js';

/**
 * The Consul registration format of a member: what `PUT /v1/agent/service/register` carries
 * and how a member is read back from `Service.Meta`. One service instance per member
 * incarnation:
 *
 * - `Name` = the service name (the cluster name by default), `ID` = `<name>-<incarnation>`
 * - `Address`/`Port` = the member's advertised `host:port` (an IPv6 host without brackets)
 * - `Meta` = `member-id`, `incarnation`, and the kinds comma-joined in `kinds`, or, when that is
 *   longer than Consul's 512-character value limit, in `kinds-1` … `kinds-<n>` with
 *   `kinds-parts` = n (concatenated in order before splitting on commas)
 * - one TTL check, `CheckID` = `service:<ID>`, registered `passing`.
 */

export const META_MEMBER_ID = 'member-id';
export const META_INCARNATION = 'incarnation';
export const META_KINDS = 'kinds';
export const META_KINDS_PARTS = 'kinds-parts';

/** Consul's limit on one `Meta` value (agent/structs `MetaValueMaxLength`). */
export const META_VALUE_MAX = 512;
/** Consul allows 64 `Meta` pairs; three are taken by member-id, incarnation and kinds-parts. */
const MAX_KINDS_PARTS = 61;

/** A member's service instance in Consul, as this provider registers it. */
export interface ConsulRegistration {
  readonly serviceId: string;
  readonly checkId: string;
  readonly serviceName: string;
  readonly address: string;
  readonly port: number;
  readonly meta: Readonly<Record<string, string>>;
  /** Go duration strings, as Consul parses them. */
  readonly ttl: string;
  readonly deregisterCriticalServiceAfter: string;
  /** The member this registration announces. */
  readonly member: Member;
}

/** A duration in milliseconds as a Go duration string (`"10s"`, `"1m"`, `"333ms"`); never a bare number, which Consul reads as nanoseconds. */
export function goDuration(ms: number): string {
  const whole = Math.max(1, Math.round(ms));
  if (whole % 3_600_000 === 0) return `${whole / 3_600_000}h`;
  if (whole % 60_000 === 0) return `${whole / 60_000}m`;
  if (whole % 1_000 === 0) return `${whole / 1_000}s`;
  return `${whole}ms`;
}

const BRACKETED = /^\[([0-9A-Za-z:.%]+)\]:(\d{1,5})$/;
const PLAIN = /^([^\s:[\]/]+):(\d{1,5})$/;

/** Split an advertised `host:port` (or `[v6]:port`) into Consul's Address and Port. */
export function splitAddress(address: string): { host: string; port: number } {
  const match = BRACKETED.exec(address) ?? PLAIN.exec(address);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new GrainConfigurationError(`ConsulProvider: the member's address "${address}" is not host:port (or [ipv6]:port) with a port from 1 to 65535.`);
  }
  const host = match[1]!;
  if (host === '0.0.0.0' || host === '::' || /^[0:]+$/.test(host)) {
    throw new GrainConfigurationError(
      `ConsulProvider: the member advertises "${address}", which other members cannot dial (Consul refuses 0.0.0.0 and :: as a service address). Advertise the member's reachable host.`,
    );
  }
  return { host, port };
}

/** Consul's Address and Port as the `host:port` members dial (IPv6 hosts bracketed again). */
export function joinAddress(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The `Meta` of a member: its id, incarnation and kinds (split over several keys when long). */
export function encodeMeta(member: Member): Record<string, string> {
  if (member.id.length > META_VALUE_MAX) {
    throw new GrainConfigurationError(
      `ConsulProvider: the member id is ${member.id.length} characters long; Consul keeps at most ${META_VALUE_MAX} per Meta value. Configure a shorter memberId.`,
    );
  }
  const meta: Record<string, string> = { [META_MEMBER_ID]: member.id, [META_INCARNATION]: member.incarnation };
  const kinds = member.kinds.join(',');
  if (kinds.length <= META_VALUE_MAX) {
    meta[META_KINDS] = kinds;
    return meta;
  }
  const parts = Math.ceil(kinds.length / META_VALUE_MAX);
  if (parts > MAX_KINDS_PARTS) {
    throw new GrainConfigurationError(
      `ConsulProvider: the names of the ${member.kinds.length} kinds this member hosts take ${kinds.length} characters; Consul's Meta holds at most ${MAX_KINDS_PARTS * META_VALUE_MAX}. Use shorter kind names or host fewer kinds per member.`,
    );
  }
  meta[META_KINDS_PARTS] = String(parts);
  for (let i = 0; i < parts; i++) meta[`${META_KINDS}-${i + 1}`] = kinds.slice(i * META_VALUE_MAX, (i + 1) * META_VALUE_MAX);
  return meta;
}

/** A member's id, incarnation and kinds from an instance's `Meta`, or why they cannot be read. */
export function decodeMeta(meta: Readonly<Record<string, string>>): { id: string; incarnation: string; kinds: string[] } | string {
  const id = meta[META_MEMBER_ID];
  const incarnation = meta[META_INCARNATION];
  if (id === undefined || id === '') return `its Meta has no "${META_MEMBER_ID}" (not registered by a nestjs-grains member?)`;
  if (incarnation === undefined || incarnation === '') return `its Meta has no "${META_INCARNATION}"`;
  let joined = meta[META_KINDS];
  if (joined === undefined) {
    const parts = Number(meta[META_KINDS_PARTS]);
    if (!Number.isInteger(parts) || parts < 1 || parts > MAX_KINDS_PARTS) return `its Meta has neither "${META_KINDS}" nor a valid "${META_KINDS_PARTS}"`;
    joined = '';
    for (let i = 1; i <= parts; i++) {
      const part = meta[`${META_KINDS}-${i}`];
      if (part === undefined) return `its Meta lacks "${META_KINDS}-${i}" of ${parts} parts`;
      joined += part;
    }
  }
  const kinds = joined === '' ? [] : joined.split(',');
  if (kinds.some((kind) => kind === '')) return `its Meta "${META_KINDS}" has an empty kind name`;
  return { id, incarnation, kinds };
}

/** What to register for `member` under `serviceName`. */
export function registrationOf(member: Member, serviceName: string, ttlMs: number, deregisterCriticalAfterMs: number): ConsulRegistration {
  const { host, port } = splitAddress(member.address);
  const serviceId = `${serviceName}-${member.incarnation}`;
  return {
    serviceId,
    checkId: `service:${serviceId}`,
    serviceName,
    address: host,
    port,
    meta: encodeMeta(member),
    ttl: goDuration(ttlMs),
    deregisterCriticalServiceAfter: goDuration(deregisterCriticalAfterMs),
    member,
  };
}
