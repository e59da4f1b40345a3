/**
 * The dangerous one-line bugs (issue 8, item 13): each must make the test suite fail.
 * `npm run mutants` (test/mutants/run.mjs) applies them one at a time in a throwaway copy.
 *
 * `find` must occur exactly once in `file`, or the run stops before testing anything: when
 * the code moves, update the text here rather than letting a mutant silently test nothing.
 * `tests` is the fast check (`--fast`): the test files that should kill the mutant on their
 * own; a file under test/e2e/ makes the fast check build first, as the whole suite does.
 *
 * @typedef {object} Mutant
 * @property {string} id short and stable: `--only` takes it
 * @property {string} description the bug, as a reviewer would name it
 * @property {string} file relative to the repository root
 * @property {string} find the exact text to replace (may span lines)
 * @property {string} replace what a careless edit would leave there
 * @property {readonly string[]} tests the fast check: test files, relative to the root
 */

/** @type {readonly Mutant[]} */
export const mutants = [
  {
    id: 'turn-serialization',
    description: 'no turn serialization: the mailbox starts a second exclusive turn while one runs',
    file: 'lib/actor/mailbox.ts',
    find: '} else if (this.running > 0) {',
    replace: '} else if (this.running > 1) {',
    tests: ['test/actor/mailbox.spec.ts', 'test/cluster/turns.spec.ts'],
  },
  {
    id: 'cycle-check',
    description: 'no cycle check: Activation.post compares the chain against the wrong field, so A→B→A waits for itself',
    file: 'lib/cluster/activation/activation.ts',
    find: 'if (link !== this && link !== this.interleavedTurns && (this.idValue === undefined || link.activationId !== this.idValue)) continue;',
    replace: 'if (link.label !== this.id) continue;',
    tests: ['test/cluster/cycles.spec.ts'],
  },
  {
    id: 'retry-written-calls',
    description: 'retrying written calls: a call written to a connection that broke is sent on as if it never ran, idempotent or not',
    file: 'lib/cluster/remoting/remote-caller.ts',
    find: 'if (!written || call.idempotent) {',
    replace: "if (!written || call.idempotent || reason === 'disconnected') {",
    tests: ['test/e2e/crash.spec.ts'],
  },
  {
    id: 'lease-check-turn-start',
    description: 'no lease check at turn start: admit() lets a turn start whatever the lease says (Fencing.canStartTurn)',
    file: 'lib/cluster/fencing.ts',
    find: 'return this.guard === undefined || this.guard.canStart(now());',
    replace: 'return true;',
    tests: ['test/cluster/holes.spec.ts'],
  },
  {
    id: 'lease-check-turn-end',
    description: 'no lease check at turn end: onTurnSettled delivers the reply of a turn that ended after the lease',
    file: 'lib/cluster/activation/activation.ts',
    find: 'fencing.leased && (this.state === State.Fenced || !fencing.canSettleTurn())',
    replace: 'fencing.leased && this.state === State.Fenced',
    tests: ['test/cluster/holes.spec.ts'],
  },
  {
    id: 'unconditional-renewal',
    description: 'unconditional renewal: renew.lua extends (and answers "renewed") without comparing the lease with this incarnation',
    file: 'lua/renew.lua',
    find: "if redis.call('GET', KEYS[2]) == ARGV[2] then",
    replace: 'if true then',
    tests: ['test/redis/lease-renewal.spec.ts'],
  },
  {
    id: 'claim-over-live-owner',
    description: "claim over a live owner: claim.lua replaces another incarnation's entry without looking at its lease",
    file: 'lua/claim.lua',
    find: "if owner and not retired and (owner == ARGV[2] or redis.call('EXISTS', ARGV[5] .. owner) == 1) then",
    replace: 'if owner and not retired and owner == ARGV[2] then',
    tests: ['test/redis/redis-lookup.spec.ts'],
  },
  {
    id: 'no-epoch-increment',
    description: 'no epoch increment: a claim keeps the stored epoch, so a new activation has its predecessor’s fencing token',
    file: 'lua/claim.lua',
    find: "local epoch = math.max(floor, tonumber(stored_epoch or '0')) + 1",
    replace: "local epoch = math.max(floor, tonumber(stored_epoch or '0')) + 0",
    tests: ['test/redis/redis-lookup.spec.ts'],
  },
  {
    id: 'claim-ignores-retired',
    description: 'claim ignores a retired activation: claim.lua answers OWNED with the fenced activation instead of claiming the identity afresh',
    file: 'lua/claim.lua',
    find: "replies[i + 1] = claim(KEYS[3 + i], ARGV[7 + i], retired_of[i] or '')",
    replace: "replies[i + 1] = claim(KEYS[3 + i], ARGV[7 + i], '')",
    tests: ['test/redis/recreate-after-fence.spec.ts'],
  },
  {
    id: 'claim-not-in-set',
    description: "claim not in the incarnation's set: claim.lua writes the entry but never adds its name to the set cleanup and leave read",
    file: 'lua/claim.lua',
    find: 'claimed[#claimed + 1] = string.sub(entry, #entry_prefix + 1)',
    replace: '-- claimed[#claimed + 1] = string.sub(entry, #entry_prefix + 1)',
    tests: ['test/redis/redis-lookup.spec.ts'],
  },
  {
    id: 'no-deadline-sweep',
    description: 'no deadline sweep: the DeadlineSweeper’s timer returns the method instead of calling it, so nothing ever expires',
    file: 'lib/actor/deadline-sweeper.ts',
    find: 'this.timer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);',
    replace: 'this.timer = setInterval(() => this.sweep, SWEEP_INTERVAL_MS);',
    tests: ['test/cluster/deadlines.spec.ts'],
  },
  {
    id: 'no-idle-scan',
    description: 'no idle scan: the IdleCollector’s timer returns the method instead of calling it, so nothing is deactivated when idle',
    file: 'lib/cluster/activation/idle-collector.ts',
    find: 'this.timer = setInterval(() => this.scan(), interval);',
    replace: 'this.timer = setInterval(() => this.scan, interval);',
    tests: ['test/cluster/lifecycle.spec.ts'],
  },
  {
    id: 'underscore-callable',
    description: '`_` methods callable: callableMethods() no longer leaves out names starting with `_`',
    file: 'lib/cluster/callable-methods.ts',
    find: "if (name.startsWith('_') || LIFECYCLE_HOOKS.has(name) || RESERVED_NAMES.has(name)) continue;",
    replace: 'if (LIFECYCLE_HOOKS.has(name) || RESERVED_NAMES.has(name)) continue;',
    tests: ['test/cluster/errors.spec.ts'],
  },
  {
    id: 'no-depth-limit',
    description: 'no depth limit: the codec decodes hostile bytes nested deeper than maxDepth (the decoder’s check never fires)',
    file: 'lib/remote/codec/msgpack-codec.ts',
    find: 'if (depth >= this.maxDepth) throw this.malformed(',
    replace: 'if (depth < 0) throw this.malformed(',
    tests: ['test/remote/codec.spec.ts'],
  },
  {
    id: 'not-here-invalidation',
    description: 'no NOT_HERE invalidation: the caller sends a call on after NOT_HERE but keeps the cached Pid that was wrong',
    file: 'lib/cluster/remoting/remote-caller.ts',
    find: 'if (outcome.forgetPid) this.deps.routing.forgetPid(call);',
    replace: 'if (outcome.forgetPid && response.status !== Status.NOT_HERE) this.deps.routing.forgetPid(call);',
    tests: ['test/cluster/not-here.spec.ts'],
  },
  {
    id: 'leave-without-close',
    description: 'a leaving member ends its streams without telling callers it is closing: requests they wrote meanwhile are lost',
    file: 'lib/cluster/cluster.ts',
    find: 'await this.#remoting?.close(Math.min(this.#drainTimeoutMs, MAX_CLOSE_GRACE_MS));',
    replace: 'void MAX_CLOSE_GRACE_MS;',
    tests: ['test/remote/leave-protocol.spec.ts'],
  },
  {
    id: 'leaving-member-claims',
    description: 'a leaving member still places and claims grains on itself (Redis lookup), leaving entries with no activation',
    file: 'lib/cluster/lookup-member.ts',
    find: 'hostsKind: (kind) => !members.isLeaving && member.hosts(kind),',
    replace: 'hostsKind: (kind) => member.hosts(kind),',
    tests: ['test/redis/graceful-leave.spec.ts'],
  },
  {
    id: 'forged-id-counts',
    description: 'a listed address answering under a member id confirmed at another address replaces it (StaticProvider)',
    file: 'lib/cluster/providers/static-provider.ts',
    find: 'if (other === address || confirmed.id !== peer.id) continue;',
    // NOTE: `other` and `confirmed` still read, so the build (the whole suite's global setup) compiles the mutant.
    replace: 'if (other === other || confirmed === confirmed) continue;',
    tests: ['test/cluster/membership.spec.ts'],
  },
  {
    id: 'callable-builtin-base',
    description: "a grain's built-in base class is callable: an EventEmitter-based grain answers emit() to any caller",
    file: 'lib/cluster/callable-methods.ts',
    find: 'if (proto === Object.prototype || isBuiltinClass(ctor)) break;',
    // NOTE: the names it drops still read, so the build (the whole suite's global setup) compiles the mutant.
    replace: 'if (proto === Object.prototype || (isBuiltinClass(ctor) && false)) break;',
    tests: ['test/cluster/callable-surface.spec.ts'],
  },
  {
    id: 'no-set-size-limit',
    description: 'no Set/Map size limit in the codec: a hash-flooding argument of colliding doubles is decoded (seconds of stall)',
    file: 'lib/remote/codec/msgpack-codec.ts',
    find: 'if (weight > limit) return `${describeCollection(kind, n)} (${counting})',
    replace: 'if (weight < 0) return `${describeCollection(kind, n)} (${counting})',
    tests: ['test/remote/codec.spec.ts'],
  },
  {
    id: 'suspected-placeable',
    description: 'suspicion ignored by placement: new grains still go to a member gossip suspects (a paused member: their calls hang)',
    file: 'lib/cluster/member-list.ts',
    find: 'cached = this.placeableCache = this.listing(self, this.suspected);',
    replace: 'cached = this.placeableCache = this.listing(self, undefined);',
    tests: ['test/e2e/gossip.spec.ts'],
  },
  {
    id: 'gossip-adds-members',
    description: 'gossip adds members: a peer’s entries are kept for any origin, listed by the provider or not',
    file: 'lib/cluster/gossip/gossip-state.ts',
    find: 'if (!listed(state.memberId, state.incarnation)) continue;',
    // NOTE: the names it drops still read, so the build (the whole suite's global setup) compiles the mutant.
    replace: 'if (!listed(state.memberId, state.incarnation) && false) continue;',
    tests: ['test/cluster/gossip/gossip-state.spec.ts'],
  },
  {
    id: 'gossip-watermark-gap',
    description:
      'a delta taken past a gap: a receiver that missed changes holds later ones, passes them on as if it held all, and a member further on never gets the missing ones',
    file: 'lib/cluster/gossip/gossip-state.ts',
    find: 'if (state.after > origin.watermark) continue;',
    replace: 'if (false) continue;',
    tests: ['test/cluster/gossip/gossip-state.spec.ts'],
  },
  {
    id: 'suspicion-permanent',
    description: 'a permanent block: a suspected member is never used again after it is heard (Proto.Actor’s top complaint)',
    file: 'lib/cluster/member-list.ts',
    find: '    } else this.suspected.delete(key);',
    replace: '    } else return;',
    tests: ['test/e2e/gossip.spec.ts'],
  },
  {
    id: 'local-calls-not-crossed',
    description:
      'serializeLocalCalls without effect: a local call skips the codec, so a class instance passes a single-member test that would fail across members',
    file: 'lib/cluster/request-router.ts',
    find: '!call.crossed && !call.crossArguments()) return;',
    replace: '!call.crossed && false) return;',
    tests: ['test/testing/serialize-local-calls.spec.ts'],
  },
  {
    id: 'telemetry-unguarded',
    description: 'telemetry in the call path unguarded: an OpenTelemetry span processor that throws keeps the caller from ever hearing its outcome',
    file: 'lib/observability/call-telemetry.ts',
    find: 'guarded(() => this.record(call, ok, reason));',
    replace: 'this.record(call, ok, reason);',
    tests: ['test/observability/sdk-failures.spec.ts'],
  },
  {
    id: 'own-references-untracked',
    description: "callChains 'references' without the grain's own references: a call after an await carries no chain, so A→B→A waits for its deadline",
    file: 'lib/cluster/request-router.ts',
    find: 'return synchronousTurn() ?? from?.currentTurn();',
    // NOTE: `from` still read, so the build (the whole suite's global setup) compiles the mutant.
    replace: 'return synchronousTurn() ?? (from === undefined ? undefined : undefined);',
    tests: ['test/cluster/call-chains.spec.ts'],
  },
  {
    id: 'activation-guess-first',
    description:
      "callChains 'references' trusting the activation's guess over the synchronous turn: a hub notifying a busy subscriber through its reference gets a false CallCycleError",
    file: 'lib/cluster/request-router.ts',
    find: 'return synchronousTurn() ?? from?.currentTurn();',
    replace: 'return from?.currentTurn() ?? synchronousTurn();',
    tests: ['test/cluster/call-chains.spec.ts'],
  },
  {
    id: 'claim-batch-replies-shifted',
    description: 'claim batch replies handed out in the wrong order: each claim of a batch gets the first identity’s reply',
    file: 'lib/cluster/identity/redis/redis-claims.ts',
    find: '(replies) => part.forEach((p, i) => p.resolve(replies[i]!)),',
    replace: '(replies) => part.forEach((p) => p.resolve(replies[0]!)),',
    tests: ['test/redis/redis-lookup.spec.ts'],
  },
  {
    id: 'shared-empty-queue-written',
    description: 'the shared empty queue written to: every idle mailbox sees the calls of the others',
    file: 'lib/actor/mailbox.ts',
    find: 'if (this.queue === NO_CALLS) this.queue = [call];\n    else this.queue.push(call);',
    replace: 'this.queue.push(call);',
    tests: ['test/actor/mailbox.spec.ts', 'test/cluster/turns.spec.ts'],
  },
  {
    id: 'in-flight-slot-unchecked',
    description: 'a response taken by its id’s slot without checking the id: a late or forged id settles another call',
    file: 'lib/remote/in-flight.ts',
    find: 'if (request !== undefined && request.id === id) {\n      this.slots[slot] = undefined;',
    replace: 'if (request !== undefined) {\n      this.slots[slot] = undefined;',
    tests: ['test/remote/in-flight.spec.ts'],
  },
  {
    id: 'in-flight-slot-order',
    description: 'requests of a broken stream failed (and sent on) in slot order: one caller’s calls overtake each other',
    file: 'lib/remote/in-flight.ts',
    find: 'return requests.sort((a, b) => ((a.id - after) >>> 0) - ((b.id - after) >>> 0));',
    // NOTE: `after` still read, so the build (the whole suite's global setup) compiles the mutant.
    replace: 'void after;\n    return requests;',
    tests: ['test/remote/in-flight.spec.ts', 'test/remote/endpoint-sweep.spec.ts'],
  },
  {
    id: 'shape-varint-scale',
    description: 'the frame shape check reads multi-byte varints wrong: lengths past a frame’s end pass, or good frames are refused',
    file: 'lib/remote/inbound-limits.ts',
    find: 'shift < 70; shift += 7, scale *= 128)',
    replace: 'shift < 70; shift += 7, scale *= 64)',
    tests: ['test/remote/frame-shape.spec.ts'],
  },
];
