import { afterEach, describe, expect, it } from 'vitest';
import { gossipSettings } from '../../../lib/cluster/gossip/gossip-options.js';
import { Gossiper } from '../../../lib/cluster/gossip/gossiper.js';
import { encodeGossip } from '../../../lib/cluster/gossip/gossip-wire.js';
import { LocalMember } from '../../../lib/cluster/local-member.js';
import { MemberList } from '../../../lib/cluster/member-list.js';
import type { Member } from '../../../lib/cluster/providers/cluster-provider.js';
import { GrainConfigurationError } from 'nestjs-grains';
import { RecordingLogger } from '../../support/cluster.js';

const b: Member = { id: 'b', incarnation: 'b1', address: '10.0.0.2:1', kinds: ['k'] };
const c: Member = { id: 'c', incarnation: 'c1', address: '10.0.0.3:1', kinds: ['k'] };
const heartbeat = (sequence: number) =>
  encodeGossip({
    states: [
      {
        memberId: 'b',
        incarnation: 'b1',
        after: sequence - 1,
        entries: [
          {
            key: 'grains:heartbeat',
            sequence,
            value: Buffer.from(JSON.stringify({ activations: 0, activationsByKind: {}, mailboxDepth: 0, callsPerSecond: 0 })),
          },
        ],
      },
    ],
    seen: [],
    reply: true,
  });

let gossipers: Gossiper[] = [];
afterEach(() => {
  for (const g of gossipers) g.stop();
  gossipers = [];
});

/** A gossiper of member `a` that lists b and c, with a transport recording pushes. */
function setup(options: Parameters<typeof gossipSettings>[0] = {}) {
  const self = new LocalMember('t', 'a', new Map());
  self.address = '10.0.0.1:1';
  const logger = new RecordingLogger();
  const members = new MemberList(self, logger);
  members.update([b, c]);
  const changes: string[] = [];
  const pushes: string[] = [];
  const gossiper = new Gossiper({
    member: self,
    members,
    settings: gossipSettings({ interval: 20, heartbeatInterval: 20, suspectAfter: 100, ...options }),
    logger,
    load: () => ({ activations: 0, activationsByKind: {}, mailboxDepth: 0, calls: 0 }),
    suspicionChanged: (m, suspected) => {
      members.setSuspected(m.id, m.incarnation, suspected);
      changes.push(`${m.id}:${suspected}`);
    },
  });
  gossipers.push(gossiper);
  gossiper.start({ push: (address) => (pushes.push(address), true) });
  return { gossiper, members, changes, pushes };
}

describe('suspicion', () => {
  it('a dropped connection is cleared only by a new connection to the listed incarnation, not by a relayed heartbeat', () => {
    const { gossiper, members, changes } = setup();
    gossiper.receiveReply(c.address, heartbeat(1));
    gossiper.connectionChanged(b.address, false);
    expect(changes).toEqual(['b:true']);
    expect(members.placeable().map((m) => m.id)).toEqual(['a', 'c']);
    // The hash lookup keeps it: leaving it out would move its grains.
    expect(members.notLeaving().map((m) => m.id)).toEqual(['a', 'b', 'c']);
    // Its last heartbeat, relayed by c: no proof it is alive.
    gossiper.receiveReply(c.address, heartbeat(2));
    expect(gossiper.isSuspected('b')).toBe(true);
    // Another process answering at its address (a restart not yet listed): still suspected.
    gossiper.connectionChanged(b.address, true, 'b2');
    expect(gossiper.isSuspected('b')).toBe(true);
    gossiper.connectionChanged(b.address, true, 'b1');
    expect(changes).toEqual(['b:true', 'b:false']);
    expect(members.placeable().map((m) => m.id)).toEqual(['a', 'b', 'c']);
  });

  it('tries a member suspected for its connection every round, beside the fanout', async () => {
    const { gossiper, pushes } = setup({ fanout: 1 });
    gossiper.connectionChanged(b.address, false);
    pushes.length = 0;
    await new Promise((r) => setTimeout(r, 120));
    const rounds = pushes.filter((p) => p === c.address).length + pushes.filter((p) => p === b.address).length;
    expect(rounds).toBeGreaterThan(0);
    // b every round (it is suspected), c only when the fanout of one picks it.
    expect(pushes.filter((p) => p === b.address).length).toBeGreaterThanOrEqual(pushes.filter((p) => p === c.address).length);
  });

  it('suspects a member whose heartbeat stops once heard, never one never heard, and clears it when its heartbeat advances again', async () => {
    const { gossiper, changes } = setup();
    gossiper.receiveReply(c.address, heartbeat(1));
    await new Promise((r) => setTimeout(r, 250));
    expect(gossiper.isSuspected('b')).toBe(true);
    // c never sent a heartbeat (it does not gossip): never suspected for silence.
    expect(gossiper.isSuspected('c')).toBe(false);
    gossiper.receiveReply(c.address, heartbeat(2));
    expect(gossiper.isSuspected('b')).toBe(false);
    expect(changes).toEqual(['b:true', 'b:false']);
  });

  it('with gossip off there is no suspicion at all', () => {
    const { gossiper, changes } = setup({ enabled: false });
    gossiper.connectionChanged(b.address, false);
    expect(gossiper.isSuspected('b')).toBe(false);
    expect(changes).toEqual([]);
  });

  it('refuses options a member could not live with', () => {
    expect(() => gossipSettings({ interval: '5s' })).toThrow(GrainConfigurationError);
    expect(() => gossipSettings({ maxKeys: 1000, maxValueBytes: 65_536 })).toThrow(/members keep at most/);
    expect(gossipSettings({}).intervalMs).toBe(300);
  });
});
