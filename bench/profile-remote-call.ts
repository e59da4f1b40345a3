/**
 * Driver for CPU profiles of both sides of the remote-call scenario:
 *
 *   node --cpu-prof --cpu-prof-interval=250 --cpu-prof-dir=DIR --cpu-prof-name=CALLER.cpuprofile \
 *     dist/bench/profile-remote-call.js SECONDS DIR CALLEE.cpuprofile
 *
 * This process is member A (client-only); it forks member B with `--cpu-prof` into
 * DIR/CALLEE.cpuprofile. It activates the grains, warms up, runs a bounded number of rounds of
 * 1,000 concurrent callers for about SECONDS, stops B gracefully (so B writes its profile),
 * and prints one JSON line with the timed window (`windowUs`, on the monotonic clock that
 * both profiles use) so the summaries leave start-up and shutdown out. `run.js` starts it
 * after the remote-call scenario and summarises both profiles (support/cpuprofile.ts).
 */
import { join } from 'node:path';
import { RemoteGrainSubject } from './scenarios/remote-call.js';
import { hrtimeNs, nsSince } from './support/timing.js';

const seconds = Number(process.argv[2] ?? '3');
const dir = process.argv[3];
const calleeName = process.argv[4];
const interval = process.argv[5] ?? '250';
const concurrency = 1000;
if (!(seconds > 0 && seconds <= 30)) throw new Error('seconds must be in (0, 30]');
if (dir === undefined || calleeName === undefined) throw new Error('usage: profile-remote-call.js SECONDS DIR CALLEE.cpuprofile [INTERVAL_US]');

const subject = new RemoteGrainSubject(
  { concurrency },
  { memberExecArgv: ['--cpu-prof', `--cpu-prof-interval=${interval}`, `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${calleeName}`] },
);
await subject.setup();
let failure: unknown;
let result: Record<string, unknown> = {};
try {
  // Warm up, then size rounds from the last warm-up round so the timed part lasts about `seconds`.
  let ops = concurrency * 20;
  let rate = 0;
  for (let r = 0; r < 4; r++) {
    const t0 = hrtimeNs();
    const done = await subject.round(ops);
    rate = (done / nsSince(t0)) * 1e9;
    ops = Math.max(concurrency, Math.round(rate * 0.5));
  }
  const rounds = 10;
  ops = Math.max(concurrency, Math.round((rate * seconds) / rounds));
  let calls = 0;
  const start = hrtimeNs();
  for (let r = 0; r < rounds; r++) calls += await subject.round(ops);
  const end = hrtimeNs();
  await subject.cleanup();
  const ns = Number(end - start);
  result = {
    calls,
    seconds: ns / 1e9,
    callsPerSecond: (calls / ns) * 1e9,
    callerPid: process.pid,
    calleePid: subject.memberPid,
    calleeProfile: join(dir, calleeName),
    // windowUs: the timed part on the hrtime clock (µs): the clock of both profiles' timestamps.
    windowUs: [Number(start / 1000n), Number(end / 1000n)],
  };
} catch (error) {
  failure = error;
} finally {
  await subject.teardown(); // B shuts down and exits with code 0: its profile is written then
}
if (failure !== undefined) throw failure;
process.stdout.write(`${JSON.stringify(result)}\n`);
