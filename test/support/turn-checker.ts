/**
 * Pure checkers for the duplicate-activation tests (no I/O).
 *
 * 1. Turn overlaps. Every member logs each turn it ran: `{ identity, activationId, start,
 *    end, member }`, start/end from `process.hrtime.bigint()` (CLOCK_MONOTONIC: one clock
 *    for every process on the host, so turns logged by different processes compare).
 *    `findActivationOverlaps(turns)` reports every pair of turns of the same identity from
 *    DIFFERENT activation ids whose closed intervals [start, end] overlap: two activations
 *    of one grain ran at the same time. (Turns of one activation may overlap — interleaved
 *    grains — and are not reported; two activations one after the other are fine.)
 *
 * 2. List-append histories. A list-append grain appends unique strings and a read returns
 *    the whole list. `checkListAppend({ reads, appends, final? })` checks, per identity:
 *      fork               every acknowledged read (and the final one) is a prefix of one
 *                         history; reported where the histories branch, with the diverging
 *                         elements and a read on each branch;
 *      lost-append        every acknowledged append is in the final read (default: the
 *                         longest acknowledged read of that identity);
 *      duplicate-element  no element occurs twice in a read (an append applied twice);
 *                         `duplicates: 'ignore'` turns this off;
 *      stale-read         (only when timestamps are given) a read invoked after an append
 *                         was acknowledged contains it;
 *      phantom-element    (only when `attempted` is given) every element read was
 *                         attempted by some append.
 *
 * 2b. Epoch-fenced store histories. `checkEpochHistory(histories)`: per identity, the loads and
 *    writes an epoch-fenced store accepted, in the store's own order (`load|write <epoch>
 *    <activation>`). Reported: an op accepted from an activation older than one that already
 *    loaded or wrote (a lower epoch), and two activations accepted under the same epoch (an
 *    epoch issued twice): either lets a stale activation's write land.
 *
 * 3. JSON lines. `parseJsonLines(text)` → { values, errors, truncated } (a non-JSON line is
 *    an error unless `skipNonJson`; a last line without newline that does not parse — the
 *    process died mid-write — is `truncated`, not an error). `turnRecordsFrom(values,
 *    filter?)` → TurnRecord[] (start/end may be bigint, decimal strings or safe integers; a
 *    number beyond 2^53 was already rounded by JSON.parse and is rejected: log them as
 *    strings). `parseTurnLog(text, filter?)` does both.
 */

export interface TurnRecord {
  identity: string;
  activationId: string;
  start: bigint;
  end: bigint;
  member: string;
  /** Whatever else the log line carried (kind, method, callId, ...). */
  [extra: string]: unknown;
}

export interface TurnOverlap {
  identity: string;
  /** The turn that started first (on ties: the one that ended first). */
  first: TurnRecord;
  second: TurnRecord;
  /** Length of the common part of the two intervals, ns (0 when they only touch). */
  overlapNs: bigint;
  message: string;
}

function describeTurn(t: TurnRecord): string {
  return `activation ${t.activationId} on ${t.member} [${t.start}, ${t.end}]`;
}

/** Every pair of overlapping turns of one identity from different activations; [] when none. */
export function findActivationOverlaps(turns: Iterable<TurnRecord>): TurnOverlap[] {
  const byIdentity = new Map<string, TurnRecord[]>();
  for (const turn of turns) {
    if (turn.end < turn.start) throw new Error(`turn-checker: turn ends before it starts: ${describeTurn(turn)} (${turn.identity})`);
    let list = byIdentity.get(turn.identity);
    if (list === undefined) byIdentity.set(turn.identity, (list = []));
    list.push(turn);
  }
  const overlaps: TurnOverlap[] = [];
  for (const [identity, list] of byIdentity) {
    list.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : 0));
    // Sweep: `open` holds the turns that may still overlap the next one (end >= its start).
    let open: TurnRecord[] = [];
    for (const turn of list) {
      open = open.filter((o) => o.end >= turn.start);
      for (const other of open) {
        if (other.activationId === turn.activationId) continue;
        const overlapNs = (other.end < turn.end ? other.end : turn.end) - turn.start;
        overlaps.push({
          identity,
          first: other,
          second: turn,
          overlapNs,
          message: `${identity}: ${describeTurn(other)} overlaps ${describeTurn(turn)} by ${overlapNs} ns`,
        });
      }
      open.push(turn);
    }
  }
  return overlaps;
}

