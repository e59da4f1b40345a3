import type { Role } from './scenario.js';
import type { Summary } from './stats.js';

/** Parent → worker. */
export type Request =
  | { readonly op: 'setup'; readonly scenario: string; readonly subject: string; readonly concurrency: number }
  | { readonly op: 'round'; readonly subject: string; readonly ops: number }
  | { readonly op: 'latency'; readonly subject: string; readonly callers: number; readonly calls: number; readonly fromTask: boolean }
  | { readonly op: 'probe'; readonly scenario: string; readonly probe: string; readonly concurrency: number }
  | { readonly op: 'teardown' }
  | { readonly op: 'status' };

export interface RoundReply {
  /** Wall time of the timed part. */
  readonly ns: number;
  readonly ops: number;
  /** Wall time of the untimed cleanup after it (0 when none). */
  readonly cleanupNs: number;
  /** Per-round figures the subject reports (`Subject.roundFigures`), e.g. CPU per operation. */
  readonly figures?: Readonly<Record<string, number>>;
}

export interface StatusReply {
  readonly role: Role;
  readonly pid: number;
  /** Whether this process ever imported `nestjs-grains`. */
  readonly runtimeLoaded: boolean;
  readonly loggedProblems: number;
  readonly heapUsedMb: number;
}

export type ProbeReply = Summary;

export interface Envelope {
  readonly id: number;
  readonly request: Request;
}

export type ReplyEnvelope =
  { readonly id: number; readonly ok: true; readonly value: unknown } | { readonly id: number; readonly ok: false; readonly error: string };
