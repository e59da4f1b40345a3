import { afterEach, describe, expect, it } from 'vitest';
import type { Cluster, GrainContext } from 'nestjs-grains';
import type { HandshakeAck } from '../../lib/remote/wire.js';
import { sleep, startCluster } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';
import { handshake, RawPeer, requestBatch } from '../support/raw-peer.js';

class SlowGrain {
  constructor(readonly ctx: GrainContext) {}
  async work(ms: number): Promise<string> {
    await sleep(ms);
    return this.ctx.identity;
  }
}

/**
 * The wire side of a graceful leave (remote.proto, HandshakeAck.leaving / closing): callers
 * are told first that the member is leaving, then that it has drained; a caller that ends its
 * side then gets an answer to everything it wrote, and the stream ends cleanly.
 */
describe('leaving, on the wire', () => {
  const clusters: Cluster[] = [];
  const peers: RawPeer[] = [];
  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.close();
    await Promise.all(clusters.splice(0).map((c) => c.shutdown()));
  });

  it('answers every request written before the caller heard "closing", and ends the stream only after', { timeout: 20_000 }, async () => {
    const port = await freePort();
    const { cluster } = await startCluster([{ name: 'slow', grainClass: SlowGrain }], { clusterName: 'leave-wire', remote: { host: '127.0.0.1', port } });
    clusters.push(cluster);
    const peer = new RawPeer(`127.0.0.1:${port}`);
    peers.push(peer);
    const hello = await peer.handshake(handshake('leave-wire'));
    expect(hello).toMatchObject({ accepted: true, leaving: false, closing: false });

    // a grain busy for a while, so the member drains for a while
    let id = 0;
    peer.send(requestBatch([{ id: ++id, kind: 'slow', identity: 'busy', method: 'work', args: [300] }]));
    await sleep(50);
    const stopped = cluster.shutdown();
    const acks = () => peer.frames.filter((f): f is { handshakeAck: HandshakeAck } => 'handshakeAck' in f).map((f) => f.handshakeAck);
    await peer.until(() => acks().some((a) => a.leaving), 5_000, 'a "leaving" ack');

    // keep writing (grains it does not host) until told "closing", as a caller that has not heard yet would
    while (!acks().some((a) => a.closing) && peer.status === undefined) {
      peer.send(requestBatch([{ id: ++id, kind: 'slow', identity: `other-${id}`, method: 'work', args: [1] }]));
      await sleep(2);
    }
    expect(acks().some((a) => a.closing)).toBe(true);
    peer.end();
    const status = await peer.ended;
    await stopped;

    const responses = peer.responses();
    const unanswered = Array.from({ length: id }, (_, i) => i + 1).filter((i) => !responses.has(i));
    expect(unanswered).toEqual([]);
    expect(responses.get(1)?.status).toBe(1); // OK: the busy grain's call finished during the drain
    // everything else never ran: answered "not here" (send it elsewhere), not failed
    for (let i = 2; i <= id; i++) expect(responses.get(i)?.status).toBe(3);
    expect(status.code).toBe(0);
  });

  it('tells a caller that connects while it drains that it is leaving', { timeout: 20_000 }, async () => {
    const port = await freePort();
    const { cluster } = await startCluster([{ name: 'slow', grainClass: SlowGrain }], { clusterName: 'leave-late', remote: { host: '127.0.0.1', port } });
    clusters.push(cluster);
    const first = new RawPeer(`127.0.0.1:${port}`);
    peers.push(first);
    await first.handshake(handshake('leave-late'));
    first.send(requestBatch([{ id: 1, kind: 'slow', identity: 'busy', method: 'work', args: [400] }]));
    await sleep(50);
    const stopped = cluster.shutdown();
    await sleep(50);
    const late = new RawPeer(`127.0.0.1:${port}`);
    peers.push(late);
    expect(await late.handshake(handshake('leave-late'))).toMatchObject({ accepted: true, leaving: true });
    late.close();
    first.end();
    await stopped;
  });
});