// ---------------------------------------------------------------------------------------
// List-append
// ---------------------------------------------------------------------------------------

export interface ListRead {
  identity: string;
  value: readonly string[];
  /** For messages: an operation id, the member, ... */
  label?: string;
  /** When the read was invoked (e.g. hrtime ns); with ListAppend.ackedAt: the stale-read check. */
  invokedAt?: bigint;
}

export interface ListAppend {
  identity: string;
  element: string;
  label?: string;
  /** When its acknowledgement arrived (same clock as ListRead.invokedAt). */
  ackedAt?: bigint;
}

export interface ListAppendInput {
  /** Acknowledged reads. */
  reads: readonly ListRead[];
  /** Acknowledged appends. */
  appends: readonly ListAppend[];
  /** The final read per identity (after the writes stopped); default: its longest read. */
  final?: ReadonlyMap<string, readonly string[]> | Readonly<Record<string, readonly string[]>>;
  /** Every element any append tried (acknowledged or not): enables the phantom-element check. */
  attempted?: Iterable<{ identity: string; element: string }>;
  /** Default 'error'. */
  duplicates?: 'error' | 'ignore';
}

export type ListViolation =
  | {
      kind: 'fork';
      identity: string;
      /** Index where the histories diverge (the common prefix's length). */
      index: number;
      /** One entry per branch: its element at `index` and one read on that branch. */
      branches: Array<{ element: string; read: ListRead }>;
      message: string;
    }
  | { kind: 'lost-append'; identity: string; element: string; append: ListAppend; finalLength: number; message: string }
  | { kind: 'duplicate-element'; identity: string; element: string; read: ListRead; indexes: number[]; message: string }
  | { kind: 'stale-read'; identity: string; element: string; read: ListRead; append: ListAppend; message: string }
  | { kind: 'phantom-element'; identity: string; element: string; read: ListRead; index: number; message: string };

export interface ListIdentitySummary {
  identity: string;
  reads: number;
  appends: number;
  /** Length of the longest read (the history, when there is no fork). */
  historyLength: number;
  finalLength: number;
  finalSource: 'final' | 'longest-read' | 'none';
}

export interface ListAppendReport {
  ok: boolean;
  violations: ListViolation[];
  identities: ListIdentitySummary[];
}

function describeRead(read: ListRead): string {
  return `${read.label === undefined ? 'read' : `read ${read.label}`} (${read.value.length} elements)`;
}

interface TrieNode {
  children: Map<string, TrieNode>;
  /** A read passing through (or ending at) this node. */
  example: ListRead;
}

function finalFor(final: ListAppendInput['final'], identity: string): readonly string[] | undefined {
  if (final === undefined) return undefined;
  if (final instanceof Map) return final.get(identity);
  return Object.prototype.hasOwnProperty.call(final, identity) ? (final as Readonly<Record<string, readonly string[]>>)[identity] : undefined;
}

