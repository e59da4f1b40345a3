/**
 * CPU profiles of both members of the remote-call scenario: starts the driver
 * (bench/profile-remote-call.ts, member A) under `--cpu-prof`; it forks member B under
 * `--cpu-prof` too. Both profiles are summarised over the driver's timed window only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ProfileSummary, summarizeProfile } from './cpuprofile.js';
import { fmtNum, fmtPct, fmtRate, table } from './format.js';
import { REPO_ROOT, RESULTS_DIR } from './results.js';

const DRIVER = fileURLToPath(new URL('../profile-remote-call.js', import.meta.url));
const DRIVER_TIMEOUT_MS = 90_000;
/** Sampling interval (µs); V8's default is 1,000. */
const INTERVAL_US = 250;

interface DriverResult {
  readonly calls: number;
  readonly seconds: number;
  readonly callsPerSecond: number;
  readonly callerPid: number;
  readonly calleePid: number;
  readonly windowUs: [number, number];
}

export interface GroupShare {
  readonly group: string;
  readonly selfMs: number;
  readonly share: number;
}

export interface RemoteProfile {
  readonly driver: DriverResult;
  readonly caller: ProfileSummary & { readonly groups: readonly GroupShare[] };
  readonly callee: ProfileSummary & { readonly groups: readonly GroupShare[] };
}

/** Coarse owner of a file (or of a native pseudo-function like "(garbage collector)"). */
function groupOf(file: string): string {
  if (file.startsWith('(')) return file;
  if (file.includes('node_modules/@grpc/grpc-js/')) return '@grpc/grpc-js';
  if (file.includes('node_modules/protobufjs/') || file.includes('node_modules/@protobufjs/')) return 'protobufjs';
  if (file.includes('node_modules/')) return 'other node_modules';
  if (file.startsWith('dist/lib/remote/codec/')) return 'nestjs-grains lib/remote/codec';
  if (file.startsWith('dist/lib/remote/')) return 'nestjs-grains lib/remote';
  if (file.startsWith('dist/lib/cluster/')) return 'nestjs-grains lib/cluster';
  if (file.startsWith('dist/lib/actor/')) return 'nestjs-grains lib/actor';
  if (file.startsWith('dist/lib/')) return 'nestjs-grains lib (other)';
  if (file.startsWith('dist/bench/')) return 'bench (caller loops, grain class)';
  if (file.startsWith('node:')) return 'node internals (JS)';
  if (!file.includes('/') && !file.includes(':')) return '(native: builtins, C++, no script)';
  return file;
}

function withGroups(summary: ProfileSummary, all: ProfileSummary): ProfileSummary & { groups: GroupShare[] } {
  const groups = new Map<string, number>();
  for (const f of all.byFile) groups.set(groupOf(f.file), (groups.get(groupOf(f.file)) ?? 0) + f.selfMs);
  const total = all.totalMs;
  return {
    ...summary,
    groups: [...groups.entries()].sort((a, b) => b[1] - a[1]).map(([group, selfMs]) => ({ group, selfMs, share: selfMs / total })),
  };
}

export async function profileRemoteCall(stamp: string, seconds: number): Promise<RemoteProfile> {
  const dir = join(RESULTS_DIR, 'profiles');
  const callerName = `remote-call-caller-${stamp}.cpuprofile`;
  const calleeName = `remote-call-callee-${stamp}.cpuprofile`;
  let child: ChildProcess | undefined;
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);
  try {
    const output = await new Promise<string>((resolve, reject) => {
      child = spawn(
        process.execPath,
        [
          '--cpu-prof',
          `--cpu-prof-interval=${INTERVAL_US}`,
          `--cpu-prof-dir=${dir}`,
          `--cpu-prof-name=${callerName}`,
          DRIVER,
          String(seconds),
          dir,
          calleeName,
          String(INTERVAL_US),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let stdout = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      const timer = setTimeout(() => child?.kill('SIGKILL'), DRIVER_TIMEOUT_MS);
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(stdout);
        else reject(new Error(`remote-call profile driver exited with code ${code}, signal ${signal}`));
      });
    });
    const driver = JSON.parse(output.trim().split('\n').pop()!) as DriverResult;
    const summarize = (name: string) => {
      const file = join(dir, name);
      statSync(file);
      return withGroups(summarizeProfile(file, REPO_ROOT, 15, driver.windowUs), summarizeProfile(file, REPO_ROOT, 10_000, driver.windowUs));
    };
    return { driver, caller: summarize(callerName), callee: summarize(calleeName) };
  } finally {
    process.off('exit', killOnExit);
  }
}

function side(title: string, s: RemoteProfile['caller']): string {
  return [
    `   ${title}: ${s.file.slice(REPO_ROOT.length)}, ${s.samples} samples over ${fmtNum(s.totalMs, 0)} ms of the timed window`,
    '',
    table(
      [['self time, by function', 'location', 'ms', 'share'], ...s.top.map((t) => [t.functionName, t.location, fmtNum(t.selfMs, 0), fmtPct(t.share)])],
      ['left', 'left', 'right', 'right'],
    ),
    '',
    table(
      [['self time, by owner', 'ms', 'share'], ...s.groups.slice(0, 12).map((g) => [g.group, fmtNum(g.selfMs, 0), fmtPct(g.share)])],
      ['left', 'right', 'right'],
    ),
  ].join('\n');
}

export function reportRemoteProfile(p: RemoteProfile): string {
  const d = p.driver;
  return [
    `== CPU profile, remote call (both members; ${INTERVAL_US} µs sampling; start-up and shutdown excluded)`,
    `   driver: ${d.calls} calls in ${fmtNum(d.seconds, 2)} s = ${fmtRate(d.callsPerSecond)} calls/s under the profiler (1,000 callers); ` +
      `caller pid ${d.callerPid}, callee pid ${d.calleePid}. Locations are dist/ JavaScript lines; V8 charges inlined functions to their caller.`,
    '',
    side('member A, caller (client-only)', p.caller),
    '',
    side('member B, callee (hosts the grains)', p.callee),
  ].join('\n');
}
