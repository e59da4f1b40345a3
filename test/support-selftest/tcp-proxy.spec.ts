import { createServer, type Server, type Socket, connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.js';
import { openRedis, type RedisHandle, redisCommand, RedisTimeoutError, startRedis } from '../support/redis-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP echo server that also records what it received and how many connections it saw. */
class EchoServer {
  connections = 0;
  received = '';
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<EchoServer> {
    const server = createServer();
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    const echo = new EchoServer(server, port);
    server.on('connection', (socket) => {
      echo.connections++;
      echo.sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => echo.sockets.delete(socket));
      socket.on('data', (chunk: Buffer) => {
        echo.received += chunk.toString();
        socket.write(chunk);
      });
    });
    return echo;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A client connection that records what it received and how it ended. */
class Client {
  received = '';
  connected = false;
  closed = false;
  error: NodeJS.ErrnoException | undefined;
  readonly socket: Socket;
  readonly done: Promise<void>;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.on('connect', () => (this.connected = true));
    this.socket.on('data', (chunk: Buffer) => (this.received += chunk.toString()));
    this.socket.on('error', (error) => (this.error = error));
    this.done = new Promise((resolve) => this.socket.on('close', () => resolve()));
    void this.done.then(() => (this.closed = true));
  }

  static async open(port: number): Promise<Client> {
    const client = new Client(port);
    await new Promise<void>((resolve, reject) => {
      client.socket.once('connect', () => resolve());
      client.socket.once('error', reject);
    });
    return client;
  }

  /** Resolves when `text` has been received in full; rejects after the timeout. */
  async waitFor(text: string, timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.received.includes(text)) {
      if (Date.now() > deadline) throw new Error(`did not receive ${JSON.stringify(text)} within ${timeoutMs} ms (got ${JSON.stringify(this.received)})`);
      await sleep(5);
    }
  }

  async roundTrip(text: string, timeoutMs = 2_000): Promise<number> {
    const before = this.received.length;
    const started = performance.now();
    this.socket.write(text);
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < before + text.length) {
      if (Date.now() > deadline) throw new Error(`no echo of ${JSON.stringify(text)} within ${timeoutMs} ms`);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return performance.now() - started;
  }
}

