/**
 * Driver for a CPU profile of the local-call scenario:
 *
 *   node --cpu-prof --cpu-prof-interval=250 --cpu-prof-dir=bench/results/profiles \
 *     dist/bench/profile-local-call.js [grain-distinct|grain-one] [seconds]
 *
 * Sets the subject up (grains activated), then runs a bounded number of rounds for about
 * `seconds` (default 3), and prints one JSON line with the timed window (`windowUs`, on the
 * profile's clock) so the summary can leave start-up out. `run.js --profile` starts it and
 * summarises the profile (support/cpuprofile.ts).
 */
import { scenario } from './scenarios/local-call.js';
import { hrtimeNs, nsSince } from './support/timing.js';

const subjectId = process.argv[2] ?? 'grain-distinct';
const seconds = Number(process.argv[3] ?? '3');
const concurrency = 1000;

const spec = scenario.subjects.find((s) => s.id === subjectId);
if (spec === undefined) throw new Error(`unknown local-call subject "${subjectId}"`);
if (!(seconds > 0 && seconds <= 60)) throw new Error('seconds must be in (0, 60]');

const subject = spec.create({ concurrency });
await subject.setup();

// Warm up, then size rounds from the last warm-up round so the timed part lasts about `seconds`.
let ops = concurrency * 100;
let rate = 0;
for (let r = 0; r < 3; r++) {
  const warmStart = hrtimeNs();
  await subject.round(ops);
  rate = (ops / nsSince(warmStart)) * 1e9;
}
const rounds = 10;
ops = Math.max(concurrency, Math.round((rate * seconds) / rounds));

let calls = 0;
const start = hrtimeNs();
for (let r = 0; r < rounds; r++) calls += await subject.round(ops);
const end = hrtimeNs();
const ns = Number(end - start);
await subject.cleanup?.();
await subject.teardown();
// windowUs: the timed part on the hrtime clock (µs), which is the clock of the profile's timestamps.
const windowUs = [Number(start / 1000n), Number(end / 1000n)];
process.stdout.write(`${JSON.stringify({ subject: subjectId, calls, seconds: ns / 1e9, callsPerSecond: (calls / ns) * 1e9, windowUs })}\n`);
