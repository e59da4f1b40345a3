/**
 * The key schema (documented in docs/redis-lookup.md). Every key of a cluster starts with
 * the hash tag `{prefix:cluster}`, so all of them live in one Redis Cluster slot.
 */
export class RedisKeys {
  readonly tag: string;
  readonly generation: string;
  readonly leasePrefix: string;
  readonly entryPrefix: string;
  readonly setPrefix: string;
  /** The incarnations that joined and may have left entries behind. */
  readonly incarnations: string;

  constructor(prefix: string, clusterName: string) {
    this.tag = `{${prefix}:${clusterName}}`;
    this.generation = `${this.tag}:gen`;
    this.leasePrefix = `${this.tag}:lease:`;
    this.entryPrefix = `${this.tag}:ci:`;
    this.setPrefix = `${this.tag}:acts:`;
    this.incarnations = `${this.tag}:incarnations`;
  }

  /** A member incarnation's lease: value = the incarnation, with a TTL. */
  lease(incarnation: string): string {
    return this.leasePrefix + incarnation;
  }

  /** One identity's entry: hash {member, incarnation, address, activation, epoch}. */
  entry(name: string): string {
    return this.entryPrefix + name;
  }

  /** The names (`kind/identity`) of an incarnation's entries, for cleanup after it lapses. */
  activations(incarnation: string): string {
    return this.setPrefix + incarnation;
  }
}
