import type { GrainClient, GrainContext } from 'nestjs-grains';

/**
 * Test grains hosted by `member.ts`. Every method that takes a `callId` records its
 * execution with one `{"event":"exec", ...}` JSON line on stdout, written synchronously
 * (stdout is a pipe: synchronous on Linux) before the method does anything else, so the
 * parent sees every execution — also those of a process killed right after.
 */

/** Where a reply came from. */
export interface Reply {
  kind: string;
  identity: string;
  member: string;
  incarnation: string;
  activation: string;
  /** Calls served by this activation so far (this one included). */
  count: number;
}

/** What the grains need from the member process they run in. */
export interface GrainHost {
  readonly incarnation: string;
  emit(event: Record<string, unknown>): void;
  counters(): GrainClient<CounterGrain>;
  relays(): GrainClient<RelayGrain>;
}

let host: GrainHost | undefined;

/** Called once by the member process before any grain runs. */
export function setGrainHost(value: GrainHost): void {
  host = value;
}

function theHost(): GrainHost {
  if (host === undefined) throw new Error('setGrainHost() was not called');
  return host;
}

abstract class RecordingGrain {
  protected count = 0;
  constructor(protected readonly ctx: GrainContext) {}

  protected _record(callId: string, method: string): Reply {
    const h = theHost();
    this.count++;
    h.emit({
      event: 'exec',
      callId,
      kind: this.ctx.kind,
      identity: this.ctx.identity,
      method,
      member: this.ctx.memberId,
      incarnation: h.incarnation,
      activation: this.ctx.activationId,
      count: this.count,
    });
    return this._reply();
  }

  protected _reply(): Reply {
    return {
      kind: this.ctx.kind,
      identity: this.ctx.identity,
      member: this.ctx.memberId,
      incarnation: theHost().incarnation,
      activation: this.ctx.activationId,
      count: this.count,
    };
  }
}

/** Kind `counter`: counts its calls. */
export class CounterGrain extends RecordingGrain {
  exec(callId: string): Reply {
    return this._record(callId, 'exec');
  }

  /** Where it lives, without recording an execution. */
  where(): Reply {
    return this._reply();
  }

  fail(callId: string): never {
    this._record(callId, 'fail');
    throw Object.assign(new RangeError(`counter ${this.ctx.identity} refuses`), { code: 'COUNTER_REFUSES' });
  }

  _private(): string {
    return 'never callable';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Kind `slow`: holds its turn for a while. `idem` is registered as idempotent. */
export class SlowGrain extends RecordingGrain {
  async hold(callId: string, ms: number): Promise<Reply> {
    const reply = this._record(callId, 'hold');
    await sleep(ms);
    return reply;
  }

  async idem(callId: string, ms: number): Promise<Reply> {
    const reply = this._record(callId, 'idem');
    await sleep(ms);
    return reply;
  }

  where(): Reply {
    return this._reply();
  }
}

/** Kind `relay`: calls other grains, to drive grain-to-grain calls and cycles across members. */
export class RelayGrain extends RecordingGrain {
  /** Calls `counter/<counterId>.exec(callId)`. */
  async forward(callId: string, counterId: string): Promise<{ relay: Reply; counter: Reply }> {
    const relay = this._record(callId, 'forward');
    const counter = await theHost().counters().get(counterId).exec(callId);
    return { relay, counter };
  }

  /** Calls `relay/<viaId>.back(callId, me)`, which calls me back: A→B→A. */
  async bounce(callId: string, viaId: string): Promise<string> {
    this._record(callId, 'bounce');
    return theHost().relays().get(viaId).back(callId, this.ctx.identity);
  }

  async back(callId: string, originId: string): Promise<string> {
    this._record(callId, 'back');
    return theHost().relays().get(originId).hello(callId);
  }

  hello(callId: string): string {
    this._record(callId, 'hello');
    return 'hello';
  }

  where(): Reply {
    return this._reply();
  }
}
