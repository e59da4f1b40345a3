/**
 * Scenario "otel": what OpenTelemetry costs a grain call. The same calls with an SDK
 * registered (every call traced: a CLIENT and a SERVER span, two duration records), with an
 * SDK that samples no trace (metrics, spans that record nothing), and without any SDK
 * (the API alone: the request path skips telemetry), side by side in the same run:
 *
 *   local:  `await ref.add(1)` on an embedded member, one grain per caller (local-call's grain);
 *   remote: `await ref.echo(bytes64)` from a client-only member to the member hosting `echo`
 *           (remote-call's grain), each in its own process.
 *
 * Every subject runs in processes of its own (bench/otel/member.ts, forked from dist/), the SDK
 * registered before the cluster is made, as an application does: an SDK and the
 * AsyncLocalStorage its context manager enables are process-wide, so they must not reach the
 * subjects without one. The runtime worker only drives them (one IPC request per round).
 *
 * Nothing here loads the runtime at import time (the worker imports every scenario).
 */
import { builtScript, ServerChild } from '../remote/child-process.js';
import type { BenchParams, ScenarioSpec, Subject } from '../support/scenario.js';

type Sdk = 'off' | 'on' | 'unsampled';

interface MemberStats {
  activations: number;
  spans: number;
  loggedProblems: number;
  lastProblem: string | null;
}

/** One subject: its member process(es) with SDK `sdk`; rounds run in the calling one. */
class OtelSubject implements Subject {
  private server: ServerChild | undefined;
  private caller: ServerChild | undefined;
  private problems = 0;

  constructor(
    private readonly params: BenchParams,
    private readonly mode: 'local' | 'remote',
    private readonly sdk: Sdk,
  ) {}

  async setup(): Promise<void> {
    const script = builtScript('../otel/member.js', import.meta.url);
    try {
      if (this.mode === 'remote') {
        this.server = await ServerChild.start(`otel server (${this.sdk})`, script, [this.sdk, 'server']);
        this.caller = await ServerChild.start(`otel client (${this.sdk})`, script, [this.sdk, 'client', this.server.address]);
      } else {
        this.caller = await ServerChild.start(`otel member (${this.sdk})`, script, [this.sdk, 'local']);
      }
      await this.caller.request('setup', this.params.concurrency, 60_000);
      await this.check();
    } catch (error) {
      await this.teardown().catch(() => {});
      throw error;
    }
  }

  round(ops: number): Promise<number> {
    return this.caller!.request<number>('round', ops, 60_000);
  }

  async cleanup(): Promise<void> {
    await this.check();
  }

  /** Outside the timer: one activation per caller, nothing logged, and spans exported exactly when traced. */
  private async check(): Promise<void> {
    const host = this.server ?? this.caller!;
    const hosting = await host.request<MemberStats>('stats');
    if (hosting.activations !== this.params.concurrency)
      throw new Error(`${this.mode}/${this.sdk}: ${hosting.activations} activations, expected ${this.params.concurrency}`);
    for (const child of [this.caller!, ...(this.server === undefined ? [] : [this.server])]) {
      const stats = await child.request<MemberStats>('stats');
      this.problems = Math.max(this.problems, stats.loggedProblems);
      if (stats.loggedProblems > 0) throw new Error(`${child.name} logged ${stats.loggedProblems} problem(s), last: ${stats.lastProblem}`);
      if (this.sdk !== 'on' && stats.spans > 0) throw new Error(`${child.name} exported ${stats.spans} spans without sampling them`);
    }
  }

  async teardown(): Promise<void> {
    await this.caller?.stop();
    await this.server?.stop();
    this.caller = this.server = undefined;
  }

  loggedProblems(): number {
    return this.problems;
  }
}

const subject = (mode: 'local' | 'remote', sdk: Sdk, label: string, process: string) => ({
  id: `${mode}-${sdk}`,
  label,
  role: 'runtime' as const,
  process,
  create: (p: BenchParams) => new OtelSubject(p, mode, sdk),
});

export const scenario: ScenarioSpec = {
  id: 'otel',
  title: 'OpenTelemetry',
  unit: 'calls',
  description:
    'Grain calls with an OpenTelemetry SDK registered (every call traced; or no trace sampled) beside the same calls without one: local (`ref.add(1)`, one grain per caller) and remote (`ref.echo(bytes64)`, client-only member → member hosting `echo`).',
  notes: [
    'Every subject runs in member processes of its own (dist/bench/otel/member.js), the SDK registered before the cluster is made; the runtime worker only drives them, one IPC request per round.',
    'SDK: BasicTracerProvider (ParentBased AlwaysOn, or AlwaysOff for "unsampled") + BatchSpanProcessor into a counting exporter, MeterProvider + PeriodicExportingMetricReader (1 s) into a counting exporter, AsyncLocalStorage context manager, W3C propagator.',
    'Traced: a CLIENT and a SERVER span per call (both in one process for a local call), two histogram records; remote calls carry the traceparent in their request.',
  ],
  subjects: [
    subject('local', 'off', 'local call, no SDK', 'embedded member (child), no SDK'),
    subject('local', 'on', 'local call, SDK, every call traced', 'embedded member (child), SDK'),
    subject('local', 'unsampled', 'local call, SDK, no trace sampled', 'embedded member (child), SDK, sampler off'),
    subject('remote', 'off', 'remote call, no SDK', 'client member (child) → server member (child), no SDK'),
    subject('remote', 'on', 'remote call, SDK, every call traced', 'client member (child) → server member (child), SDK on both'),
    subject('remote', 'unsampled', 'remote call, SDK, no trace sampled', 'client member (child) → server member (child), SDK on both, sampler off'),
  ],
  ratios: [
    { id: 'local-on/off', label: 'local calls: every call traced / no SDK', numerator: 'local-on', denominator: 'local-off' },
    { id: 'local-unsampled/off', label: 'local calls: no trace sampled / no SDK', numerator: 'local-unsampled', denominator: 'local-off' },
    { id: 'remote-on/off', label: 'remote calls: every call traced / no SDK', numerator: 'remote-on', denominator: 'remote-off' },
    { id: 'remote-unsampled/off', label: 'remote calls: no trace sampled / no SDK', numerator: 'remote-unsampled', denominator: 'remote-off' },
  ],
  probes: [],
};
