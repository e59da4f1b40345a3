/**
 * A TCP proxy on a free loopback port in front of a target (e.g. between a member and
 * Redis), with faults switchable at run time.
 *
 * API
 *
 *   const proxy = await startTcpProxy({ host?: '127.0.0.1', port }, { port? })
 *   proxy.host ('127.0.0.1')  proxy.port  proxy.url ('redis://127.0.0.1:<port>', handy for Redis)
 *   proxy.target              where new connections go; proxy.retarget({ host?, port })
 *
 *   Forwarding modes (apply to current AND new connections; each also resumes accepting):
 *   proxy.pass()          forward both ways as bytes arrive.
 *   proxy.blackhole()     connections stay open, nothing is forwarded either way; the
 *                         proxy stops reading, so the senders' writes back up in their TCP
 *                         buffers, as in a network partition. New connections are accepted
 *                         and held (the upstream connect waits too). Held bytes (and a held
 *                         FIN) are delivered, in order, when the mode changes — TCP does not
 *                         lose bytes mid-stream; to model a partition that also broke the
 *                         connections, cut() before leaving it.
 *   proxy.delay(ms)       every chunk is delivered `ms` after it arrived, both directions,
 *                         order kept (also when the delay changes).
 *   proxy.dropReplies()   client→server is forwarded; server→client bytes that arrive in
 *                         this mode are read and silently discarded (counted; a FIN still
 *                         passes). The client's reply stream is out of step afterwards:
 *                         cut() before pass() unless that is the test.
 *   Accepting:
 *   proxy.refuse()        new connections are destroyed (RST) at once; current
 *                         connections keep the forwarding mode they have. Any mode call
 *                         above accepts again.
 *   proxy.cut()           destroy (RST) both sides of every current connection; new
 *                         connections are accepted as the mode says. Returns how many.
 *
 *   proxy.state()         { mode, delayMs, refusing }
 *   proxy.counters()      { accepted, refused, cut, active, upstreamErrors,
 *                           bytesClientToServer, bytesServerToClient (forwarded),
 *                           droppedServerToClient, heldClientToServer, heldServerToClient
 *                           (queued now, not yet delivered) }
 *   proxy.resetCounters()
 *   proxy.close()         stop listening, destroy every connection, clear timers.
 *
 * A connection whose upstream connect fails (target down) is destroyed at once (RST), so
 * the client sees the connection reset.
 */
import { createServer, type Server, type Socket, connect } from 'node:net';

export type ProxyMode = 'pass' | 'blackhole' | 'delay' | 'dropReplies';

export interface ProxyTarget {
  host?: string;
  port: number;
}

export interface ProxyCounters {
  /** Connections accepted (and forwarded or held). */
  accepted: number;
  /** Connections destroyed on accept by refuse(). */
  refused: number;
  /** Connections destroyed by cut(). */
  cut: number;
  /** Connections open now. */
  active: number;
  /** Upstream connects that failed (the client side was reset). */
  upstreamErrors: number;
  /** Bytes delivered to the target. */
  bytesClientToServer: number;
  /** Bytes delivered to the client. */
  bytesServerToClient: number;
  /** Server→client bytes discarded by dropReplies(). */
  droppedServerToClient: number;
  /** Bytes queued in the proxy right now, not yet delivered (blackhole, delay). */
  heldClientToServer: number;
  heldServerToClient: number;
}

export interface ProxyState {
  mode: ProxyMode;
  delayMs: number;
  refusing: boolean;
}

interface Item {
  /** null: the sender's FIN, to be passed on with end(). */
  chunk: Buffer | null;
  due: number;
}

/** One direction of a connection: a queue from `source` to `dest`. */
interface Direction {
  name: 'up' | 'down';
  source: Socket;
  dest: Socket | undefined;
  queue: Item[];
  lastDue: number;
  timer: NodeJS.Timeout | undefined;
  ended: boolean;
  /** Waiting for `dest` to drain. */
  blocked: boolean;
}

class Link {
  up: Direction;
  down: Direction | undefined;
  /** The upstream socket, from the start of its connect. */
  server: Socket | undefined;
  connected = false;
  closed = false;

