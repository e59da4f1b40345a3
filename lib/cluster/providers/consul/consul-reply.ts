import type { Member } from '../cluster-provider.js';
import { decodeMeta, joinAddress } from './consul-registration.js';

/**
 * Reading `GET /v1/health/service/<name>` replies. The reply is untrusted JSON: every entry is
 * checked field by field, and one that does not hold a member is skipped with a reason rather
 * than failing the whole list.
 */

/** One service instance of the reply that holds a member. */
export interface ConsulInstance {
  readonly serviceId: string;
  readonly member: Member;
  /** True when every check of the entry (the node's `serfHealth` included) is `passing`. */
  readonly passing: boolean;
  /** `Service.CreateIndex`: the newer of two instances of one member has the higher one. */
  readonly createIndex: number;
}

/** An entry that was skipped, and why. */
export interface SkippedEntry {
  /** `Service.ID` when the entry has one, for logs. */
  readonly serviceId: string;
  readonly reason: string;
}

/** What a reply holds. */
export interface HealthReply {
  readonly instances: readonly ConsulInstance[];
  readonly skipped: readonly SkippedEntry[];
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const isIndex = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** The entries of a reply; undefined when the reply is not a JSON array at all. */
export function readHealthReply(body: unknown): HealthReply | undefined {
  if (!Array.isArray(body)) return undefined;
  const instances: ConsulInstance[] = [];
  const skipped: SkippedEntry[] = [];
  for (const entry of body as unknown[]) {
    const read = readEntry(entry);
    if ('reason' in read) skipped.push(read);
    else instances.push(read);
  }
  return { instances, skipped };
}

function readEntry(entry: unknown): ConsulInstance | SkippedEntry {
  const service = isObject(entry) ? entry['Service'] : undefined;
  const rawId = isObject(service) ? service['ID'] : undefined;
  const serviceId = typeof rawId === 'string' && rawId !== '' ? rawId : '(no Service.ID)';
  const skip = (reason: string): SkippedEntry => ({ serviceId, reason });
  if (!isObject(entry)) return skip('the entry is not an object');
  if (!isObject(service)) return skip('Service is not an object');
  if (typeof rawId !== 'string' || rawId === '') return skip('Service.ID is not a non-empty string');
  const port = service['Port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) return skip('Service.Port is not an integer from 1 to 65535');
  const serviceAddress = service['Address'];
  if (typeof serviceAddress !== 'string') return skip('Service.Address is not a string');
  let host = serviceAddress;
  if (host === '') {
    // NOTE: Consul leaves Service.Address empty when the service was registered without one;
    // clients use the node's address then.
    const node = entry['Node'];
    const nodeAddress = isObject(node) ? node['Address'] : undefined;
    if (typeof nodeAddress !== 'string' || nodeAddress === '') return skip('Service.Address is empty and Node.Address is missing');
    host = nodeAddress;
  }
  const rawMeta = service['Meta'];
  if (rawMeta !== null && rawMeta !== undefined && !isObject(rawMeta)) return skip('Service.Meta is not an object');
  const meta: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of Object.entries(rawMeta ?? {})) {
    if (typeof value !== 'string') return skip(`Service.Meta["${key}"] is not a string`);
    meta[key] = value;
  }
  const decoded = decodeMeta(meta);
  if (typeof decoded === 'string') return skip(decoded);
  const checks = entry['Checks'];
  if (!Array.isArray(checks)) return skip('Checks is not an array');
  if (checks.length === 0) return skip('it has no health checks, so nothing would ever mark it dead');
  let passing = true;
  for (const check of checks as unknown[]) {
    if (!isObject(check) || typeof check['Status'] !== 'string') return skip('a check is not an object with a string Status');
    if (check['Status'] !== 'passing') passing = false;
  }
  const createIndex = service['CreateIndex'];
  if (createIndex !== undefined && !isIndex(createIndex)) return skip('Service.CreateIndex is not a non-negative integer');
  return {
    serviceId: rawId,
    member: { id: decoded.id, incarnation: decoded.incarnation, address: joinAddress(host, port), kinds: decoded.kinds },
    passing,
    createIndex: isIndex(createIndex) ? createIndex : 0,
  };
}

/**
 * The members that count: instances whose checks all pass, one per member id — the newest
 * instance (highest CreateIndex) when a restarted member's old instance is not reaped yet.
 * Sorted by member id.
 */
export function countedMembers(instances: readonly ConsulInstance[]): Member[] {
  const newest = new Map<string, ConsulInstance>();
  for (const instance of instances) {
    if (!instance.passing) continue;
    const seen = newest.get(instance.member.id);
    if (seen === undefined || newer(instance, seen)) newest.set(instance.member.id, instance);
  }
  return [...newest.values()].map((instance) => instance.member).sort(byId);
}

function newer(a: ConsulInstance, b: ConsulInstance): boolean {
  if (a.createIndex !== b.createIndex) return a.createIndex > b.createIndex;
  // NOTE: equal indexes do not happen in Consul; a fixed order keeps the choice stable between polls.
  return a.serviceId > b.serviceId;
}

export const byId = (a: Member, b: Member): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** A string that is equal for two member lists exactly when they hold the same members. */
export function membersSignature(members: readonly Member[]): string {
  return JSON.stringify([...members].sort(byId).map((m) => [m.id, m.incarnation, m.address, m.kinds]));
}
