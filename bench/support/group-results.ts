/**
 * The results of a process group's scenarios (the redis, membership and gossip groups, driven
 * by bench/run.ts): each completed as it ends (finish time, duration, the group's environment
 * and options), written to bench/results/<scenario>-<stamp>.json, and kept with its printed
 * report for bench/run.ts (stdout and latest.json).
 */
import { environment, type Environment, writeJson } from './results.js';

/** What every group scenario's result holds; a group adds its own figures (`data`, or subjects and checks). */
export interface GroupScenarioResult<Id extends string = string, Options = unknown> {
  readonly scenario: Id;
  readonly title: string;
  readonly description: string;
  readonly notes: readonly string[];
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationS: number;
  readonly environment: Environment;
  readonly options: Options;
}

/** What a group hands back to bench/run.ts. */
export interface GroupOutput<Result> {
  readonly results: Result[];
  readonly reports: string[];
}

/** The fields `GroupResults.add` fills in. */
type Completion = 'finishedAt' | 'durationS' | 'environment' | 'options';

/** `Extra`: fields the same for every scenario of the group (the redis group's `redisVersion`), given once, written last. */
export class GroupResults<Result extends GroupScenarioResult, Extra extends Partial<Result> = Record<never, never>> implements GroupOutput<Result> {
  readonly results: Result[] = [];
  readonly reports: string[] = [];
  // NOTE: taken once, when the group is set up, and recorded by each of its scenarios.
  private readonly environment = environment();

  constructor(
    private readonly stamp: string,
    private readonly options: Result['options'],
    private readonly extra?: Extra,
  ) {}

  /** Completes the result of a scenario begun at `started`, writes its JSON, and keeps it and `report(result)`. */
  add(partial: Omit<Result, Completion | keyof Extra>, started: Date, report: (result: Result) => string[]): void {
    const finished = new Date();
    const result = {
      ...partial,
      finishedAt: finished.toISOString(),
      durationS: (finished.getTime() - started.getTime()) / 1000,
      environment: this.environment,
      options: this.options,
      ...this.extra,
    } as unknown as Result;
    writeJson(`${result.scenario}-${this.stamp}.json`, result);
    this.results.push(result);
    this.reports.push(report(result).join('\n'));
  }
}

/** The head of a scenario's printed report: its title and description, its notes indented, a blank line. */
export function reportHead(result: GroupScenarioResult): string[] {
  return [`== ${result.title} — ${result.description}`, ...result.notes.map((n) => `   ${n}`), ''];
}