/** Checks list-append results; see the module comment. */
export function checkListAppend(input: ListAppendInput): ListAppendReport {
  const violations: ListViolation[] = [];
  const identities = new Set<string>();
  const readsOf = new Map<string, ListRead[]>();
  const appendsOf = new Map<string, ListAppend[]>();
  for (const read of input.reads) {
    identities.add(read.identity);
    let list = readsOf.get(read.identity);
    if (list === undefined) readsOf.set(read.identity, (list = []));
    list.push(read);
  }
  for (const append of input.appends) {
    identities.add(append.identity);
    let list = appendsOf.get(append.identity);
    if (list === undefined) appendsOf.set(append.identity, (list = []));
    list.push(append);
  }
  const finalKeys = input.final instanceof Map ? [...input.final.keys()] : Object.keys(input.final ?? {});
  for (const identity of finalKeys) identities.add(identity);
  const attempted = new Map<string, Set<string>>();
  if (input.attempted !== undefined) {
    for (const { identity, element } of input.attempted) {
      let set = attempted.get(identity);
      if (set === undefined) attempted.set(identity, (set = new Set()));
      set.add(element);
    }
  }

  const summaries: ListIdentitySummary[] = [];
  for (const identity of [...identities].sort()) {
    const reads = readsOf.get(identity) ?? [];
    const appends = appendsOf.get(identity) ?? [];
    const explicitFinal = finalFor(input.final, identity);
    const longest = reads.reduce<ListRead | undefined>((best, r) => (best === undefined || r.value.length > best.value.length ? r : best), undefined);
    const finalRead: ListRead | undefined = explicitFinal !== undefined ? { identity, value: explicitFinal, label: 'final' } : longest;
    const all = explicitFinal !== undefined && finalRead !== undefined ? [...reads, finalRead] : reads;

    // Forks: a trie of every read; a node with two children is where histories branch.
    if (all.length > 0) {
      const root: TrieNode = { children: new Map(), example: all[0]! };
      for (const read of all) {
        let node = root;
        for (const element of read.value) {
          let child = node.children.get(element);
          if (child === undefined) node.children.set(element, (child = { children: new Map(), example: read }));
          node = child;
        }
      }
      const stack: Array<{ node: TrieNode; depth: number }> = [{ node: root, depth: 0 }];
      while (stack.length > 0) {
        const { node, depth } = stack.pop()!;
        if (node.children.size > 1) {
          const branches = [...node.children].map(([element, child]) => ({ element, read: child.example }));
          violations.push({
            kind: 'fork',
            identity,
            index: depth,
            branches,
            message: `${identity}: histories fork after ${depth} common elements: ${branches.map((b) => `${JSON.stringify(b.element)} in ${describeRead(b.read)}`).join(' vs ')}`,
          });
        }
        for (const child of node.children.values()) stack.push({ node: child, depth: depth + 1 });
      }
    }

    // Duplicates and phantoms, per read.
    const known = attempted.get(identity);
    for (const read of all) {
      if (input.duplicates !== 'ignore') {
        const positions = new Map<string, number[]>();
        read.value.forEach((element, index) => {
          const list = positions.get(element);
          if (list === undefined) positions.set(element, [index]);
          else list.push(index);
        });
        for (const [element, indexes] of positions) {
          if (indexes.length > 1) {
            violations.push({
              kind: 'duplicate-element',
              identity,
              element,
              read,
              indexes,
              message: `${identity}: ${JSON.stringify(element)} appears ${indexes.length} times in ${describeRead(read)}, at ${indexes.join(', ')}`,
            });
          }
        }
      }
      if (input.attempted !== undefined) {
        read.value.forEach((element, index) => {
          if (known === undefined || !known.has(element)) {
            violations.push({
              kind: 'phantom-element',
              identity,
              element,
              read,
              index,
              message: `${identity}: ${describeRead(read)} holds ${JSON.stringify(element)} at ${index}, which no append attempted`,
            });
          }
        });
      }
    }

    // Lost appends: acknowledged but not in the final read.
    const finalSet = new Set(finalRead?.value ?? []);
    for (const append of appends) {
      if (!finalSet.has(append.element)) {
        violations.push({
          kind: 'lost-append',
          identity,
          element: append.element,
          append,
          finalLength: finalRead?.value.length ?? 0,
          message: `${identity}: acknowledged append ${JSON.stringify(append.element)}${append.label === undefined ? '' : ` (${append.label})`} is missing from the ${explicitFinal !== undefined ? 'final read' : finalRead !== undefined ? 'longest read' : 'reads (there are none)'} (${finalRead?.value.length ?? 0} elements)`,
        });
      }
    }

    // Stale reads: invoked after an append's acknowledgement, yet without it.
    for (const read of reads) {
      if (read.invokedAt === undefined) continue;
      const readInvokedAt = read.invokedAt;
      const contents = new Set(read.value);
      for (const append of appends) {
        if (append.ackedAt !== undefined && append.ackedAt < readInvokedAt && !contents.has(append.element)) {
          violations.push({
            kind: 'stale-read',
            identity,
            element: append.element,
            read,
            append,
            message: `${identity}: ${describeRead(read)} invoked at ${readInvokedAt} lacks ${JSON.stringify(append.element)}, acknowledged at ${append.ackedAt}`,
          });
        }
      }
    }

    summaries.push({
      identity,
      reads: reads.length,
      appends: appends.length,
      historyLength: Math.max(0, ...all.map((r) => r.value.length)),
      finalLength: finalRead?.value.length ?? 0,
      finalSource: explicitFinal !== undefined ? 'final' : finalRead !== undefined ? 'longest-read' : 'none',
    });
  }
  return { ok: violations.length === 0, violations, identities: summaries };
}

// ---------------------------------------------------------------------------------------
// JSON lines
// ---------------------------------------------------------------------------------------

export interface JsonLinesResult {
  /** Every line that parsed, in order. */
  values: unknown[];
  /** Lines that did not parse (1-based line numbers); always empty with skipNonJson. */
  errors: Array<{ line: number; text: string; error: string }>;
  /** A last line with no newline that did not parse (the writer died mid-line). */
  truncated: string | undefined;
}

