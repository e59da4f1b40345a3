/**
 * A benchmark worker: a child process (forked by support/child.ts) that sets up subjects and
 * runs timed rounds on request, so the parent can interleave rounds of different processes.
 *
 * Started with a role (support/scenario.ts): `pristine` never loads `nestjs-grains`; the
 * `runtime*` roles load it and run grain turns.
 */
import type { Envelope, ReplyEnvelope, Request, RoundReply, StatusReply } from './support/protocol.js';
import { type Role, ROLES, type Subject } from './support/scenario.js';
import { findScenario } from './support/scenarios.js';
import { runtimeLoaded } from './support/runtime.js';
import { collectGarbage, hrtimeNs, nsSince } from './support/timing.js';

const role = process.argv[2] as Role;
if (!ROLES.includes(role)) throw new Error(`worker role must be one of ${ROLES.join(', ')}, got ${String(role)}`);

const subjects = new Map<string, Subject>();

async function handle(request: Request): Promise<unknown> {
  switch (request.op) {
    case 'setup': {
      const spec = findScenario(request.scenario).subjects.find((s) => s.id === request.subject);
      if (spec === undefined) throw new Error(`unknown subject ${request.scenario}/${request.subject}`);
      if (spec.role !== role) throw new Error(`subject ${spec.id} belongs in the ${spec.role} worker, not ${role}`);
      const subject = spec.create({ concurrency: request.concurrency });
      await subject.setup();
      subjects.set(spec.id, subject);
      return null;
    }
    case 'round': {
      const subject = subjects.get(request.subject);
      if (subject === undefined) throw new Error(`subject ${request.subject} is not set up`);
      await subject.prepare?.(request.ops);
      collectGarbage();
      const start = hrtimeNs();
      const ops = await subject.round(request.ops);
      const ns = nsSince(start);
      const cleanupStart = hrtimeNs();
      await subject.cleanup?.();
      const cleanupNs = subject.cleanup === undefined ? 0 : nsSince(cleanupStart);
      const figures = subject.roundFigures?.();
      return { ns, ops, cleanupNs, ...(figures === undefined ? {} : { figures }) } satisfies RoundReply;
    }
    case 'latency': {
      const subject = subjects.get(request.subject);
      if (subject === undefined) throw new Error(`subject ${request.subject} is not set up`);
      if (subject.latency === undefined) throw new Error(`subject ${request.subject} measures no latency`);
      await subject.prepare?.(request.calls);
      collectGarbage();
      const sample = await subject.latency(request.callers, request.calls, request.fromTask);
      await subject.cleanup?.();
      return sample;
    }
    case 'probe': {
      const spec = findScenario(request.scenario).probes.find((p) => p.id === request.probe);
      if (spec === undefined) throw new Error(`unknown probe ${request.scenario}/${request.probe}`);
      if (spec.role !== role) throw new Error(`probe ${spec.id} belongs in the ${spec.role} worker, not ${role}`);
      collectGarbage();
      return spec.run({ concurrency: request.concurrency });
    }
    case 'teardown': {
      for (const subject of subjects.values()) await subject.teardown();
      subjects.clear();
      return null;
    }
    case 'status': {
      let loggedProblems = 0;
      for (const subject of subjects.values()) loggedProblems += subject.loggedProblems?.() ?? 0;
      return {
        role,
        pid: process.pid,
        runtimeLoaded: runtimeLoaded(),
        loggedProblems,
        heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20,
      } satisfies StatusReply;
    }
  }
}

// NOTE: requests are handled one at a time (the parent awaits each reply), so a round never
// shares the process with other work.
let queue: Promise<void> = Promise.resolve();
process.on('message', (message: Envelope) => {
  queue = queue.then(async () => {
    let reply: ReplyEnvelope;
    try {
      reply = { id: message.id, ok: true, value: await handle(message.request) };
    } catch (error) {
      reply = { id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
    }
    process.send!(reply);
  });
});
process.on('disconnect', () => process.exit(0));
