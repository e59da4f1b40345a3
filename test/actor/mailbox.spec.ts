import { afterEach, describe, expect, it, vi } from 'vitest';
import { Call } from '../../lib/actor/call.js';
import { now } from '../../lib/actor/clock.js';
import { DeadlineSweeper, SWEEP_INTERVAL_MS } from '../../lib/actor/deadline-sweeper.js';
import { Mailbox, type MailboxHandler } from '../../lib/actor/mailbox.js';
import { turnStorage } from '../../lib/actor/turn.js';

const TIMEOUT_MS = 10_000;
const HANG_AFTER_MS = 10_000;
const PLENTY = 100_000;

interface CallOptions {
  interleaved?: boolean;
  timeoutMs?: number;
}

/** A call whose turn runs `body` (the handler below invokes `call.task`). */
function call(name: string, body: () => unknown = () => name, options: CallOptions = {}): Call {
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
  const created = new Call(
    'kind',
    'id',
    'kind/id',
    name,
    [],
    now() + timeoutMs,
    timeoutMs,
    [],
    () => {},
    () => {},
  );
  created.task = body;
  created.interleaved = options.interleaved ?? false;
  return created;
}

/** A turn that stays open until the test ends it. */
class OpenTurn {
  readonly promise: Promise<string>;
  end!: (value: string) => void;
  fail!: (error: Error) => void;
  constructor() {
    this.promise = new Promise((resolve, reject) => {
      this.end = resolve;
      this.fail = reject;
    });
  }
}

/**
 * A handler in the manner of lib/cluster/activation.ts, reduced to bookkeeping: it runs the
 * call's task, settles the caller with the outcome, rejects a caller whose deadline passed,
 * and records every step as a line.
 */
class RecordingHandler implements MailboxHandler {
  readonly log: string[] = [];
  readonly outcomes = new Map<string, { ok: boolean; value: unknown }>();
  running = 0;
  mostRunning = 0;
  refuse = new Set<string>();

  admit(call: Call): boolean {
    if (!this.refuse.has(call.method)) return true;
    this.log.push(`refused ${call.method}`);
    return false;
  }

  invoke(call: Call): unknown {
    this.log.push(`start ${call.method}`);
    this.running++;
    this.mostRunning = Math.max(this.mostRunning, this.running);
    return call.task!();
  }

  onTurnSettled(call: Call, ok: boolean, value: unknown): void {
    this.running--;
    this.log.push(`end ${call.method}`);
    this.outcomes.set(call.method, { ok, value });
    if (ok) call.resolve(value);
    else call.reject(value);
  }

  onExpired(call: Call, running: boolean): void {
    this.log.push(`expired ${call.method}${running ? ' (running)' : ''}`);
    call.reject(new Error('timeout'));
  }

  onHung(call: Call): void {
    this.log.push(`hung ${call.method}`);
  }
}

