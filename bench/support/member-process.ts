/**
 * The orchestrator's side of a group's member process (bench/{redis,membership,gossip}/member.ts;
 * their common child side is member-child.ts): forked from the build with its configuration as
 * one JSON argument, through remote/child-process.ts (SIGKILLed, by pid, if this process exits
 * first), ready once it reported its address, then driven by requests until `stop` (graceful)
 * or `kill`. Each group subclasses it with its own requests and says what its `start` resolves
 * with.
 */
import { ServerChild } from '../remote/child-process.js';
import type { MemberHealth } from './member-child.js';
import { freeLoopbackPort } from './redis-server.js';

/** What the orchestrator reads of a member's configuration (the rest is the member's). */
export interface MemberProcessConfig {
  /** For messages. */
  readonly name: string;
  /** The remote port on 127.0.0.1: the member id is then `127.0.0.1:<port>`. */
  readonly port?: number;
}

export abstract class MemberProcess<Config extends MemberProcessConfig, Stats extends MemberHealth> {
  protected child: ServerChild | undefined;
  /** The group's member script in dist/ (remote/child-process.ts `builtScript`), resolved at each fork. */
  protected abstract readonly script: () => string;

  constructor(readonly config: Config) {}

  get name(): string {
    return this.config.name;
  }

  get id(): string {
    return `127.0.0.1:${this.config.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Forks the member script; resolves once the member reported ready. */
  protected async fork(): Promise<void> {
    this.child = await ServerChild.start(this.config.name, this.script(), [JSON.stringify(this.config)]);
  }

  request<T>(op: string, arg?: unknown, timeoutMs?: number): Promise<T> {
    if (this.child === undefined) return Promise.reject(new Error(`${this.name} is not running`));
    return this.child.request<T>(op, arg, timeoutMs);
  }

  stats(): Promise<Stats> {
    return this.request<Stats>('stats');
  }

  /** Graceful: the member shuts its cluster down and exits (SIGKILLed if it does not in time). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    await child?.stop();
  }

  /** Immediate SIGKILL (failure paths). */
  kill(): void {
    this.child?.kill();
    this.child = undefined;
  }
}

/** `count` distinct ports free on 127.0.0.1 right now, one per member. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freeLoopbackPort());
  return [...ports];
}

/** The warnings and errors logged by these members, together. */
export function problemsOf(stats: readonly MemberHealth[]): number {
  return stats.reduce((n, s) => n + s.loggedProblems, 0);
}
