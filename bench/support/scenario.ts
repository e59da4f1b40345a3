import type { Summary } from './stats.js';

/**
 * Which worker process a subject or probe runs in.
 *
 * - `pristine`: a child process that never loads `nestjs-grains` and never uses
 *   AsyncLocalStorage, so promises run without async hooks (the honest plain baseline).
 * - `runtime`: a child process that loads the runtime and runs grain turns with the default
 *   `callChains` ('references': no AsyncLocalStorage): what an app's own awaits pay there is
 *   the host-app tax.
 * - `runtime-als`: the same with `callChains: 'async-local-storage'`: on Node 20/22 its first
 *   turn turns promise hooks on for the whole process, so every promise there pays the hook.
 * - `runtime-stgc`: a second runtime child, run with V8's `--single-threaded-gc` (remote-call's GC diagnostic).
 */
export type Role = 'pristine' | 'runtime' | 'runtime-als' | 'runtime-stgc';

export const ROLES: readonly Role[] = ['pristine', 'runtime', 'runtime-als', 'runtime-stgc'];

export interface BenchParams {
  /** Concurrent caller loops. */
  readonly concurrency: number;
}

/** One measured thing: a loop body run for `ops` operations per round. */
export interface Subject {
  /** Once, untimed, before any round: build objects, activate grains. */
  setup(): Promise<void>;
  /** Untimed, before each round. */
  prepare?(ops: number): Promise<void>;
  /** Timed: perform about `ops` operations with `concurrency` callers; returns how many ran. */
  round(ops: number): Promise<number>;
  /** Untimed, after each round (checks, shutdown of per-round state). */
  cleanup?(): Promise<void>;
  /** Once, at the end. */
  teardown(): Promise<void>;
  /** Warnings or errors the runtime logged (the logger is silent; they are counted). */
  loggedProblems?(): number;
  /**
   * Untimed as a whole: about `calls` operations by `callers` loops, each operation timed on
   * its own (latency scenarios only). `cleanup` runs after it too. `fromTask`: each operation
   * starts from a task of its own (after `setImmediate`), not from the last one's continuation.
   */
  latency?(callers: number, calls: number, fromTask?: boolean): Promise<LatencySample>;
  /** Figures of the last timed round (read after `cleanup`), e.g. CPU µs per operation of each process. */
  roundFigures?(): Readonly<Record<string, number>> | undefined;
}

/** Per-operation latencies of one latency round. */
export interface LatencySample {
  readonly calls: number;
  /** Wall time of the whole round. */
  readonly ns: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  readonly maxUs: number;
}

export interface SubjectSpec {
  readonly id: string;
  readonly label: string;
  readonly role: Role;
  /** Describes the processes involved, in the report (default: the role's description). */
  readonly process?: string;
  /** An absolute target for its rate (ops/s), printed as met or not. */
  readonly target?: number;
  create(params: BenchParams): Subject;
}

/** A latency measurement: `callers` concurrent loops over `subject`, every operation timed. */
export interface LatencySpec {
  readonly id: string;
  readonly label: string;
  /** The subject whose `latency` runs (set up once, shared with its throughput rounds). */
  readonly subject: string;
  /** Concurrent callers; 'all' is the run's --concurrency (1,000 by default). */
  readonly callers: number | 'all';
  /**
   * Each operation starts from a task of its own (after `setImmediate`, untimed: the check
   * phase), instead of from the last one's continuation.
   */
  readonly fromTask?: boolean;
}

/** A micro-measurement explaining where time goes; its figure is a Summary of `unit`. */
export interface ProbeSpec {
  readonly id: string;
  readonly label: string;
  readonly role: Role;
  readonly unit: 'ns/op' | 'µs/sweep' | 'promises/op' | 'B/activation';
  run(params: BenchParams): Promise<Summary>;
}

export interface RatioSpec {
  readonly id: string;
  readonly label: string;
  readonly numerator: string;
  readonly denominator: string;
  /** Printed as a target to meet (ratio >= target). */
  readonly target?: number;
}

export interface ScenarioSpec {
  readonly id: string;
  readonly title: string;
  /** What one operation is: 'calls' or 'activations'. */
  readonly unit: string;
  readonly description: string;
  /** Runtime-role subjects are set up in this order: grain subjects first, so grain turns have run before the plain subjects of the same worker. */
  readonly subjects: readonly SubjectSpec[];
  readonly ratios: readonly RatioSpec[];
  readonly probes: readonly ProbeSpec[];
  /** Latency rounds, run after the throughput rounds, interleaved the same way. */
  readonly latency?: readonly LatencySpec[];
  /** Lines printed under the title instead of the explanation of the worker processes. */
  readonly notes?: readonly string[];
  /** Derived lines ("where the time goes") computed from subject and probe figures. */
  breakdown?(figures: Figures): BreakdownLine[];
}

/** What `breakdown` sees: median ops/s per subject and median probe values. */
export interface Figures {
  readonly rate: Readonly<Record<string, number>>;
  readonly probe: Readonly<Record<string, number>>;
  /** Median ns per operation spent in a subject's untimed `cleanup` (e.g. shutdown), when it has one. */
  readonly cleanupNsPerOp: Readonly<Record<string, number>>;
}

export interface BreakdownLine {
  readonly label: string;
  readonly value: number;
  readonly unit: string;
  /** Share of the reference cost (e.g. of one grain call), when meaningful. */
  readonly share?: number;
  readonly note?: string;
}
