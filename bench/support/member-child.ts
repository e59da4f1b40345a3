/**
 * The child side of a group's member process (bench/{redis,membership,gossip}/member.ts; the
 * orchestrator's side is member-process.ts): what every member holds and reports the same way.
 * Serving the parent is remote/child-process.ts (`serveParent`); waiting, bounded, is
 * timing.ts (`pollUntil`).
 */
import type { Cluster } from 'nestjs-grains';
import type { SilentLogger } from './runtime.js';

/** A started member: its configuration (its command line's JSON argument), its cluster, and the logger that counts its warnings. */
export interface RunningMember<Config> {
  readonly config: Config;
  readonly cluster: Cluster;
  readonly logger: SilentLogger;
}

/** What every member's `stats` holds beside its group's own figures. */
export interface MemberHealth {
  /** Warnings and errors the member's cluster logged (SilentLogger). */
  readonly loggedProblems: number;
  readonly lastProblem: string | null;
  readonly heapUsedMb: number;
}

export function memberHealth(logger: SilentLogger): MemberHealth {
  return { loggedProblems: logger.problems, lastProblem: logger.lastProblem ?? null, heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20 };
}

/** A caught error's name and message (`NonError` for anything thrown that is not an Error), to count failures by name. */
export function describeError(error: unknown): { name: string; message: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'NonError', message: String(error) };
}
