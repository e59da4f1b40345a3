import { randomUUID } from 'node:crypto';
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, type GrainContext, HashIdentityLookup, type Member, type MembershipEvent, StaticProvider } from 'nestjs-grains';
import { LocalMember } from '../../lib/cluster/local-member.js';
import { MemberList } from '../../lib/cluster/member-list.js';
import { remotingService } from '../../lib/remote/service-definition.js';
import { decodeFrame, encodeFrame } from '../../lib/remote/wire.js';
import { eventually, RecordingLogger, sleep } from '../support/cluster.js';
import { freePort } from '../support/free-port.js';
import { type InProcessCluster, startMembers } from '../support/in-process-cluster.js';
import { handshake, RawPeer } from '../support/raw-peer.js';

class WhereGrain {
  constructor(readonly ctx: GrainContext) {}
  where(): string {
    return this.ctx.memberId;
  }
}

const member = (id: string, incarnation = 'i1', address = `${id}:1`, kinds: string[] = ['where']): Member => ({ id, incarnation, address, kinds });

describe('MemberList: the provider is the only source of membership', () => {
  const self = () => new LocalMember('c', 'self', new Map());

  it('reports joined, changed and left, and never lists the provider’s entry for this member', () => {
    const list = new MemberList(self(), new RecordingLogger());
    const events: MembershipEvent[] = [];
    list.onChange((e) => events.push(e));
    list.update([member('a'), member('b'), member('self', 'other', 'elsewhere:1')]);
    expect(events.map((e) => `${e.type} ${e.member.id}`)).toEqual(['joined a', 'joined b']);
    events.length = 0;
    list.update([member('a', 'i2'), member('c')]);
    expect(events.map((e) => `${e.type} ${e.member.id}`)).toEqual(['changed a', 'left b', 'joined c']);
    expect(list.all().map((m) => m.id)).toEqual(['self', 'a', 'c']);
    expect(list.size).toBe(3);
  });

  it('is known only once the provider says its list is complete', async () => {
    const list = new MemberList(self(), new RecordingLogger());
    expect(list.known).toBe(false);
    let known = false;
    void list.whenKnown().then(() => (known = true));
    list.update([member('a')], false);
    await sleep(0);
    expect(known).toBe(false);
    list.update([member('a')], true);
    await sleep(0);
    expect(known).toBe(true);
  });

  it('excludes a member from placement once it says, at its listed address and incarnation, that it is leaving', () => {
    const list = new MemberList(self(), new RecordingLogger());
    list.update([member('a'), member('b')]);
    expect(list.markLeaving('a', 'i1', 'not-a:1')).toBe(false); // another address: not that member
    expect(list.markLeaving('a', 'stale', 'a:1')).toBe(false); // another incarnation
    expect(list.markLeaving('ghost', 'i1', 'ghost:1')).toBe(false); // not listed: adds nothing
    expect(list.placeable().map((m) => m.id)).toEqual(['self', 'a', 'b']);
    expect(list.markLeaving('a', 'i1', 'a:1')).toBe(true);
    expect(list.placeable().map((m) => m.id)).toEqual(['self', 'b']);
    expect(list.all().map((m) => m.id)).toEqual(['self', 'a', 'b']); // still a member, serving what it hosts
    // its next incarnation (a restart) is placeable again
    list.update([member('a', 'i2'), member('b')]);
    expect(list.placeable().map((m) => m.id)).toEqual(['self', 'a', 'b']);
    list.leave();
    expect(list.placeable().map((m) => m.id)).toEqual(['a', 'b']);
  });

  it('hands out one notLeaving() array until a member leaves or joins, or this one changes or leaves (lookups key caches on it)', () => {
    const me = self();
    const list = new MemberList(me, new RecordingLogger());
    list.update([member('a'), member('b')]);
    const first = list.notLeaving();
    expect(first.map((m) => m.id)).toEqual(['self', 'a', 'b']);
    expect(list.notLeaving()).toBe(first);
    list.setSuspected('a', 'i1', true); // suspicion keeps a member in the hash list
    expect(list.notLeaving()).toBe(first);
    expect(list.markLeaving('b', 'i1', 'b:1')).toBe(true);
    const second = list.notLeaving();
    expect(second).not.toBe(first);
    expect(second.map((m) => m.id)).toEqual(['self', 'a']);
    list.update([member('a'), member('b'), member('c')]);
    expect(list.notLeaving().map((m) => m.id)).toEqual(['self', 'a', 'c']); // b (same incarnation) is still leaving
    const third = list.notLeaving();
    const incarnation = me.renewIncarnation(); // fenced and rejoined: a new record of this member
    expect(list.notLeaving()).not.toBe(third);
    expect(list.notLeaving()[0]!.incarnation).toBe(incarnation);
    list.leave();
    expect(list.notLeaving().map((m) => m.id)).not.toContain('self');
  });
});

