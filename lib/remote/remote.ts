import type { DeadlineSweeper } from '../actor/deadline-sweeper.js';
import { batchMetrics } from '../observability/batch-metrics.js';
import { Endpoint, type EndpointEvents } from './endpoint.js';
import type { OutboundRequest } from './envelopes.js';
import type { InboundLimits } from './inbound-limits.js';
import { type InboundHandler, RemoteServer } from './remote-server.js';
import type { RemoteCredentials } from './tls.js';
import type { Handshake } from './wire.js';

export interface RemoteSettings {
  /** Serve on host:port; omit for a client-only member. */
  readonly server?: { host: string; port: number };
  readonly maxMessageSize: number;
  readonly maxQueuedPerPeer: number;
  /** What a peer may make this member do, and bytes queued per peer stream (inbound-limits.ts). */
  readonly inboundLimits?: InboundLimits;
  /** Mutual TLS on both sides of every connection; plaintext when undefined. */
  readonly credentials?: RemoteCredentials;
  readonly sweeper: DeadlineSweeper;
  readonly handshake: () => Handshake;
  readonly events: EndpointEvents;
  readonly inbound: InboundHandler;
}

/**
 * A member's remote: its gRPC server (unless client-only) and one endpoint per peer it
 * calls, created on first use.
 */
export class Remote {
  private server: RemoteServer | undefined;
  private readonly endpoints = new Map<string, Endpoint>();
  /** Endpoints of members that left, closing once idle; closed at shutdown whatever they hold. */
  private readonly forgotten = new Set<Endpoint>();
  private closed = false;
  /** Frames written by this member's endpoints: one lookup for an OpenTelemetry SDK, now. */
  private readonly batchMetrics = batchMetrics() ?? null;

  constructor(private readonly settings: RemoteSettings) {}

  /** Start serving; resolves to the bound port, or undefined for a client-only member. */
  async start(): Promise<number | undefined> {
    const { server } = this.settings;
    if (server === undefined) return undefined;
    this.server = new RemoteServer(
      {
        ...server,
        maxMessageSize: this.settings.maxMessageSize,
        maxQueued: this.settings.maxQueuedPerPeer,
        ...(this.settings.inboundLimits !== undefined && { limits: this.settings.inboundLimits }),
        ...(this.settings.credentials !== undefined && { credentials: this.settings.credentials.server }),
      },
      this.settings.inbound,
    );
    return this.server.start();
  }

  send(address: string, request: OutboundRequest): void {
    this.endpoint(address).send(request);
  }

  /** Push gossip to the member at `address` on this member's stream to it; false when it cannot go now. */
  gossip(address: string, bytes: Uint8Array): boolean {
    if (this.closed) return false;
    return this.endpoint(address).gossip(bytes);
  }

  /** Tell the members calling this one what it is now (after its incarnation changed). */
  announce(): void {
    this.server?.announce();
  }

  /** Tell callers (now and later) that this member is leaving: no new grains here. */
  leaving(): void {
    this.server?.leaving();
  }

  /** Tell callers this member has drained, and wait (bounded) for them to end their streams. */
  async close(graceMs?: number): Promise<void> {
    await this.server?.close(graceMs);
  }

  /**
   * The member at `address` left: the next call there opens a new connection, and the old
   * one closes once nothing is in flight on it.
   */
  forget(address: string): void {
    const endpoint = this.endpoints.get(address);
    if (endpoint === undefined) return;
    this.endpoints.delete(address);
    for (const old of this.forgotten) if (old.closed) this.forgotten.delete(old);
    endpoint.closeWhenIdle();
    if (!endpoint.closed) this.forgotten.add(endpoint);
  }

  /** Connect and handshake with `address` now (to learn who is there). */
  probe(address: string): void {
    this.endpoint(address).probe();
  }

  endpoint(address: string): Endpoint {
    let endpoint = this.endpoints.get(address);
    if (endpoint === undefined) {
      endpoint = new Endpoint(address, {
        handshake: this.settings.handshake,
        maxMessageSize: this.settings.maxMessageSize,
        maxQueued: this.settings.maxQueuedPerPeer,
        ...(this.settings.inboundLimits !== undefined && { maxQueuedBytes: this.settings.inboundLimits.maxQueuedBytes }),
        ...(this.settings.credentials !== undefined && { credentials: this.settings.credentials.channel }),
        sweeper: this.settings.sweeper,
        events: this.settings.events,
        batchMetrics: this.batchMetrics,
      });
      if (this.closed) endpoint.close();
      this.endpoints.set(address, endpoint);
    }
    return endpoint;
  }

  /** Stop calling out first, then stop serving (callers of this member get their answers or see the stream end). */
  async shutdown(): Promise<void> {
    this.closed = true;
    for (const endpoint of this.endpoints.values()) endpoint.close();
    for (const endpoint of this.forgotten) endpoint.close();
    this.forgotten.clear();
    await this.server?.shutdown();
  }
}
