import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, type GrainContext, HashIdentityLookup, type Pid } from 'nestjs-grains';
import { type InProcessCluster, startMembers } from '../support/in-process-cluster.js';

class WhereGrain {
  static runs = 0;
  constructor(readonly ctx: GrainContext) {}
  where(): string {
    WhereGrain.runs++;
    return this.ctx.memberId;
  }
}

/**
 * Hash placement whose answers the test can bend: `misroute` turns the next answer into a Pid
 * of another member, as a stale actor-cache entry or a lookup racing a move would be.
 */
class MisroutingLookup extends HashIdentityLookup {
  misroute: ((right: Pid) => Pid) | undefined;
  asked = 0;

  override async get(kind: string, identity: string): Promise<Pid> {
    this.asked++;
    const right = await super.get(kind, identity);
    const misroute = this.misroute;
    this.misroute = undefined;
    return misroute === undefined ? right : misroute(right);
  }
}

/**
 * NOT_HERE (the member asked does not host the grain) means the caller's Pid was wrong: the
 * call never ran, and the Pid must leave the actor cache, or every retry finds it again and
 * the call fails after 32 redirects although the grain lives one member away.
 */
describe('NOT_HERE invalidates the cached Pid', () => {
  let cluster: InProcessCluster | undefined;
  afterEach(async () => {
    await cluster?.shutdown();
    cluster = undefined;
    WhereGrain.runs = 0;
  });

  it('sends the call on through a fresh lookup, which finds the member hosting the grain; the wrong one runs nothing', async () => {
    const lookup = new MisroutingLookup();
    const kinds = [{ name: 'where', grainClass: WhereGrain }];
    cluster = await startMembers([{ kinds }, { kinds }, { kinds: [], clientOnly: true, options: { identityLookup: lookup } }]);
    const [first, second, gateway] = cluster.members as [Cluster, Cluster, Cluster];
    const wheres = gateway.client<WhereGrain>('where');
    const hosts = [first, second];
    lookup.misroute = (right) => {
      const wrong = gateway.members().find((m) => m.address !== '' && m.id !== right.memberId)!;
      return { memberId: wrong.id, incarnation: wrong.incarnation, address: wrong.address, id: '' };
    };
    const owner = await wheres.get('w1', { timeout: 2_000 }).where();

    expect(lookup.asked).toBe(2); // the misrouted answer, then the lookup after NOT_HERE
    expect(WhereGrain.runs).toBe(1);
    const wrong = hosts.find((m) => m.memberId !== owner)!;
    expect(wrong.stats().activations).toBe(0); // the member asked first activated nothing

    // the Pid the retry found is the one cached: the next call goes straight there
    expect(await wheres.get('w1').where()).toBe(owner);
    expect(lookup.asked).toBe(2);
  });
});