/** A gRPC server at a listed address that answers every handshake as `as`. */
async function impostor(port: number, as: () => Member): Promise<Server> {
  const server = new Server();
  server.addService(remotingService, {
    connect: (stream: ServerDuplexStream<Buffer, Buffer>) => {
      stream.on('data', (chunk: Buffer) => {
        const frame = decodeFrame(chunk);
        if ('handshake' in frame) {
          const m = as();
          stream.write(
            encodeFrame({
              handshakeAck: {
                accepted: true,
                protocol: frame.handshake.maxProtocol,
                member: { memberId: m.id, incarnation: m.incarnation, address: m.address, kinds: [...m.kinds] },
                reason: '',
                leaving: false,
                closing: false,
              },
            }),
          );
        }
      });
      stream.on('error', () => {});
    },
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return server;
}

describe('a forged handshake changes nothing', () => {
  let cluster: InProcessCluster | undefined;
  const servers: Server[] = [];
  const peers: RawPeer[] = [];
  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.close();
    for (const server of servers.splice(0)) server.forceShutdown();
    await cluster?.shutdown();
    cluster = undefined;
  });

  const placements = async (c: InProcessCluster) => {
    const where = c.members[0]!.client<WhereGrain>('where');
    return Promise.all(Array.from({ length: 24 }, (_, i) => where.get(`w${i}`).where()));
  };
  const view = (c: InProcessCluster) => c.members.map((m) => m.members().map((x) => `${x.id}@${x.incarnation}@${x.address}@${x.kinds.join(',')}`));

  it('a caller claiming another member’s id, or a new one, adds and changes no member', async () => {
    cluster = await startMembers([{ kinds: [{ name: 'where', grainClass: WhereGrain }] }, { kinds: [{ name: 'where', grainClass: WhereGrain }] }], 'forged');
    const [a, b] = cluster.members as [NonNullable<InProcessCluster['members'][0]>, NonNullable<InProcessCluster['members'][0]>];
    const before = { view: view(cluster), placed: await placements(cluster) };
    const rogueAddress = `127.0.0.1:${await freePort()}`;
    for (const claim of [
      { memberId: b.memberId, incarnation: randomUUID(), address: rogueAddress, kinds: ['where'] }, // B's id, another address
      { memberId: b.memberId, incarnation: randomUUID(), address: b.remoteAddress, kinds: ['where', 'extra'] }, // B's id and address, new incarnation
      { memberId: a.memberId, incarnation: randomUUID(), address: rogueAddress, kinds: ['where'] }, // the callee's own id
      { memberId: 'newcomer', incarnation: randomUUID(), address: rogueAddress, kinds: ['where'] }, // a member nobody listed
    ]) {
      const peer = new RawPeer(a.remoteAddress);
      peers.push(peer);
      const ack = await peer.handshake(handshake('forged', { member: claim }));
      expect(ack.accepted).toBe(true); // a caller may call; what it says of itself counts for nothing
    }
    await sleep(200);
    expect(view(cluster)).toEqual(before.view);
    expect(await placements(cluster)).toEqual(before.placed);
  });

  it('a listed address answering as another member is not counted, and the real one keeps its place', async () => {
    const rogue = await freePort();
    cluster = await startMembers(
      [
        { kinds: [{ name: 'where', grainClass: WhereGrain }], options: {} },
        { kinds: [{ name: 'where', grainClass: WhereGrain }], options: {} },
      ],
      'impostor',
      { extraAddresses: [`127.0.0.1:${rogue}`], startupGrace: 0 },
    );
    const [a, b] = cluster.members as [NonNullable<InProcessCluster['members'][0]>, NonNullable<InProcessCluster['members'][0]>];
    const before = { view: view(cluster), placed: await placements(cluster) };
    servers.push(await impostor(rogue, () => ({ id: b.memberId, incarnation: randomUUID(), address: `127.0.0.1:${rogue}`, kinds: ['where'] })));
    // the members probe the listed address until it answers; it answers as B
    expect(await eventually(() => cluster!.loggers[0]!.messages('warn').some((w) => w.includes(`answered as member "${b.memberId}"`)), 5_000)).toBe(true);
    expect(view(cluster)).toEqual(before.view);
    expect(await placements(cluster)).toEqual(before.placed);
    expect(a.members().find((m) => m.id === b.memberId)?.address).toBe(b.remoteAddress);
  });

  it('a member that left gracefully and comes back at its address is placed on again (static list)', { timeout: 20_000 }, async () => {
    cluster = await startMembers([{ kinds: [{ name: 'where', grainClass: WhereGrain }] }, { kinds: [{ name: 'where', grainClass: WhereGrain }] }], 'rejoin');
    const [a, b] = cluster.members as [NonNullable<InProcessCluster['members'][0]>, NonNullable<InProcessCluster['members'][0]>];
    const address = a.remoteAddress;
    const port = Number(address.split(':')[1]);
    const onA = async (from: InProcessCluster['members'][0]) => {
      const where = from!.client<WhereGrain>('where');
      const placed = await Promise.all(Array.from({ length: 16 }, (_, i) => where.get(`r${i}`).where()));
      return placed.filter((m) => m === a.memberId).length;
    };
    expect(await onA(b)).toBeGreaterThan(0);
    await a.shutdown();
    expect(await onA(b)).toBe(0); // gone: nothing is placed there
    // back at the same address, a new incarnation
    const again = new Cluster({
      clusterName: 'rejoin',
      logger: new RecordingLogger(),
      provider: new StaticProvider({ members: [address, b.remoteAddress], probeInterval: 50 }),
      identityLookup: new HashIdentityLookup(),
      remote: { host: '127.0.0.1', port },
    });
    again.registerKind({ name: 'where', grainClass: WhereGrain, create: (ctx) => new WhereGrain(ctx) });
    cluster.members[0] = again;
    await again.start();
    await again.whenReady('5s');
    expect(await eventually(() => b.members().find((m) => m.id === again.memberId)?.incarnation === again.incarnation, 5_000)).toBe(true);
    // B places on it again, and both members agree where each grain lives
    const placedByB = await Promise.all(Array.from({ length: 16 }, (_, i) => b.client<WhereGrain>('where').get(`s${i}`).where()));
    const placedByA = await Promise.all(Array.from({ length: 16 }, (_, i) => again.client<WhereGrain>('where').get(`s${i}`).where()));
    expect(placedByB.filter((m) => m === again.memberId).length).toBeGreaterThan(0);
    expect(placedByA).toEqual(placedByB);
  });
});