/** Parses JSON-lines text; blank lines are skipped. */
export function parseJsonLines(text: string, options: { skipNonJson?: boolean } = {}): JsonLinesResult {
  const result: JsonLinesResult = { values: [], errors: [], truncated: undefined };
  const lines = text.split('\n');
  const complete = text.endsWith('\n');
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    try {
      result.values.push(JSON.parse(line));
    } catch (error) {
      if (i === lines.length - 1 && !complete) result.truncated = line;
      else if (!options.skipNonJson) result.errors.push({ line: i + 1, text: line, error: (error as Error).message });
    }
  });
  return result;
}

function toBigInt(value: unknown, field: string, where: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isInteger(value)) {
    if (!Number.isSafeInteger(value))
      throw new Error(`turn-checker: ${field} ${value} of ${where} is beyond 2^53 and was rounded by JSON.parse; log hrtime values as strings`);
    return BigInt(value);
  }
  throw new Error(`turn-checker: ${field} of ${where} is not an integer (bigint, decimal string or safe integer): ${JSON.stringify(value)}`);
}

/** Is this value shaped like a turn record (identity, activationId, start, end, member)? */
export function isTurnLike(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.identity === 'string' && typeof v.activationId === 'string' && typeof v.member === 'string' && v.start !== undefined && v.end !== undefined;
}

/**
 * Turn records from parsed values: those passing `filter` (default: every turn-shaped
 * object, see isTurnLike); start/end converted to bigint (throws on a value that cannot be).
 */
export function turnRecordsFrom(values: Iterable<unknown>, filter: (value: Record<string, unknown>) => boolean = () => true): TurnRecord[] {
  const records: TurnRecord[] = [];
  for (const value of values) {
    if (!isTurnLike(value) || !filter(value)) continue;
    const where = `turn of ${String(value.identity)} (${String(value.activationId)})`;
    records.push({
      ...value,
      identity: value.identity as string,
      activationId: value.activationId as string,
      member: value.member as string,
      start: toBigInt(value.start, 'start', where),
      end: toBigInt(value.end, 'end', where),
    });
  }
  return records;
}

/** parseJsonLines (non-JSON lines skipped) + turnRecordsFrom. */
export function parseTurnLog(text: string, filter?: (value: Record<string, unknown>) => boolean): TurnRecord[] {
  return turnRecordsFrom(parseJsonLines(text, { skipNonJson: true }).values, filter);
}

/** One op an epoch-fenced store accepted. */
export interface EpochOp {
  readonly op: 'load' | 'write';
  readonly epoch: number;
  readonly activation: string;
}

/** An op the store should not have accepted, or an epoch two activations shared. */
export interface EpochViolation {
  readonly identity: string;
  readonly kind: 'older-epoch' | 'shared-epoch';
  readonly detail: string;
}

/** Parse `load|write <epoch> <activation>` lines (as the e2e member's store records them). */
export function parseEpochOps(lines: readonly string[]): EpochOp[] {
  return lines.map((line) => {
    const [op, epoch, ...rest] = line.split(' ');
    if ((op !== 'load' && op !== 'write') || epoch === undefined || rest.length === 0 || !/^\d+$/.test(epoch))
      throw new Error(`not a store op: ${JSON.stringify(line)}`);
    return { op, epoch: Number(epoch), activation: rest.join(' ') };
  });
}

/**
 * Per identity, in the store's order: every accepted op's epoch is at least the highest seen
 * so far, and the highest epoch belongs to one activation only.
 */
export function checkEpochHistory(histories: ReadonlyMap<string, readonly EpochOp[]>): EpochViolation[] {
  const violations: EpochViolation[] = [];
  for (const [identity, ops] of histories) {
    let highest = -1;
    let holder = '';
    for (const [i, op] of ops.entries()) {
      if (op.epoch < highest) {
        violations.push({
          identity,
          kind: 'older-epoch',
          detail: `#${i} ${op.op} by ${op.activation} at epoch ${op.epoch}, after epoch ${highest} (${holder})`,
        });
      } else if (op.epoch === highest && op.activation !== holder) {
        violations.push({ identity, kind: 'shared-epoch', detail: `#${i} ${op.op} by ${op.activation} at epoch ${op.epoch}, which ${holder} holds` });
      } else if (op.epoch > highest) {
        highest = op.epoch;
        holder = op.activation;
      }
    }
  }
  return violations;
}
