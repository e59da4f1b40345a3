import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/results in the source tree (this file runs from dist/bench/support). */
export const RESULTS_DIR = fileURLToPath(new URL('../../../bench/results/', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Environment {
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly arch: string;
  readonly cpuModel: string;
  readonly cpus: number;
  readonly totalMemGb: number;
  readonly loadavg: readonly number[];
  readonly gitCommit: string | undefined;
  readonly gitDirty: boolean | undefined;
}

export function environment(): Environment {
  let gitCommit: string | undefined;
  let gitDirty: boolean | undefined;
  try {
    gitCommit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    gitDirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
        .length > 0;
  } catch {
    // not a git checkout: leave undefined
  }
  const cpuList = cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    cpuModel: cpuList[0]?.model ?? 'unknown',
    cpus: cpuList.length,
    totalMemGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    gitCommit,
    gitDirty,
  };
}

/** `2025-01-31T12-34-56-789Z`: sortable and safe in file names. */
export function timestamp(date = new Date()): string {
  return date.toISOString().replace(/[:.]/g, '-');
}

/** Writes `value` as pretty JSON; returns the path relative to the repository root. */
export function writeJson(fileName: string, value: unknown): string {
  const path = join(RESULTS_DIR, fileName);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
  return relative(REPO_ROOT, path);
}
