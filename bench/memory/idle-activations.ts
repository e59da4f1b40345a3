/**
 * Heap per idle activation, in a process of its own (forked with --expose-gc by
 * `measureIdleActivationHeap`):
 *
 *   node --expose-gc dist/bench/memory/idle-activations.js <grains|map> <count>
 *
 * `grains`: an embedded member (the defaults) activates `count` grains of an empty kind (one
 * no-op method, called once each), and the heap is read once they are idle. `map`: the same
 * `count` instances of the same class in a Map under the same `kind/identity` keys — what an
 * app would keep without the runtime. Each prints one JSON line: heap used after a full GC,
 * minus the same before, per instance. The difference between the two is the runtime's own
 * memory per idle activation.
 */
import { loadRuntime, SilentLogger } from '../support/runtime.js';

/** The empty grain: no state, one method to activate it with. */
export class EmptyGrain {
  touch(): void {}
}

const [mode, countArg] = process.argv.slice(2);
const count = Number(countArg);
if ((mode !== 'grains' && mode !== 'map') || !Number.isInteger(count) || count < 1 || count > 1_000_000) {
  throw new Error('usage: idle-activations.js <grains|map> <count 1..1000000>');
}
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

/** Heap used after full collections, once it stopped shrinking (start-up garbage goes in the first ones). */
async function heapAfterGc(): Promise<number> {
  let last = Infinity;
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc!();
    const used = process.memoryUsage().heapUsed;
    if (used >= last - 1024) return used;
    last = used;
  }
  return last;
}

/** Identities made before the first reading (an app holds them either way). */
const identities = Array.from({ length: count }, (_, i) => `e-${i}`);
let keep: unknown;
let before: number;
let after: number;
if (mode === 'map') {
  before = await heapAfterGc();
  const map = new Map<string, EmptyGrain>();
  for (const identity of identities) map.set(`empty/${identity}`, new EmptyGrain());
  keep = map;
  after = await heapAfterGc();
} else {
  const { Cluster } = await loadRuntime();
  const cluster = new Cluster({ clusterName: 'bench-memory', logger: new SilentLogger() });
  cluster.registerKind({ name: 'empty', grainClass: EmptyGrain, create: () => new EmptyGrain() });
  await cluster.start();
  const client = cluster.client<EmptyGrain>('empty');
  // a warm-up activation, so code paths and lazily made runtime structures exist before the reading
  await client.get('warm-up').touch();
  before = await heapAfterGc();
  for (let from = 0; from < count; from += 1_000) {
    await Promise.all(identities.slice(from, from + 1_000).map((id) => client.get(id).touch()));
  }
  // idle: every call answered; let timers and microtasks settle
  await new Promise((resolve) => setTimeout(resolve, 50));
  after = await heapAfterGc();
  const { activations } = cluster.stats();
  if (activations !== count + 1) throw new Error(`expected ${count + 1} activations, found ${activations}`);
  keep = cluster;
}
process.stdout.write(`${JSON.stringify({ mode, count, bytes: after - before, perInstance: (after - before) / count })}\n`);
// NOTE: both readings must see the same identities alive (else the first one counts them and the second not).
(globalThis as { keep?: unknown }).keep = [keep, identities];
process.exit(0);
