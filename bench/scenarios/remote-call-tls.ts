/**
 * Scenario "remote call over mTLS": the remote-call grain subject (member A, client-only, in
 * the runtime worker → member B, a child process; `await ref.echo(bytes64)`, one grain per
 * caller) twice in the same worker and the same run, interleaved round by round: once in
 * plaintext, once with `remote.tls` on both members (a cluster CA and one certificate per
 * member, EC P-256, made with the openssl CLI for the run). The ratio is what mutual TLS
 * costs a remote call; the TLS handshakes happen in setup, before any timed round.
 *
 * Nothing here loads the runtime or grpc-js at import time (the worker imports every scenario).
 */
import type { ScenarioSpec } from '../support/scenario.js';
import { RemoteGrainSubject } from './remote-call.js';

export const scenario: ScenarioSpec = {
  id: 'remote-call-tls',
  title: 'remote call over mTLS',
  unit: 'calls',
  description:
    'Grain calls between two processes as in remote-call (member A client-only, `ref.echo(bytes64)` on grains hosted by member B, one grain per caller), ' +
    'with mutual TLS between the members beside the same without, in the same worker and run.',
  notes: [
    'Both subjects run in the runtime worker, each with its own member B child (dist/bench/remote/member.js) on 127.0.0.1; rounds alternate between them.',
    'mTLS: remote.tls on A and B (caFile, certFile, keyFile), a cluster CA and a certificate per member (EC P-256, serverAuth + clientAuth) made with openssl in a temp dir.',
    'Connections (and so TLS handshakes) are opened in setup: the timed rounds measure encryption of the batched stream, not handshakes.',
  ],
  subjects: [
    {
      id: 'grain',
      label: 'grain call, A → B, plaintext',
      role: 'runtime',
      process: 'member A (runtime worker) → member B (child)',
      create: (p) => new RemoteGrainSubject(p),
    },
    {
      id: 'grain-tls',
      label: 'grain call, A → B, mutual TLS',
      role: 'runtime',
      process: 'member A (runtime worker) → member B (child), remote.tls on both',
      create: (p) => new RemoteGrainSubject(p, { tls: true }),
    },
  ],
  ratios: [{ id: 'grain-tls/grain', label: 'remote grain calls with mTLS / plaintext', numerator: 'grain-tls', denominator: 'grain' }],
  probes: [],
  latency: [
    { id: 'grain-1', label: 'grain call, plaintext', subject: 'grain', callers: 1 },
    { id: 'grain-tls-1', label: 'grain call, mutual TLS', subject: 'grain-tls', callers: 1 },
    { id: 'grain-c', label: 'grain call, plaintext', subject: 'grain', callers: 'all' },
    { id: 'grain-tls-c', label: 'grain call, mutual TLS', subject: 'grain-tls', callers: 'all' },
  ],
};
