/**
 * The one place the benchmark loads `nestjs-grains`, lazily, so that the pristine worker
 * (plain baselines) provably never loads it: `runtimeLoaded()` is reported back to the parent.
 */
import type * as Grains from 'nestjs-grains';

export type GrainsModule = typeof Grains;

let loaded: GrainsModule | undefined;

export async function loadRuntime(): Promise<GrainsModule> {
  loaded ??= await import('nestjs-grains');
  return loaded;
}

export function runtimeLoaded(): boolean {
  return loaded !== undefined;
}

/** A logger that prints nothing but counts warnings and errors, so a run can say if any happened. */
export class SilentLogger implements Grains.ClusterLogger {
  problems = 0;
  lastProblem: string | undefined;
  log(): void {}
  warn(message: string): void {
    this.problems++;
    this.lastProblem = message;
  }
  error(message: string): void {
    this.problems++;
    this.lastProblem = message;
  }
}
