import type { NetworkInterfaceInfo } from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Cluster, GrainConfigurationError } from 'nestjs-grains';
import { hostPort, type NetworkInterfaces, serverAddressOf } from '../../lib/cluster/remoting/cluster-remoting.js';
import { RecordingLogger } from '../support/cluster.js';

const LOOPBACK: NetworkInterfaces = {
  lo: [
    { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
    {
      address: '::1',
      netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      family: 'IPv6',
      mac: '00:00:00:00:00:00',
      internal: true,
      cidr: '::1/128',
      scopeid: 0,
    },
  ],
};
const ipv4 = (address: string): NetworkInterfaceInfo => ({
  address,
  netmask: '255.255.255.0',
  family: 'IPv4',
  mac: '02:00:00:00:00:01',
  internal: false,
  cidr: `${address}/24`,
});
const ipv6 = (address: string): NetworkInterfaceInfo => ({
  address,
  netmask: 'ffff:ffff:ffff:ffff::',
  family: 'IPv6',
  mac: '02:00:00:00:00:01',
  internal: false,
  cidr: `${address}/64`,
  scopeid: 0,
});
/** A host with a global IPv6 address first, a link-local IPv4 one, then its routable IPv4 address. */
const HOST: NetworkInterfaces = { ...LOOPBACK, wlan0: [ipv6('fd00::2'), ipv4('169.254.10.1')], eth0: [ipv4('10.1.2.3')], eth1: [ipv4('10.9.9.9')] };

/** What the member sees of the host in the Cluster tests below (node:os is mocked for them). */
const os = vi.hoisted(() => ({ interfaces: {} as NodeJS.Dict<unknown[]> }));
vi.mock('node:os', async (importOriginal) => ({ ...(await importOriginal<typeof import('node:os')>()), networkInterfaces: () => os.interfaces }));

describe('serverAddressOf: what a serving member advertises', () => {
  const at = (options: Parameters<typeof serverAddressOf>[0], interfaces: NetworkInterfaces = HOST) => {
    const logged: string[] = [];
    const address = serverAddressOf(options, { interfaces: () => interfaces, log: (message) => logged.push(message) });
    return { address, logged };
  };

  it('binding every interface without advertisedHost: advertises the first non-internal IPv4 address, and says so once', () => {
    for (const host of [undefined, '0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0']) {
      const { address, logged } = at({ ...(host !== undefined && { host }), port: 4001 });
      expect(address).toEqual({ host: host ?? '0.0.0.0', port: 4001, advertisedHost: '10.1.2.3' });
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatch(/reach this member at 10\.1\.2\.3 \(interface eth0\)\. Set remote\.advertisedHost/);
    }
  });

  it('prefers a physical interface to a virtual bridge listed first, and a global IPv6 address to none', () => {
    const bridged: NetworkInterfaces = { ...LOOPBACK, docker0: [ipv4('172.17.0.1')], 'br-1a2b': [ipv4('172.18.0.1')], eth0: [ipv4('10.1.2.3')] };
    expect(at({ port: 4001 }, bridged).address?.advertisedHost).toBe('10.1.2.3');
    expect(at({ port: 4001 }, { ...LOOPBACK, docker0: [ipv4('172.17.0.1')] }).address?.advertisedHost).toBe('172.17.0.1');
    const v6only: NetworkInterfaces = { ...LOOPBACK, eth0: [ipv6('fe80::1'), ipv6('2001:db8::7')] };
    expect(at({ host: '::', port: 4001 }, v6only).address?.advertisedHost).toBe('2001:db8::7');
    expect(hostPort('2001:db8::7', 4001)).toBe('[2001:db8::7]:4001');
    expect(hostPort('10.1.2.3', 4001)).toBe('10.1.2.3:4001');
  });

  it('binding every interface on a host with no such address: a GrainConfigurationError naming remote.advertisedHost, never 127.0.0.1', () => {
    for (const interfaces of [LOOPBACK, {}, { ...LOOPBACK, eth0: [ipv6('fd00::2'), ipv4('169.254.1.1')] }]) {
      expect(() => at({ host: '0.0.0.0', port: 4001 }, interfaces)).toThrow(GrainConfigurationError);
      expect(() => at({ host: '0.0.0.0', port: 4001 }, interfaces)).toThrow(
        /remote\.host "0\.0\.0\.0" listens on every interface, but this host has no address but loopback .* Set remote\.advertisedHost/,
      );
    }
  });

  it('keeps what is given: advertisedHost, or a specific host (loopback included), without looking at the interfaces', () => {
    const none = () => {
      throw new Error('the interfaces were read');
    };
    const cases: Array<[Parameters<typeof serverAddressOf>[0], string]> = [
      [{ host: '0.0.0.0', port: 4001, advertisedHost: 'bank-1.internal' }, 'bank-1.internal'],
      [{ port: 4001, advertisedHost: '10.0.0.7' }, '10.0.0.7'],
      [{ host: '127.0.0.1', port: 4001 }, '127.0.0.1'],
      [{ host: 'localhost', port: 4001 }, 'localhost'],
      [{ host: '10.1.2.3', port: 0 }, '10.1.2.3'],
    ];
    for (const [options, advertised] of cases) {
      const logged: string[] = [];
      expect(serverAddressOf(options, { interfaces: none, log: (m) => logged.push(m) })?.advertisedHost).toBe(advertised);
      expect(logged).toEqual([]);
    }
  });

  it('a client-only member (no port) serves nothing; a bad port is refused', () => {
    expect(serverAddressOf(undefined)).toBeUndefined();
    expect(serverAddressOf({ host: '0.0.0.0' }, { interfaces: () => LOOPBACK })).toBeUndefined();
    expect(() => at({ port: 70_000 })).toThrow(/remote\.port 70000 is not a port number/);
  });
});

describe('a Cluster binding 0.0.0.0 without advertisedHost', () => {
  afterEach(() => {
    os.interfaces = {};
  });

  it("is known by the host's address (its member id), logged once at construction", () => {
    os.interfaces = HOST;
    const logger = new RecordingLogger();
    const cluster = new Cluster({ clusterName: 'addr', logger, remote: { host: '0.0.0.0', port: 4001 } });
    expect(cluster.memberId).toBe('10.1.2.3:4001');
    expect(logger.messages('log').filter((m) => m.includes('listens on every interface'))).toHaveLength(1);
  });

  it('fails to construct on a host with nothing but loopback', () => {
    os.interfaces = LOOPBACK;
    expect(() => new Cluster({ clusterName: 'addr', logger: new RecordingLogger(), remote: { port: 4001 } })).toThrow(/Set remote\.advertisedHost/);
    // binding loopback itself advertises loopback, as before
    expect(new Cluster({ clusterName: 'addr', logger: new RecordingLogger(), remote: { host: '127.0.0.1', port: 4001 } }).memberId).toBe('127.0.0.1:4001');
  });
});
