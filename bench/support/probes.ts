/**
 * Micro-measurements shared by scenarios. None of them loads the runtime: the ones that
 * need AsyncLocalStorage create their own instance, which is what matters on Node 20
 * (any enabled AsyncLocalStorage turns promise hooks on for the whole process).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import type { Summary } from './stats.js';
import { nsPerOp } from './timing.js';

interface FakeHandler {
  readonly k: number;
}
interface FakeCall {
  readonly v: number;
}

const HANDLER: FakeHandler = { k: 1 };
const CALLS: FakeCall[] = Array.from({ length: 1024 }, (_, i) => ({ v: i }));

/** What a mailbox runs inside the turn context (mirrors `runTurn(handler, call)`). */
function turnBody(handler: FakeHandler, call: FakeCall): number {
  return handler.k + call.v;
}

/** ns per direct call of the turn body: the reference for `als-run`. */
export function directCall(): Promise<Summary> {
  return nsPerOp(
    (n) => {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += turnBody(HANDLER, CALLS[i & 1023]!);
      return acc;
    },
    { iterations: 2_000_000 },
  );
}

/**
 * ns per `als.run(store, fn, a, b)` with a new store each time (as a mailbox does per turn).
 * Calling this enables AsyncLocalStorage (and so promise hooks) for the process: runtime worker only.
 */
export function alsRun(): Promise<Summary> {
  const als = new AsyncLocalStorage<FakeCall>();
  return nsPerOp(
    (n) => {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const call = CALLS[i & 1023]!;
        acc += als.run(call, turnBody, HANDLER, call);
      }
      return acc;
    },
    { iterations: 1_000_000 },
  );
}

async function addOne(x: number): Promise<number> {
  return x + 1;
}

/** ns per `await asyncFn()` in one sequential loop: the unit cost behind every plain call. */
export function awaitAsync(): Promise<Summary> {
  return nsPerOp(
    async (n) => {
      let s = 0;
      for (let i = 0; i < n; i++) s = await addOne(s);
      return s;
    },
    { iterations: 500_000 },
  );
}

/** ns per `performance.now()`: every grain call reads the monotonic clock once for its deadline. */
export function perfNow(): Promise<Summary> {
  return nsPerOp(
    (n) => {
      let acc = 0;
      for (let i = 0; i < n; i++) acc += performance.now();
      return acc;
    },
    { iterations: 1_000_000 },
  );
}

function noop(): void {}

/** ns per `clearTimeout(setTimeout(...))`: what a per-call deadline timer would cost instead of the sweeper. */
export function timerArmClear(): Promise<Summary> {
  return nsPerOp(
    (n) => {
      let last: NodeJS.Timeout | undefined;
      for (let i = 0; i < n; i++) {
        last = setTimeout(noop, 10_000);
        clearTimeout(last);
      }
      return last;
    },
    { iterations: 200_000 },
  );
}
