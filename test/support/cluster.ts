import { Cluster, type ClusterLogger, type ClusterOptions, type GrainClass, type GrainContext } from 'nestjs-grains';

/** A logger that keeps what it was told, for assertions. */
export class RecordingLogger implements ClusterLogger {
  readonly lines: Array<{ level: 'log' | 'warn' | 'error'; message: string }> = [];
  log(message: string): void {
    this.lines.push({ level: 'log', message });
  }
  warn(message: string): void {
    this.lines.push({ level: 'warn', message });
  }
  error(message: string): void {
    this.lines.push({ level: 'error', message });
  }
  messages(level?: 'log' | 'warn' | 'error'): string[] {
    return this.lines.filter((l) => level === undefined || l.level === level).map((l) => l.message);
  }
}

type GrainCtor = new (ctx: GrainContext) => object;

export interface KindSpec {
  name: string;
  grainClass: GrainCtor;
  idleTimeout?: ClusterOptions['idleTimeout'];
  maxQueueLength?: number;
  interleave?: boolean;
  interleavedMethods?: string[];
}

/** A started standalone member hosting `kinds`; the caller shuts it down. */
export async function startCluster(kinds: KindSpec[], options: Partial<ClusterOptions> = {}): Promise<{ cluster: Cluster; logger: RecordingLogger }> {
  const logger = new RecordingLogger();
  const cluster = new Cluster({ clusterName: 'test', logger, ...options });
  for (const kind of kinds) {
    const Ctor = kind.grainClass;
    cluster.registerKind({
      name: kind.name,
      grainClass: Ctor as unknown as GrainClass,
      create: (ctx) => new Ctor(ctx),
      ...(kind.idleTimeout !== undefined && { idleTimeout: kind.idleTimeout }),
      ...(kind.maxQueueLength !== undefined && { maxQueueLength: kind.maxQueueLength }),
      ...(kind.interleave !== undefined && { interleave: kind.interleave }),
      ...(kind.interleavedMethods !== undefined && { interleavedMethods: kind.interleavedMethods }),
    });
  }
  await cluster.start();
  return { cluster, logger };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll `predicate` until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(predicate: () => boolean, timeoutMs = 2_000, stepMs = 5): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (predicate()) return true;
    await sleep(stepMs);
  }
  return predicate();
}

/** Settle a promise into a value or the error it rejected with. */
export async function outcome<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}