/** Let promise callbacks (turn endings) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('Mailbox', () => {
  const sweepers: DeadlineSweeper[] = [];
  afterEach(() => {
    for (const sweeper of sweepers.splice(0)) sweeper.stop();
  });

  function mailbox(options: { maxQueued?: number; hangAfterMs?: number; resumed?: boolean } = {}) {
    const handler = new RecordingHandler();
    const sweeper = new DeadlineSweeper();
    sweepers.push(sweeper);
    const box = new Mailbox(handler, {
      sweeper,
      maxQueued: options.maxQueued ?? PLENTY,
      hangAfterMs: options.hangAfterMs ?? HANG_AFTER_MS,
      asyncContext: true,
    });
    if (options.resumed ?? true) box.resume();
    return { box, handler, sweeper };
  }

  it('starts no turn until resumed, then runs what waited in FIFO order', () => {
    const { box, handler } = mailbox({ resumed: false });
    box.post(call('a'));
    box.post(call('b'));
    expect(handler.log).toEqual([]);
    box.resume();
    expect(handler.log).toEqual(['start a', 'end a', 'start b', 'end b']);
  });

  it('runs one turn at a time and keeps FIFO order', async () => {
    const { box, handler } = mailbox();
    const turns = { a: new OpenTurn(), b: new OpenTurn(), c: new OpenTurn() };
    for (const [name, turn] of Object.entries(turns)) box.post(call(name, () => turn.promise));
    expect(handler.log).toEqual(['start a']);
    turns.b.end('early'); // b's work being ready does not let it start before a ends
    await settle();
    expect(handler.log).toEqual(['start a']);
    turns.a.end('a');
    await settle();
    await settle();
    turns.c.end('c');
    await settle();
    await settle();
    expect(handler.log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(handler.mostRunning).toBe(1);
    expect(box.isIdle).toBe(true);
  });

  it('keeps FIFO order and one turn at a time over thousands of queued calls', async () => {
    const { box, handler } = mailbox();
    const names = Array.from({ length: 3_000 }, (_, i) => `m${i}`);
    for (const name of names) box.post(call(name, async () => name));
    await vi.waitFor(() => expect(box.isIdle).toBe(true));
    expect(handler.log.filter((l) => l.startsWith('start ')).map((l) => l.slice('start '.length))).toEqual(names);
    expect(handler.mostRunning).toBe(1);
  });

  it('runs interleaved calls beside each other but never beside an exclusive turn, and never past it', async () => {
    const { box, handler } = mailbox();
    const r1 = new OpenTurn();
    const r2 = new OpenTurn();
    const x = new OpenTurn();
    box.post(call('r1', () => r1.promise, { interleaved: true }));
    box.post(call('r2', () => r2.promise, { interleaved: true }));
    box.post(call('x', () => x.promise));
    box.post(call('r3', () => 'r3', { interleaved: true }));
    // the exclusive turn waits for the reads; the read behind it waits for it (FIFO)
    expect(handler.log).toEqual(['start r1', 'start r2']);
    r1.end('r1');
    await settle();
    expect(handler.log).toEqual(['start r1', 'start r2', 'end r1']);
    r2.end('r2');
    await settle();
    expect(handler.log).toEqual(['start r1', 'start r2', 'end r1', 'end r2', 'start x']);
    x.end('x');
    await settle();
    expect(handler.log.slice(-3)).toEqual(['end x', 'start r3', 'end r3']);
  });

  it('startNow runs a re-entrant interleaved call at once, even with an exclusive turn waiting', async () => {
    const { box, handler } = mailbox();
    const read = new OpenTurn();
    box.post(call('read', () => read.promise, { interleaved: true }));
    box.post(call('write'));
    box.startNow(call('reentrant', () => 'inner', { interleaved: true }));
    expect(handler.log).toEqual(['start read', 'start reentrant', 'end reentrant']);
    read.end('read');
    await settle();
    expect(handler.log.slice(-3)).toEqual(['end read', 'start write', 'end write']);
  });

  it('refuses a post beyond maxQueued waiting calls; running turns do not count, and force skips the bound', () => {
    const { box } = mailbox({ maxQueued: 2 });
    const running = new OpenTurn();
    const first = call('running', () => running.promise);
    expect(box.post(first)).toBe(true);
    expect(box.post(call('q1'))).toBe(true);
    expect(box.post(call('q2'))).toBe(true);
    const refused = call('q3');
    expect(box.post(refused)).toBe(false);
    expect(refused.settled).toBe(false);
    expect(box.post(call('forced'), true)).toBe(true);
  });

  it('does not count calls that already have their answer (expired, aborted) against maxQueued', () => {
    const { box } = mailbox({ maxQueued: 2 });
    const running = new OpenTurn();
    box.post(call('running', () => running.promise));
    const gone = [call('expired'), call('aborted')];
    for (const c of gone) expect(box.post(c)).toBe(true);
    for (const c of gone) c.reject(new Error('answered elsewhere'));
    // nobody waits any more: a new call is queued, not refused as overload
    expect(box.post(call('fresh'))).toBe(true);
    expect(box.post(call('second'))).toBe(true);
    expect(box.post(call('third'))).toBe(false);
    running.end('done');
  });

  it('settles a turn that throws or rejects with ok false, and goes on with the next', async () => {
    const { box, handler } = mailbox();
    const boom = new Error('boom');
    box.post(
      call('throws', () => {
        throw boom;
      }),
    );
    box.post(
      call('rejects', async () => {
        throw boom;
      }),
    );
    box.post(call('fine', () => 'fine'));
    await vi.waitFor(() => expect(handler.outcomes.size).toBe(3));
    expect(Object.fromEntries(handler.outcomes)).toEqual({
      throws: { ok: false, value: boom },
      rejects: { ok: false, value: boom },
      fine: { ok: true, value: 'fine' },
    });
  });

  it('runs each turn inside its own turn context, across awaits', async () => {
    const { box } = mailbox();
    const seen: unknown[] = [];
    const target = call('ctx', async () => {
      seen.push(turnStorage.getStore());
      await settle();
      seen.push(turnStorage.getStore());
    });
    box.post(target);
    await vi.waitFor(() => expect(seen).toHaveLength(2));
    expect(seen).toEqual([target, target]);
  });

  it('does not run a call the handler does not admit, and goes on with the queue', () => {
    const { box, handler } = mailbox({ resumed: false });
    handler.refuse.add('b');
    for (const name of ['a', 'b', 'c']) box.post(call(name));
    box.resume();
    expect(handler.log).toEqual(['start a', 'end a', 'refused b', 'start c', 'end c']);
  });

  it('expires a waiting call whose deadline passes, which then never runs', async () => {
    const { box, handler } = mailbox();
    const first = new OpenTurn();
    box.post(call('first', () => first.promise));
    const late = call('late', () => 'late', { timeoutMs: 1 });
    box.post(late);
    await vi.waitFor(() => expect(handler.log).toContain('expired late'), { timeout: 1_000, interval: SWEEP_INTERVAL_MS });
    expect(late.settled).toBe(true);
    first.end('first');
    await settle();
    expect(handler.log).toEqual(['start first', 'expired late', 'end first']);
  });

  it('reports a running turn past its deadline as expired, then as hung once it outlives the hang bound', async () => {
    const hangAfterMs = 100;
    const { box, handler } = mailbox({ hangAfterMs });
    const stuck = call('stuck', () => new OpenTurn().promise, { timeoutMs: 5 });
    box.post(stuck);
    await vi.waitFor(() => expect(handler.log).toContain('expired stuck (running)'), { timeout: 1_000, interval: SWEEP_INTERVAL_MS });
    await vi.waitFor(() => expect(handler.log).toContain('hung stuck'), { timeout: 1_000, interval: SWEEP_INTERVAL_MS });
    expect(now()).toBeGreaterThanOrEqual(stuck.deadline + hangAfterMs);
    // reported once each, though the sweeper keeps running while the turn does
    await sleep(5 * SWEEP_INTERVAL_MS);
    expect(handler.log).toEqual(['start stuck', 'expired stuck (running)', 'hung stuck']);
  });

  it('asks to be swept only while it has work', async () => {
    const { box } = mailbox();
    expect(box.sweep(now())).toBe(false);
    const open = new OpenTurn();
    box.post(call('busy', () => open.promise));
    expect(box.sweep(now())).toBe(true);
    open.end('done');
    await settle();
    expect(box.isIdle).toBe(true);
    expect(box.sweep(now())).toBe(false);
  });

  it('after close starts no turn; takePending hands back the calls that never started, minus settled ones', async () => {
    const { box, handler } = mailbox();
    const running = new OpenTurn();
    box.post(call('running', () => running.promise));
    const waiting = call('waiting');
    const answered = call('answered');
    box.post(waiting);
    box.post(answered);
    answered.reject(new Error('answered elsewhere'));

    box.close();
    expect(box.takePending()).toEqual([waiting]);
    expect(box.takePending()).toEqual([]);
    running.end('running');
    await settle();
    expect(handler.log).toEqual(['start running', 'end running']);
    expect(waiting.settled).toBe(false);
    // closed, and no turn left running: nothing left to watch
    expect(box.sweep(now())).toBe(false);
  });

  it('after close still times out the caller of a turn that keeps running, once, then stops watching', async () => {
    const { box, handler } = mailbox({ hangAfterMs: 1 });
    const running = new OpenTurn();
    const stuck = call('stuck', () => running.promise, { timeoutMs: 30 });
    box.post(stuck);
    box.close();
    expect(box.sweep(now())).toBe(true); // its caller's deadline is still ahead
    await sleep(40);
    expect(box.sweep(now())).toBe(false);
    expect(handler.log).toEqual(['start stuck', 'expired stuck (running)']); // no hang report once closed
    expect(stuck.settled).toBe(true);
    expect(box.sweep(now())).toBe(false);
    running.end('late');
    await settle();
  });
});