  constructor(readonly client: Socket) {
    this.up = { name: 'up', source: client, dest: undefined, queue: [], lastDue: 0, timer: undefined, ended: false, blocked: false };
  }
}

const HOST = '127.0.0.1';

export class TcpProxy {
  readonly host = HOST;
  private readonly links = new Set<Link>();
  private mode: ProxyMode = 'pass';
  private delayMs = 0;
  private refusing = false;
  private closed = false;
  private stats = TcpProxy.zero();
  private targetHost: string;
  private targetPort: number;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    target: ProxyTarget,
  ) {
    this.targetHost = target.host ?? HOST;
    this.targetPort = target.port;
    server.on('connection', (socket) => this.accept(socket));
  }

  static async start(target: ProxyTarget, options: { port?: number } = {}): Promise<TcpProxy> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, HOST, () => {
        server.off('error', reject);
        const address = server.address();
        if (typeof address === 'object' && address !== null) resolve(address.port);
        else reject(new Error('tcp-proxy: no address'));
      });
    });
    return new TcpProxy(server, port, target);
  }

  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  get target(): { host: string; port: number } {
    return { host: this.targetHost, port: this.targetPort };
  }

  /** New connections go to this target (current ones stay where they are). */
  retarget(target: ProxyTarget): void {
    this.targetHost = target.host ?? HOST;
    this.targetPort = target.port;
  }

  pass(): void {
    this.setMode('pass', 0);
  }

  blackhole(): void {
    this.setMode('blackhole', 0);
  }

  delay(ms: number): void {
    if (!(ms >= 0)) throw new Error(`tcp-proxy: delay must be >= 0, got ${ms}`);
    this.setMode('delay', ms);
  }

  dropReplies(): void {
    this.setMode('dropReplies', 0);
  }

  refuse(): void {
    this.refusing = true;
  }

  /** Destroys both sides of every current connection (RST); returns how many. */
  cut(): number {
    const links = [...this.links];
    for (const link of links) this.destroy(link, true);
    this.stats.cut += links.length;
    return links.length;
  }

  state(): ProxyState {
    return { mode: this.mode, delayMs: this.delayMs, refusing: this.refusing };
  }

  counters(): ProxyCounters {
    let heldUp = 0;
    let heldDown = 0;
    for (const link of this.links) {
      for (const item of link.up.queue) heldUp += item.chunk?.length ?? 0;
      for (const item of link.down?.queue ?? []) heldDown += item.chunk?.length ?? 0;
    }
    return { ...this.stats, active: this.links.size, heldClientToServer: heldUp, heldServerToClient: heldDown };
  }

  resetCounters(): void {
    this.stats = TcpProxy.zero();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const link of [...this.links]) this.destroy(link, false);
    await closing;
  }

  private static zero(): Omit<ProxyCounters, 'active' | 'heldClientToServer' | 'heldServerToClient'> {
    return { accepted: 0, refused: 0, cut: 0, upstreamErrors: 0, bytesClientToServer: 0, bytesServerToClient: 0, droppedServerToClient: 0 };
  }

  private setMode(mode: ProxyMode, delayMs: number): void {
    this.mode = mode;
    this.delayMs = delayMs;
    this.refusing = false;
    for (const link of [...this.links]) {
      if (mode !== 'blackhole' && link.server === undefined) this.connectUpstream(link);
      this.pump(link, link.up);
      if (link.down !== undefined) this.pump(link, link.down);
    }
  }

  private accept(client: Socket): void {
    if (this.closed || this.refusing) {
      if (!this.closed) this.stats.refused++;
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    this.stats.accepted++;
    client.setNoDelay(true);
    const link = new Link(client);
    this.links.add(link);
    client.on('data', (chunk: Buffer) => this.receive(link, link.up, chunk));
    client.on('end', () => this.receive(link, link.up, null));
    client.on('error', () => {});
    client.on('close', (hadError) => this.closed_(link, hadError));
    if (this.mode !== 'blackhole') this.connectUpstream(link);
    this.pump(link, link.up);
  }

  private connectUpstream(link: Link): void {
    const server = connect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true });
    link.server = server;
    server.setNoDelay(true);
    server.once('connect', () => {
      if (link.closed) return;
      link.connected = true;
      link.up.dest = server;
      link.down = { name: 'down', source: server, dest: link.client, queue: [], lastDue: 0, timer: undefined, ended: false, blocked: false };
      const down = link.down;
      server.on('data', (chunk: Buffer) => this.receive(link, down, chunk));
      server.on('end', () => this.receive(link, down, null));
      this.pump(link, link.up);
      this.pump(link, down);
    });
    server.on('error', () => {
      if (!link.connected && !link.closed) this.stats.upstreamErrors++;
    });
    server.on('close', (hadError) => this.closed_(link, hadError || !link.connected));
  }

  /**
   * One side closed. With an error (reset, refused upstream) the other side is reset at
   * once, as a direct connection would be. A clean close (both halves ended) waits for the
   * other side: its FIN is queued behind any held bytes and it closes when its peer ends.
   */
  private closed_(link: Link, hadError: boolean): void {
    if (link.closed) return;
    const bothClosed = link.client.destroyed && (link.server === undefined || link.server.destroyed);
    if (hadError || bothClosed) this.destroy(link, hadError);
  }

  private receive(link: Link, dir: Direction, chunk: Buffer | null): void {
    if (link.closed) return;
    if (dir.name === 'down' && this.mode === 'dropReplies') {
      if (chunk !== null) this.stats.droppedServerToClient += chunk.length;
      else dir.queue.push({ chunk: null, due: performance.now() });
      this.pump(link, dir);
      return;
    }
    const now = performance.now();
    const due = Math.max(now + (this.mode === 'delay' ? this.delayMs : 0), dir.lastDue);
    dir.lastDue = due;
    dir.queue.push({ chunk, due });
    this.pump(link, dir);
  }

  /** Delivers what is due, in order; holds everything in blackhole mode. */
  private pump(link: Link, dir: Direction): void {
    if (link.closed) return;
    if (dir.timer !== undefined) {
      clearTimeout(dir.timer);
      dir.timer = undefined;
    }
    if (this.mode === 'blackhole') {
      dir.source.pause();
      return;
    }
    const dest = dir.dest;
    if (dest === undefined) {
      // Upstream not connected yet: hold (reading stops until it is).
      dir.source.pause();
      return;
    }
    const now = performance.now();
    while (dir.queue.length > 0 && !dir.blocked) {
      const head = dir.queue[0]!;
      if (head.due > now) {
        dir.timer = setTimeout(() => {
          dir.timer = undefined;
          this.pump(link, dir);
        }, head.due - now);
        break;
      }
      dir.queue.shift();
      if (head.chunk === null) {
        dir.ended = true;
        dest.end();
        continue;
      }
      if (dir.name === 'up') this.stats.bytesClientToServer += head.chunk.length;
      else this.stats.bytesServerToClient += head.chunk.length;
      if (!dest.write(head.chunk)) {
        dir.blocked = true;
        dest.once('drain', () => {
          dir.blocked = false;
          this.pump(link, dir);
        });
      }
    }
    if (dir.blocked || dir.ended) dir.source.pause();
    else dir.source.resume();
  }

  private destroy(link: Link, reset: boolean): void {
    if (link.closed) return;
    link.closed = true;
    this.links.delete(link);
    for (const dir of [link.up, link.down]) if (dir?.timer !== undefined) clearTimeout(dir.timer);
    for (const dir of [link.up, link.down]) if (dir !== undefined) dir.queue.length = 0;
    const sockets = [link.client, link.server];
    for (const socket of sockets) {
      if (socket === undefined || socket.destroyed) continue;
      socket.on('error', () => {});
      if (reset && !socket.connecting) socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}

/** Starts a proxy on a free loopback port in front of `target`. */
export function startTcpProxy(target: ProxyTarget, options: { port?: number } = {}): Promise<TcpProxy> {
  return TcpProxy.start(target, options);
}