async function until(condition: () => boolean, timeoutMs = 2_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

describe('tcp proxy in front of an echo server', () => {
  let echo: EchoServer;
  let proxy: TcpProxy;
  const clients: Client[] = [];
  const open = async (): Promise<Client> => {
    const c = await Client.open(proxy.port);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    echo = await EchoServer.start();
  });
  afterAll(async () => {
    await echo.close();
  });
  beforeAll(async () => {
    proxy = await startTcpProxy({ port: echo.port });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.socket.destroy();
    proxy.pass();
    proxy.resetCounters();
    echo.received = '';
    echo.connections = 0;
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('pass(): forwards both ways and counts connections and bytes', async () => {
    expect(proxy.host).toBe('127.0.0.1');
    expect(proxy.port).not.toBe(echo.port);
    expect(proxy.target).toEqual({ host: '127.0.0.1', port: echo.port });
    const c = await open();
    await c.roundTrip('hello');
    expect(c.received).toBe('hello');
    await until(() => proxy.counters().bytesServerToClient === 5);
    expect(proxy.counters()).toMatchObject({ accepted: 1, active: 1, bytesClientToServer: 5, bytesServerToClient: 5, droppedServerToClient: 0 });
    expect(proxy.state()).toEqual({ mode: 'pass', delayMs: 0, refusing: false });
  });

  it('blackhole(): connections stay open, nothing moves either way; held bytes flow in order after pass()', async () => {
    const c = await open();
    await c.roundTrip('a');
    proxy.blackhole();
    c.socket.write('b');
    c.socket.write('c');
    const late = await open(); // accepted, but not connected upstream while blackholed
    late.socket.write('x');
    await sleep(250);
    expect(echo.received).toBe('a');
    expect(c.received).toBe('a');
    expect(echo.connections).toBe(1);
    expect(c.closed || late.closed).toBe(false);
    expect(proxy.counters()).toMatchObject({ accepted: 2, active: 2, bytesClientToServer: 1 });

    proxy.pass();
    await c.waitFor('abc');
    await late.waitFor('x');
    expect(c.received).toBe('abc');
    expect(echo.connections).toBe(2);
  });

  it('blackhole() also holds the replies of a server that already answered', async () => {
    const c = await open();
    await c.roundTrip('1');
    proxy.delay(500);
    c.socket.write('2');
    // The echo of '2' is in the proxy, due in 500 ms, when the blackhole starts; it stays
    // held past its due time.
    await until(() => proxy.counters().heldServerToClient === 1, 3_000, 'the echo of 2 held in the proxy');
    proxy.blackhole();
    await sleep(700);
    expect(echo.received).toBe('12');
    expect(c.received).toBe('1');
    expect(proxy.counters().heldServerToClient).toBe(1);
    proxy.pass();
    await c.waitFor('12');
  });

  it('delay(ms): each direction waits ms, and order is kept when the delay changes', async () => {
    const c = await open();
    const fast = await c.roundTrip('f');
    proxy.delay(150);
    expect(proxy.state()).toEqual({ mode: 'delay', delayMs: 150, refusing: false });
    const slow = await c.roundTrip('s');
    expect(slow).toBeGreaterThanOrEqual(295); // 150 ms each way
    expect(slow).toBeLessThan(2_000);
    expect(fast).toBeLessThan(slow);

    // 40 chunks while the delay drops from 200 ms to 0 halfway: none overtakes another.
    proxy.delay(200);
    const chunks = Array.from({ length: 40 }, (_, i) => `<${i}>`);
    for (const [i, chunk] of chunks.entries()) {
      if (i === 20) proxy.pass();
      c.socket.write(chunk);
      await sleep(2);
    }
    const expected = `fs${chunks.join('')}`;
    await c.waitFor(expected, 3_000);
    expect(c.received).toBe(expected);
    expect(echo.received).toBe(expected);
  });

  it('dropReplies(): the server receives, the client gets nothing (dropped bytes are counted)', async () => {
    const c = await open();
    await c.roundTrip('ok');
    proxy.dropReplies();
    c.socket.write('lost');
    await until(() => echo.received === 'oklost', 1_000, 'server received');
    await sleep(150);
    expect(c.received).toBe('ok');
    expect(c.closed).toBe(false);
    await until(() => proxy.counters().droppedServerToClient === 4);
    expect(proxy.counters()).toMatchObject({ bytesClientToServer: 6, bytesServerToClient: 2 });
    // Back to pass: later replies flow again (the dropped ones are gone for good).
    proxy.pass();
    await c.roundTrip('back');
    expect(c.received).toBe('okback');
  });

  it('cut(): current connections are reset, new ones are accepted', async () => {
    const a = await open();
    const b = await open();
    await a.roundTrip('a');
    await b.roundTrip('b');
    expect(proxy.cut()).toBe(2);
    await Promise.all([a.done, b.done]);
    expect(a.error?.code).toBe('ECONNRESET');
    expect(proxy.counters()).toMatchObject({ cut: 2, active: 0 });
    const c = await open();
    await c.roundTrip('again');
    expect(c.received).toBe('again');
  });

  it('refuse(): new connections are destroyed at once, current ones keep working; pass() accepts again', async () => {
    const before = await open();
    await before.roundTrip('1');
    proxy.refuse();
    expect(proxy.state().refusing).toBe(true);
    const refused = new Client(proxy.port);
    clients.push(refused);
    await refused.done;
    expect(refused.received).toBe('');
    expect(echo.connections).toBe(1);
    expect(proxy.counters()).toMatchObject({ refused: 1, accepted: 1 });
    await before.roundTrip('2');
    expect(before.received).toBe('12');

    proxy.pass();
    const after = await open();
    await after.roundTrip('3');
    expect(echo.connections).toBe(2);
  });

  it('resets the client when the target refuses the connection', async () => {
    const deadPort = await freePort();
    const dead = await startTcpProxy({ port: deadPort });
    try {
      const c = new Client(dead.port);
      await c.done;
      expect(c.received).toBe('');
      await until(() => dead.counters().upstreamErrors === 1);
      expect(dead.counters().active).toBe(0);
    } finally {
      await dead.close();
    }
  });

  it('passes a half-close on: the server sees end, the client gets the rest and end', async () => {
    const c = await open();
    c.socket.end('bye');
    await c.done;
    expect(c.received).toBe('bye');
    expect(c.error).toBeUndefined();
    await until(() => proxy.counters().active === 0);
  });

  it('close(): stops listening and ends every connection', async () => {
    const other = await startTcpProxy({ port: echo.port });
    const c = new Client(other.port);
    await until(() => c.connected);
    await c.roundTrip('x');
    await other.close();
    await c.done;
    const late = new Client(other.port);
    await late.done;
    expect(late.error?.code).toBe('ECONNREFUSED');
    await other.close(); // idempotent
  });
});

describe('tcp proxy in front of a real redis-server', () => {
  let redis: RedisHandle;
  let proxy: TcpProxy;
  beforeAll(async () => {
    redis = await startRedis();
    proxy = await startTcpProxy({ port: redis.port });
  });
  afterAll(async () => {
    await proxy?.close();
    await redis?.stop();
  });
  afterEach(() => {
    proxy.pass();
  });

  it('PING through the proxy in each mode', async () => {
    expect(proxy.url).toBe(`redis://127.0.0.1:${proxy.port}`);
    const conn = await openRedis(proxy.port, { timeoutMs: 5_000 });
    try {
      expect(await conn.call('PING')).toBe('PONG');

      proxy.delay(100);
      const t0 = performance.now();
      expect(await conn.call('PING')).toBe('PONG');
      expect(performance.now() - t0).toBeGreaterThanOrEqual(195);

      // Blackhole: the PING is held, answered once the partition heals.
      proxy.blackhole();
      const held = conn.call('PING');
      await sleep(200);
      proxy.pass();
      expect(await held).toBe('PONG');
    } finally {
      conn.disconnect();
    }

    proxy.blackhole();
    await expect(redisCommand(proxy.port, ['PING'], { timeoutMs: 200 })).rejects.toBeInstanceOf(RedisTimeoutError);
    proxy.pass();
  });

  it('dropReplies(): the write is applied but never acknowledged', async () => {
    const conn = await openRedis(proxy.port, { timeoutMs: 300 });
    proxy.dropReplies();
    // NOTE: ioredis' own commandTimeout error (the connection's budget, 300 ms).
    await expect(conn.call('SET', 'applied', 'yes')).rejects.toThrow(/Command timed out/);
    conn.disconnect();
    expect(await redis.command('GET', 'applied')).toBe('yes');
    proxy.pass();
    expect(await redisCommand(proxy.port, ['GET', 'applied'])).toBe('yes');
  });

  it('cut() closes the client connection; a server restart behind the proxy is reachable again', async () => {
    const conn = await openRedis(proxy.port, { timeoutMs: 1_000 });
    expect(await conn.call('PING')).toBe('PONG');
    proxy.cut();
    await expect(conn.call('PING')).rejects.toThrow(/closed|ECONNRESET/);
    conn.disconnect();

    const runId = await redis.runId();
    const before = await openRedis(proxy.port, { timeoutMs: 1_000 });
    expect(await before.call('PING')).toBe('PONG');
    await redis.restart();
    await expect(before.call('PING')).rejects.toThrow();
    before.disconnect();
    const info = String(await redisCommand(proxy.port, ['INFO', 'server']));
    expect(info).toContain('run_id:');
    expect(info).not.toContain(runId);
  });
});
