/**
 * A Consul-compatible HTTP agent for the tests and the local demo (Consul itself cannot be
 * installed here). It implements exactly the agent endpoints a TTL-check cluster provider
 * uses, with the semantics of a single Consul CE agent in dev mode (one node, one
 * datacenter, the agent is also the server). Facts and source keys (D-…, C-…, I-…) are those
 * of shared/reference/consul-api.md; each behaviour below names the ones it follows.
 *
 * API
 *
 *   const agent = await ConsulTestAgent.start({ port?: 0, host?: '127.0.0.1', token?,
 *     datacenter?: 'dc1', nodeName?: 'test-node', nodeAddress?: '127.0.0.1',
 *     minDeregisterCriticalAfter?: 60_000, reapInterval?: 30_000 })
 *   agent.url ('http://127.0.0.1:<port>')  agent.port  agent.index (the raft-like index now)
 *   agent.services()    the registered services with their checks and the raw register
 *                       bodies as received (assertions)
 *   agent.requests      every request received: method, path, query, the token Consul would
 *                       use and where it came from, body, answered status; most recent last
 *   agent.setCheckStatus(checkId, status, output?)   change a check out of band (an operator
 *                       or a failing node): the agent-state update Consul applies, without
 *                       resetting the TTL timer; output omitted = keep the current output
 *   agent.stop()        crash: stop listening, destroy every open connection (blocking
 *                       queries end without an answer), stop the TTL timers and the reaper.
 *                       This object keeps its state for assertions. `start({ port })` of a NEW
 *                       agent is "Consul back" as a restarted dev agent (no data dir): no
 *                       services, no check states, and an index that starts low again, so
 *                       passes get 404 until the client re-registers and a watcher sees the
 *                       index go backwards (D-block: it must reset to 0).
 *
 * Covered, with the Consul behaviour followed
 *
 *   Routing and errors (C-reg, C-http wrap/Index): PUT-only agent endpoints and GET-only
 *     /v1/health/service/; a wrong method → 405 `method GET not allowed` with
 *     `Allow: OPTIONS,PUT` (OPTIONS → 200 with that header); unknown path → 404
 *     `Invalid URL path: not a recognized HTTP API endpoint` (+ newline, as Go's Fprintln);
 *     a registered prefix without its slash → 301 to it (Go ServeMux); errors are plain text
 *     (`text/plain; charset=utf-8`), writes answer 200 with an empty body and no
 *     Content-Type; `X-Consul-Default-ACL-Policy` (allow/deny) on every endpoint answer; a
 *     query Go cannot parse (bad %-escape, `;`) → 500 with an empty body; a path with an
 *     unprintable character → 400 empty (PrintablePathCheckHandler); a path with a bad
 *     %-escape → 400 `400 Bad Request` and the connection closed (Go's server). `ns` (query)
 *     or `X-Consul-Namespace` → 400 `Invalid query parameter: "ns" - Namespaces are a
 *     Consul Enterprise feature` (CE parseEntMeta).
 *   Register (D-svc, C-ep, C-sd, C-ct, C-json, C-agent): the body is decoded as Go does:
 *     first JSON value only, Go's syntax error texts, `Request decode failed: EOF` for an
 *     empty body, keys matched exactly then case-insensitively, unknown top-level keys
 *     ignored (so a top-level DeregisterCriticalServiceAfter is ignored), unknown keys inside
 *     Check/Checks → 400 `json: unknown field "ID"`, Go type errors (`json: cannot unmarshal
 *     string into Go struct field .Port of type int`), snake aliases (enable_tag_override,
 *     tagged_addresses, deregister_critical_service_after, args, script_args, …), TTL /
 *     DeregisterCriticalServiceAfter / Interval / Timeout as Go duration strings (Go's
 *     ParseDuration and its error texts) or a JSON number read as nanoseconds. Then, in
 *     Consul's order: `Missing service name`, `Invalid service address` (0.0.0.0, ::, [::]),
 *     `ACL not found`, `Invalid Weights: …`, `Invalid Service Meta: …`, `Invalid check: …`
 *     (CheckType.Validate texts; an all-zero Check is ignored), `Status for checks must
 *     'passing', 'warning', 'critical'`, the permission check, then tagged-address
 *     validation (500, as AddService errors are). ID defaults to Name; check ID
 *     `service:<id>` (`service:<id>:<n>` with several checks), check name `Service '<name>'
 *     check`; a new check starts critical unless Status is given; re-registering keeps the
 *     status and output of existing check IDs, starts a fresh TTL timer (and a fresh
 *     "last output"), and resets the reap clock (a new CheckState); checks missing from the
 *     request survive unless `replace-existing-checks` (bare or `=true`). Weights default
 *     {1,1}; lan_ipv4/wan_ipv4 (or _ipv6) tagged addresses are added from an IP Address.
 *   Deregister (D-svc, C-ep, C-acl): removes the service and its checks; unknown ID → 404
 *     `Unknown service ID "x". Ensure that the service ID is passed, not the service name.`
 *   pass / warn / fail / update (D-chk, C-ep, C-acl, C-ttl, C-local): `note` (or the update
 *     body's Output) becomes Output, truncated past 4096 bytes (or the check's smaller
 *     OutputMaxSize) as `<head> ... (captured 4096 of N bytes)`; the TTL timer restarts;
 *     update's body is decoded strictly (unknown key → 400), bad status → 400 `Invalid check
 *     status: 'x'`; unknown check → 404 `Unknown check ID "x". Ensure that the check ID is
 *     passed, not the check name.`
 *   TTL (C-ttl, C-local): no update within TTL → critical with `TTL expired` or `TTL expired
 *     (last output before timeout follows): <last output>`; the timer does not re-arm.
 *   Index (D-block, C-bq, C-http setIndex): one raft-like index, bumped by every write that
 *     changes the catalog: a register that changes the service or a check, a deregister, a
 *     check STATUS change (pass after critical, fail, TTL expiry), a reap. A service's index
 *     is the index of the last such write touching that service name (instances and their
 *     checks, deletions included), or the index of the whole catalog when the name has no
 *     instance. An identical status+output changes nothing and wakes no one.
 *     OUTPUT-ONLY CHANGES (same status, new output): real Consul updates the agent at once
 *     but syncs them to the catalog only after check_update_interval (5 min, ±50 %; C-local,
 *     I-9113). This agent updates its copy at once (so /health/service already shows the new
 *     output) and never bumps the index for them, so watchers are not woken — the delayed
 *     sync (and its late index bump) is not modelled.
 *   /v1/health/service/<name> (D-health, C-hep, C-http, D-cons, D-block, C-bq, C-rpcto):
 *     names match case-insensitively; entries `{Node, Service, Checks}` with the node's
 *     passing `serfHealth` check first, then the service's checks (Type "ttl"), sorted by
 *     ID; `Service.Tags`/`ServiceTags` `[]` when unset, `Service.Meta` null when none,
 *     `Service.Port` omitted when 0 (omitempty, as NodeService); `[]` when none. Query:
 *     `passing` (bare or a Go bool; every check incl. serfHealth must be passing; a bad
 *     value → 400 `Invalid value for ?passing`, checked AFTER the blocking wait as Consul
 *     does), `tag` (repeatable, all must match, case-insensitive), `node-meta`, `dc` (other
 *     than the agent's → 500 `No path to datacenter`), `stale`/`consistent`/`leader`/
 *     `max_stale` (parsed and validated; `stale`+`consistent` → 400; the data is the same),
 *     `index`+`wait` (blocks only if index > 0; returns when the service's index > index or
 *     at wait + up to wait/16 jitter; default 5m, capped at 10m, wait <= 0 = default; bad →
 *     400 `Invalid index` / `Invalid wait time`), `pretty`. Headers: `X-Consul-Index` (never
 *     0), `X-Consul-KnownLeader: true`, `X-Consul-LastContact: 0`,
 *     `X-Consul-Effective-Consistency`, `X-Consul-Query-Backend: blocking-query`.
 *   DeregisterCriticalServiceAfter (D-chk, C-agent reapServicesInternal, C-local): read from
 *     the check; a value below the minimum (Consul: 1m, `check_deregister_interval_min`) is
 *     raised to it; the reaper runs every reap interval (Consul: 30s, `check_reap_interval`)
 *     and removes a service (with all its checks) whose check has been critical for longer
 *     than that, counted from when the check last BECAME critical through an update (a
 *     check registered critical and never updated is not reaped until it turns critical,
 *     e.g. at TTL expiry).
 *   ACL (D-api, C-http parseTokenInternal, C-acl, C-aclerr): with `token` set ACLs are on
 *     with default deny and `token` is a management token. Token: `?token=` >
 *     `X-Consul-Token` > `Authorization: Bearer <t>`; none (or `anonymous`) = the anonymous
 *     token. Anonymous writes → 403 `Permission denied: anonymous token lacks permission
 *     'service:write' on "<name>". The anonymous token is used implicitly when a request
 *     does not specify a token.` (after the 404 for unknown IDs, as Consul vets); anonymous
 *     reads are filtered → 200 `[]` (headers and blocking as usual); an unknown token → 403
 *     `ACL not found` on every endpoint. Without `token` ACLs are off and every token works.
 *
 * The only deliberate departure from Consul's timing: `minDeregisterCriticalAfter` and
 * `reapInterval` can be made smaller than Consul's 1m / 30s for tests (their defaults are
 * Consul's).
 *
 * Not covered
 *
 *   Catalog, KV, sessions, agent/self, status/leader and every other endpoint (they answer
 *   404 like an unknown path); non-TTL checks (a VALID HTTP/TCP/script/gRPC/alias check
 *   definition → 400 `Invalid check: the consul test agent implements TTL checks only`);
 *   Kind/Proxy/Connect/Locality/SocketPath/Token are decoded but not modelled (Kind is
 *   echoed); `filter` (bexpr): any non-empty filter → 500 `Failed to create boolean
 *   expression evaluator: filter expressions are not implemented by the consul test agent`
 *   rather than a silently unfiltered answer; `near`, `peer`, `cached` are ignored; no
 *   raft, no anti-entropy, no persistence, one node whose serfHealth is always passing;
 *   consistency modes are validated and echoed but all read the same state. Go type-error
 *   texts for exotic mismatches (e.g. a string where a whole Check object is expected) are
 *   approximations; status codes and the `Request decode failed: ` prefix are exact. A
 *   `null` inside `Checks` makes Consul's handler panic (nil pointer), after which Go's
 *   server closes the connection without an answer: this agent does the same.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIPv4, isIPv6, type Socket } from 'node:net';

export type ConsulCheckStatus = 'passing' | 'warning' | 'critical';

export interface ConsulTestAgentOptions {
  /** 0 = a free port (default 0). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** A management token; when set, ACLs are on with default deny. */
  token?: string;
  /** Default 'dc1'. */
  datacenter?: string;
  /** Default 'test-node'. */
  nodeName?: string;
  /** Default '127.0.0.1'. */
  nodeAddress?: string;
  /** ms; DeregisterCriticalServiceAfter values below it are raised to it. Default 60_000 (Consul's). */
  minDeregisterCriticalAfter?: number;
  /** ms between reaper runs. Default 30_000 (Consul's). */
  reapInterval?: number;
}

export interface ConsulTestAgentRequest {
  /** Date.now() when the request was complete. */
  at: number;
  method: string;
  /** Decoded path, as Go's req.URL.Path. */
  path: string;
  /** The raw query string (without '?'). */
  rawQuery: string;
  /** First value of each query parameter (Go's query.Get). */
  query: Record<string, string>;
  /** The token Consul would use ('' = none, so the anonymous token). */
  token: string;
  tokenSource: 'query' | 'header' | 'bearer' | undefined;
  body: string;
  /** The status answered; undefined while pending or when the connection ended without one. */
  status: number | undefined;
}

export interface ConsulTestAgentCheck {
  checkId: string;
  name: string;
  notes: string;
  type: 'ttl';
  status: ConsulCheckStatus;
  output: string;
  ttlMs: number;
  /** Effective (after raising to the minimum); undefined when the check has none. */
  deregisterCriticalServiceAfterMs: number | undefined;
  /** Date.now() of when it last became critical through an update (Consul's CriticalTime). */
  criticalSince: number | undefined;
  createIndex: number;
  modifyIndex: number;
}

export interface ConsulTestAgentService {
  id: string;
  name: string;
  tags: string[];
  address: string;
  port: number;
  meta: Record<string, string> | null;
  weights: { Passing: number; Warning: number };
  createIndex: number;
  modifyIndex: number;
  checks: ConsulTestAgentCheck[];
  /** Every accepted register body for this ID, raw as received, oldest first. */
  registerBodies: string[];
}

// ---------------------------------------------------------------------------------------------
// Constants

const DEFAULT_QUERY_TIME_MS = 5 * 60_000; // C-rpcto DefaultQueryTime
const MAX_QUERY_TIME_MS = 10 * 60_000; // C-rpcto MaxQueryTime
const JITTER_FRACTION = 16; // C-rpcto structs.JitterFraction
const OUTPUT_MAX_SIZE = 4096; // C-ttl checks.DefaultBufSize
const INITIAL_INDEX = 10; // the node's registration; the first user write gets 11
const MAX_TIMER_MS = 2 ** 31 - 1;
const ANONYMOUS_TOKEN = 'anonymous'; // acl.AnonymousTokenSecret
const VALID_STATUS = new Set(['passing', 'warning', 'critical']);

const INVALID_URL_V1 = 'Invalid URL path: not a recognized HTTP API endpoint\n';
const INVALID_URL_OTHER = "Invalid URL path: if attempting to use the HTTP API, ensure the path starts with '/v1/'\n";
const UI_DISABLED = 'Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart.';
const NS_QUERY_ERROR = 'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature';
const NS_HEADER_ERROR = 'Invalid header: "X-Consul-Namespace" - Namespaces are a Consul Enterprise feature';
const FILTER_ERROR = 'Failed to create boolean expression evaluator: filter expressions are not implemented by the consul test agent';
const TTL_ONLY_ERROR = 'Invalid check: the consul test agent implements TTL checks only';

// ---------------------------------------------------------------------------------------------
// Go formatting helpers

/** unicode.IsPrint, approximately: not a control/format/unassigned/separator, except ' '. */
function isGoPrint(ch: string): boolean {
  return ch === ' ' || !/[\p{C}\p{Z}]/u.test(ch);
}

/** strconv.Quote (and fmt's %q of a string). */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (isGoPrint(ch)) out += ch;
    else if (cp === 7) out += '\\a';
    else if (cp === 8) out += '\\b';
    else if (cp === 12) out += '\\f';
    else if (cp === 10) out += '\\n';
    else if (cp === 13) out += '\\r';
    else if (cp === 9) out += '\\t';
    else if (cp === 11) out += '\\v';
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

/** The time package's own quote (used in ParseDuration errors). */
function timeQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x80 || cp < 0x20) {
      for (const byte of Buffer.from(ch, 'utf8')) out += `\\x${byte.toString(16).padStart(2, '0')}`;
    } else {
      if (ch === '"' || ch === '\\') out += '\\';
      out += ch;
    }
  }
  return `${out}"`;
}

/** encoding/json's quoteChar for a byte in a syntax error. */
function quoteChar(c: number): string {
  if (c === 0x27) return `'\\''`;
  if (c === 0x22) return `'"'`;
  return `'${goQuote(String.fromCharCode(c)).slice(1, -1)}'`;
}

const DURATION_UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  '\u00b5s': 1_000n,
  '\u03bcs': 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const TWO_63 = 1n << 63n;

/** time.ParseDuration: nanoseconds, or Go's error text. Works on UTF-8 bytes as Go does. */
export function parseGoDuration(input: string): { ns: bigint } | { error: string } {
  const invalid = { error: `time: invalid duration ${timeQuote(input)}` };
  const bytes = Buffer.from(input, 'utf8');
  let i = 0;
  let neg = false;
  if (bytes.length > 0 && (bytes[0] === 0x2d || bytes[0] === 0x2b)) {
    neg = bytes[0] === 0x2d;
    i = 1;
  }
  if (bytes.length - i === 1 && bytes[i] === 0x30) return { ns: 0n };
  if (i === bytes.length) return invalid;
  const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
  let total = 0n;
  while (i < bytes.length) {
    if (!(bytes[i] === 0x2e || isDigit(bytes[i]))) return invalid;
    let v = 0n;
    const intStart = i;
    while (isDigit(bytes[i])) {
      if (v > (TWO_63 - 1n) / 10n) return invalid; // leadingInt overflow
      v = v * 10n + BigInt(bytes[i]! - 0x30);
      if (v > TWO_63) return invalid;
      i++;
    }
    const pre = i !== intStart;
    let f = 0n;
    let scale = 1;
    let post = false;
    if (bytes[i] === 0x2e) {
      i++;
      const fracStart = i;
      let overflow = false;
      while (isDigit(bytes[i])) {
        if (!overflow) {
          if (f > (TWO_63 - 1n) / 10n) overflow = true;
          else {
            const y = f * 10n + BigInt(bytes[i]! - 0x30);
            if (y > TWO_63) overflow = true;
            else {
              f = y;
              scale *= 10;
            }
          }
        }
        i++;
      }
      post = i !== fracStart;
    }
    if (!pre && !post) return invalid;
    const unitStart = i;
    while (i < bytes.length && !(bytes[i] === 0x2e || isDigit(bytes[i]))) i++;
    if (i === unitStart) return { error: `time: missing unit in duration ${timeQuote(input)}` };
    const unitText = bytes.subarray(unitStart, i).toString('utf8');
    const unit = DURATION_UNITS[unitText];
    if (unit === undefined) return { error: `time: unknown unit ${timeQuote(unitText)} in duration ${timeQuote(input)}` };
    if (v > TWO_63 / unit) return invalid;
    v *= unit;
    if (f > 0n) {
      v += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
      if (v > TWO_63) return invalid;
    }
    total += v;
    if (total > TWO_63) return invalid;
  }
  if (neg) return { ns: -total };
  if (total > TWO_63 - 1n) return invalid;
  return { ns: total };
}

/** time.Duration(float64): truncation; out of range gives the minimum int64 (amd64). */
function floatToDuration(v: number): bigint {
  if (!Number.isFinite(v) || Math.abs(v) >= 2 ** 63) return -TWO_63;
  return BigInt(Math.trunc(v));
}

function nsToMs(ns: bigint): number {
  return Number(ns) / 1e6;
}

/** url.QueryUnescape / url.PathUnescape; undefined on a bad %-escape (Go's error). */
function goUnescape(s: string, plusIsSpace: boolean): string | undefined {
  const src = Buffer.from(s, 'latin1');
  const out: number[] = [];
  const hex = (c: number | undefined): number => {
    if (c === undefined) return -1;
    if (c >= 0x30 && c <= 0x39) return c - 0x30;
    if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
    if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
    return -1;
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === 0x25) {
      const hi = hex(src[i + 1]);
      const lo = hex(src[i + 2]);
      if (hi < 0 || lo < 0) return undefined;
      out.push(hi * 16 + lo);
      i += 2;
    } else if (c === 0x2b && plusIsSpace) out.push(0x20);
    else out.push(c);
  }
  return Buffer.from(out).toString('utf8');
}

/** url.ParseQuery: all values, and whether Go would report an error. */
function goParseQuery(raw: string): { values: Map<string, string[]>; error: boolean } {
  const values = new Map<string, string[]>();
  let error = false;
  for (const part of raw.split('&')) {
    if (part.includes(';')) {
      error = true;
      continue;
    }
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = goUnescape(eq < 0 ? part : part.slice(0, eq), true);
    const value = goUnescape(eq < 0 ? '' : part.slice(eq + 1), true);
    if (key === undefined || value === undefined) {
      error = true;
      continue;
    }
    const list = values.get(key);
    if (list) list.push(value);
    else values.set(key, [value]);
  }
  return { values, error };
}

/** strconv.ParseBool. */
function goParseBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** encoding/json output: HTML-safe escapes as Go's json.Marshal; pretty = MarshalIndent(4 spaces) + "\n". */
function goJson(value: unknown, pretty: boolean): string {
  const text = pretty ? `${JSON.stringify(value, null, 4)}\n` : JSON.stringify(value);
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** net.ParseIP classification: 4 (incl. IPv4-mapped IPv6), 6, or undefined. */
function ipVersion(address: string): 4 | 6 | undefined {
  if (isIPv4(address)) return 4;
  if (address.includes('%') || !isIPv6(address)) return undefined;
  // To4() is non-nil for an IPv4-mapped address; the URL parser normalises it to ::ffff:xxxx:xxxx.
  return /^\[::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}\]$/.test(new URL(`http://[${address}]/`).hostname) ? 4 : 6;
}

// ---------------------------------------------------------------------------------------------
// encoding/json, as far as Consul's decoding depends on it

type JVal =
  | { t: 'null' }
  | { t: 'bool'; v: boolean }
  | { t: 'num'; raw: string }
  | { t: 'str'; v: string }
  | { t: 'arr'; items: JVal[] }
  | { t: 'obj'; entries: Array<[string, JVal]> };

class JsonSyntaxError extends Error {}

/** Reads the FIRST JSON value of a body as json.Decoder.Decode does (the rest is ignored), with Go's error texts. */
class GoJsonReader {
  private p = 0;
  constructor(private readonly b: Buffer) {}

  readTop(): JVal {
    this.ws();
    if (this.p >= this.b.length) throw new JsonSyntaxError('EOF');
    return this.value();
  }

  private eof(): never {
    throw new JsonSyntaxError('unexpected EOF');
  }

  private invalid(c: number, context: string): never {
    throw new JsonSyntaxError(`invalid character ${quoteChar(c)} ${context}`);
  }

  private ws(): void {
    while (this.p < this.b.length) {
      const c = this.b[this.p];
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return;
      this.p++;
    }
  }

  private peek(): number {
    if (this.p >= this.b.length) this.eof();
    return this.b[this.p]!;
  }

  private value(): JVal {
    const c = this.peek();
    if (c === 0x7b) return this.object();
    if (c === 0x5b) return this.array();
    if (c === 0x22) return { t: 'str', v: this.string() };
    if (c === 0x74) return this.literal('true', { t: 'bool', v: true });
    if (c === 0x66) return this.literal('false', { t: 'bool', v: false });
    if (c === 0x6e) return this.literal('null', { t: 'null' });
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return { t: 'num', raw: this.number() };
    this.invalid(c, 'looking for beginning of value');
  }

  private literal(word: string, result: JVal): JVal {
    for (let i = 1; i < word.length; i++) {
      this.p++;
      const c = this.peek();
      if (c !== word.charCodeAt(i)) this.invalid(c, `in literal ${word} (expecting ${quoteChar(word.charCodeAt(i))})`);
    }
    this.p++;
    return result;
  }

  private number(): string {
    const b = this.b;
    const start = this.p;
    const digit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
    if (b[this.p] === 0x2d) {
      this.p++;
      const c = this.peek();
      if (!digit(c)) this.invalid(c, 'in numeric literal');
    }
    if (b[this.p] === 0x30) this.p++;
    else while (digit(b[this.p])) this.p++;
    if (b[this.p] === 0x2e) {
      this.p++;
      const c = this.peek();
      if (!digit(c)) this.invalid(c, 'after decimal point in numeric literal');
      while (digit(b[this.p])) this.p++;
    }
    if (b[this.p] === 0x65 || b[this.p] === 0x45) {
      this.p++;
      let c = this.peek();
      if (c === 0x2b || c === 0x2d) {
        this.p++;
        c = this.peek();
      }
      if (!digit(c)) this.invalid(c, 'in exponent of numeric literal');
      while (digit(b[this.p])) this.p++;
    }
    return b.toString('latin1', start, this.p);
  }

  private hex4(): number {
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.peek();
      const h = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (h < 0) this.invalid(c, 'in \\u hexadecimal character escape');
      v = v * 16 + h;
      this.p++;
    }
    return v;
  }

  private string(): string {
    const b = this.b;
    this.p++; // opening quote
    let out = '';
    let run = this.p;
    for (;;) {
      const c = this.peek();
      if (c === 0x22) {
        out += b.toString('utf8', run, this.p);
        this.p++;
        return out;
      }
      if (c < 0x20) this.invalid(c, 'in string literal');
      if (c !== 0x5c) {
        this.p++;
        continue;
      }
      out += b.toString('utf8', run, this.p);
      this.p++;
      const e = this.peek();
      this.p++;
      const simple: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };
      if (simple[e] !== undefined) out += simple[e];
      else if (e === 0x75) {
        const u = this.hex4();
        if (u >= 0xd800 && u < 0xdc00) {
          // A high surrogate combines with a following \u low surrogate; alone it is U+FFFD (Go's unquote).
          const save = this.p;
          if (b[this.p] === 0x5c && b[this.p + 1] === 0x75 && this.p + 6 <= b.length) {
            this.p += 2;
            let low = -1;
            try {
              low = this.hex4();
            } catch {
              low = -1;
            }
            if (low >= 0xdc00 && low < 0xe000) out += String.fromCharCode(u, low);
            else {
              out += '\ufffd';
              this.p = save;
            }
          } else out += '\ufffd';
        } else if (u >= 0xdc00 && u < 0xe000) out += '\ufffd';
        else out += String.fromCharCode(u);
      } else this.invalid(e, 'in string escape code');
      run = this.p;
    }
  }

  private object(): JVal {
    this.p++;
    const entries: Array<[string, JVal]> = [];
    this.ws();
    if (this.peek() === 0x7d) {
      this.p++;
      return { t: 'obj', entries };
    }
    for (;;) {
      const c = this.peek();
      if (c !== 0x22) this.invalid(c, 'looking for beginning of object key string');
      const key = this.string();
      this.ws();
      const colon = this.peek();
      if (colon !== 0x3a) this.invalid(colon, 'after object key');
      this.p++;
      this.ws();
      entries.push([key, this.value()]);
      this.ws();
      const next = this.peek();
      this.p++;
      if (next === 0x2c) {
        this.ws();
        continue;
      }
      if (next === 0x7d) return { t: 'obj', entries };
      this.invalid(next, 'after object key:value pair');
    }
  }

  private array(): JVal {
    this.p++;
    const items: JVal[] = [];
    this.ws();
    if (this.peek() === 0x5d) {
      this.p++;
      return { t: 'arr', items };
    }
    for (;;) {
      this.ws();
      items.push(this.value());
      this.ws();
      const next = this.peek();
      this.p++;
      if (next === 0x2c) continue;
      if (next === 0x5d) return { t: 'arr', items };
      this.invalid(next, 'after array element');
    }
  }
}

/** A decode error: a Go *UnmarshalTypeError (gets field context) or any other error text. */
type GoErr = { kind: 'type'; value: string; goType: string; struct?: string; field?: string } | { kind: 'plain'; message: string };

function formatGoErr(e: GoErr): string {
  if (e.kind === 'plain') return e.message;
  if ((e.struct ?? '') !== '' || (e.field ?? '') !== '') {
    return `json: cannot unmarshal ${e.value} into Go struct field ${e.struct ?? ''}.${e.field ?? ''} of type ${e.goType}`;
  }
  return `json: cannot unmarshal ${e.value} into Go value of type ${e.goType}`;
}

type GoType =
  | { k: 'string'; name: string }
  | { k: 'int'; name: string }
  | { k: 'bool' }
  | { k: 'any' }
  | { k: 'opaque' }
  | { k: 'slice'; name: string; elem: GoType }
  | { k: 'map'; name: string; elem: GoType }
  | { k: 'ptr'; elem: GoType }
  | { k: 'struct'; name: string; structName: string; fields: Array<{ name: string; type: GoType }> }
  | { k: 'unmarshaler'; run: (j: JVal) => { value: unknown } | { error: GoErr } };

interface DecodeCtx {
  saved: GoErr | undefined;
  /** errorContext.Struct.Name(); null = no struct context yet. */
  struct: string | null;
  fieldStack: string[];
  disallowUnknown: boolean;
}

/** An Unmarshaler's error: returned at once, not saved (encoding/json d.object/literalStore). */
class GoAbort {
  constructor(readonly err: GoErr) {}
}

function addErrorContext(ctx: DecodeCtx, err: GoErr): GoErr {
  if (err.kind === 'type' && (ctx.struct !== null || ctx.fieldStack.length > 0)) {
    return { ...err, struct: ctx.struct ?? '', field: ctx.fieldStack.join('.') };
  }
  return err;
}

function saveError(ctx: DecodeCtx, err: GoErr): void {
  if (ctx.saved === undefined) ctx.saved = addErrorContext(ctx, err);
}

function jsonKindName(j: JVal): string {
  return j.t === 'str' ? 'string' : j.t === 'num' ? 'number' : j.t === 'bool' ? 'bool' : j.t === 'obj' ? 'object' : j.t === 'arr' ? 'array' : 'null';
}

function goTypeName(t: GoType): string {
  switch (t.k) {
    case 'string':
    case 'int':
    case 'slice':
    case 'map':
    case 'struct':
      return t.name;
    case 'bool':
      return 'bool';
    case 'ptr':
      return goTypeName(t.elem);
    default:
      return 'interface {}';
  }
}

function zeroOf(t: GoType): unknown {
  return t.k === 'string' ? '' : t.k === 'int' ? 0 : t.k === 'bool' ? false : null;
}

function toInterface(j: JVal, ctx: DecodeCtx): unknown {
  switch (j.t) {
    case 'null':
      return null;
    case 'bool':
    case 'str':
      return j.v;
    case 'num': {
      const n = Number(j.raw);
      if (!Number.isFinite(n)) {
        saveError(ctx, { kind: 'type', value: `number ${j.raw}`, goType: 'float64' });
        return null;
      }
      return n;
    }
    case 'arr':
      return j.items.map((item) => toInterface(item, ctx));
    case 'obj': {
      const out: Record<string, unknown> = Object.create(null);
      for (const [key, value] of j.entries) out[key] = toInterface(value, ctx);
      return out;
    }
  }
}

/** Decodes j into a value of Go type t; undefined = the target keeps its zero value. */
function decodeInto(j: JVal, t: GoType, ctx: DecodeCtx): unknown {
  if (t.k === 'unmarshaler') {
    const r = t.run(j);
    if ('error' in r) throw new GoAbort(r.error);
    return r.value;
  }
  if (j.t === 'null') return t.k === 'slice' || t.k === 'map' || t.k === 'ptr' || t.k === 'any' ? null : undefined;
  switch (t.k) {
    case 'ptr':
      return decodeInto(j, t.elem, ctx);
    case 'opaque':
      return j;
    case 'any':
      return toInterface(j, ctx);
    case 'string':
      if (j.t === 'str') return j.v;
      break;
    case 'bool':
      if (j.t === 'bool') return j.v;
      break;
    case 'int':
      if (j.t === 'num') {
        if (/^-?\d+$/.test(j.raw)) {
          const big = BigInt(j.raw);
          if (big >= -TWO_63 && big < TWO_63) return Number(big);
        }
        saveError(ctx, { kind: 'type', value: `number ${j.raw}`, goType: t.name });
        return undefined;
      }
      break;
    case 'slice':
      if (j.t === 'arr') return j.items.map((item) => decodeInto(item, t.elem, ctx) ?? zeroOf(t.elem));
      break;
    case 'map':
      if (j.t === 'obj') {
        const out: Record<string, unknown> = Object.create(null);
        for (const [key, value] of j.entries) out[key] = decodeInto(value, t.elem, ctx) ?? zeroOf(t.elem);
        return out;
      }
      break;
    case 'struct':
      if (j.t === 'obj') return decodeStruct(j.entries, t, ctx);
      break;
  }
  saveError(ctx, { kind: 'type', value: jsonKindName(j), goType: goTypeName(t) });
  return undefined;
}

function decodeStruct(entries: Array<[string, JVal]>, t: Extract<GoType, { k: 'struct' }>, ctx: DecodeCtx): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [key, value] of entries) {
    const lower = key.toLowerCase();
    const field = t.fields.find((f) => f.name === key) ?? t.fields.find((f) => f.name.toLowerCase() === lower);
    if (!field) {
      if (ctx.disallowUnknown) saveError(ctx, { kind: 'plain', message: `json: unknown field ${goQuote(key)}` });
      continue;
    }
    const struct = ctx.struct;
    const depth = ctx.fieldStack.length;
    ctx.struct = t.structName;
    ctx.fieldStack.push(field.name);
    const decoded = decodeInto(value, field.type, ctx); // a GoAbort leaves the context as it is, as Go does
    if (decoded !== undefined) out[field.name] = decoded;
    ctx.struct = struct;
    ctx.fieldStack.length = depth;
  }
  return out;
}

/** One json.Unmarshal / Decoder.Decode run: the value, the first saved error, or an Unmarshaler's error. */
function runDecode(j: JVal, t: GoType, disallowUnknown: boolean): { value: unknown } | { error: GoErr } {
  const ctx: DecodeCtx = { saved: undefined, struct: null, fieldStack: [], disallowUnknown };
  try {
    const value = decodeInto(j, t, ctx);
    return ctx.saved ? { error: ctx.saved } : { value };
  } catch (error) {
    if (error instanceof GoAbort) return { error: addErrorContext(ctx, error.err) };
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Consul's request types (C-sd, C-ct, C-ep)

const S: GoType = { k: 'string', name: 'string' };
const I: GoType = { k: 'int', name: 'int' };
const B: GoType = { k: 'bool' };
const ANY: GoType = { k: 'any' };
const OPAQUE: GoType = { k: 'opaque' };
const STRINGS: GoType = { k: 'slice', name: '[]string', elem: S };

const CHECK_AUX_TYPE =
  'struct { Interval interface {}; Timeout interface {}; TTL interface {}; DeregisterCriticalServiceAfter interface {}; ' +
  'Args []string "json:\\"args\\""; ScriptArgsSnake []string "json:\\"script_args\\""; ' +
  'DeregisterCriticalServiceAfterSnake interface {} "json:\\"deregister_critical_service_after\\""; ' +
  'DockerContainerIDSnake string "json:\\"docker_container_id\\""; TLSServerNameSnake string "json:\\"tls_server_name\\""; ' +
  'TLSSkipVerifySnake bool "json:\\"tls_skip_verify\\""; GRPCUseTLSSnake bool "json:\\"grpc_use_tls\\""; ' +
  'H2PingUseTLSSnake bool "json:\\"h2ping_use_tls\\""; ServiceID string "json:\\"ServiceID\\""; ' +
  'ServiceIDSnake string "json:\\"service_id\\""; *structs.Alias }';

/** CheckType.UnmarshalJSON's aux struct: its own fields shadow the embedded Alias's Interval/Timeout/TTL/DCSA. */
const CHECK_AUX: GoType = {
  k: 'struct',
  name: CHECK_AUX_TYPE,
  structName: '',
  fields: [
    { name: 'Interval', type: ANY },
    { name: 'Timeout', type: ANY },
    { name: 'TTL', type: ANY },
    { name: 'DeregisterCriticalServiceAfter', type: ANY },
    { name: 'args', type: STRINGS },
    { name: 'script_args', type: STRINGS },
    { name: 'deregister_critical_service_after', type: ANY },
    { name: 'docker_container_id', type: S },
    { name: 'tls_server_name', type: S },
    { name: 'tls_skip_verify', type: B },
    { name: 'grpc_use_tls', type: B },
    { name: 'h2ping_use_tls', type: B },
    { name: 'ServiceID', type: S },
    { name: 'service_id', type: S },
    // *Alias (CheckType)
    { name: 'CheckID', type: { k: 'string', name: 'types.CheckID' } },
    { name: 'Name', type: S },
    { name: 'Status', type: S },
    { name: 'Notes', type: S },
    { name: 'ScriptArgs', type: STRINGS },
    { name: 'HTTP', type: S },
    { name: 'H2PING', type: S },
    { name: 'H2PingUseTLS', type: B },
    { name: 'Header', type: { k: 'map', name: 'map[string][]string', elem: STRINGS } },
    { name: 'Method', type: S },
    { name: 'Body', type: S },
    { name: 'DisableRedirects', type: B },
    { name: 'TCP', type: S },
    { name: 'UDP', type: S },
    { name: 'AliasNode', type: S },
    { name: 'AliasService', type: S },
    { name: 'DockerContainerID', type: S },
    { name: 'Shell', type: S },
    { name: 'GRPC', type: S },
    { name: 'GRPCUseTLS', type: B },
    { name: 'OSService', type: S },
    { name: 'TLSServerName', type: S },
    { name: 'TLSSkipVerify', type: B },
    { name: 'SuccessBeforePassing', type: I },
    { name: 'FailuresBeforeWarning', type: I },
    { name: 'FailuresBeforeCritical', type: I },
    { name: 'ProxyHTTP', type: S },
    { name: 'ProxyGRPC', type: S },
    { name: 'OutputMaxSize', type: I },
  ],
};

/** The CheckType fields besides the durations (for CheckType.Empty). */
const CHECK_TYPE_FIELDS = CHECK_AUX.k === 'struct' ? CHECK_AUX.fields.slice(14).map((f) => f.name) : [];

interface CheckDef {
  empty: boolean;
  CheckID: string;
  Name: string;
  Status: string;
  Notes: string;
  scriptArgs: boolean;
  HTTP: string;
  H2PING: string;
  TCP: string;
  UDP: string;
  GRPC: string;
  OSService: string;
  AliasNode: string;
  AliasService: string;
  interval: bigint;
  ttl: bigint;
  dcsa: bigint;
  OutputMaxSize: number;
  FailuresBeforeWarning: number;
  FailuresBeforeCritical: number;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const isZero = (v: unknown): boolean => v === undefined || v === null || v === '' || v === 0 || v === false;

/** CheckType.UnmarshalJSON (C-ct): strict decode, snake aliases, durations (string → ParseDuration, number → ns). */
function decodeCheckType(j: JVal): { value: CheckDef } | { error: GoErr } {
  const r = runDecode(j, CHECK_AUX, true);
  if ('error' in r) return r;
  const a = (r.value ?? {}) as Record<string, unknown>;
  // The transfers of CheckType.UnmarshalJSON, literally (len(ScriptArgs) == 0 → take args, even if nil).
  if (a.DeregisterCriticalServiceAfter === undefined || a.DeregisterCriticalServiceAfter === null)
    a.DeregisterCriticalServiceAfter = a.deregister_critical_service_after;
  if (!(Array.isArray(a.ScriptArgs) && a.ScriptArgs.length > 0)) a.ScriptArgs = a.args;
  if (!(Array.isArray(a.ScriptArgs) && a.ScriptArgs.length > 0)) a.ScriptArgs = a.script_args;
  if (isZero(a.DockerContainerID)) a.DockerContainerID = a.docker_container_id;
  if (isZero(a.TLSServerName)) a.TLSServerName = a.tls_server_name;
  if (a.tls_skip_verify === true) a.TLSSkipVerify = true;
  if (a.grpc_use_tls === true) a.GRPCUseTLS = true;
  if (a.h2ping_use_tls === true) a.H2PingUseTLS = true;
  const durations: Record<string, bigint> = {};
  for (const name of ['Interval', 'Timeout', 'TTL', 'DeregisterCriticalServiceAfter']) {
    const v = a[name];
    let ns = 0n;
    if (typeof v === 'string') {
      const d = parseGoDuration(v);
      if ('error' in d) return { error: { kind: 'plain', message: d.error } };
      ns = d.ns;
    } else if (typeof v === 'number') ns = floatToDuration(v);
    durations[name] = ns;
  }
  const empty = CHECK_TYPE_FIELDS.every((f) => isZero(a[f])) && Object.values(durations).every((d) => d === 0n);
  return {
    value: {
      empty,
      CheckID: str(a.CheckID),
      Name: str(a.Name),
      Status: str(a.Status),
      Notes: str(a.Notes),
      scriptArgs: Array.isArray(a.ScriptArgs) && a.ScriptArgs.length > 0,
      HTTP: str(a.HTTP),
      H2PING: str(a.H2PING),
      TCP: str(a.TCP),
      UDP: str(a.UDP),
      GRPC: str(a.GRPC),
      OSService: str(a.OSService),
      AliasNode: str(a.AliasNode),
      AliasService: str(a.AliasService),
      interval: durations.Interval!,
      ttl: durations.TTL!,
      dcsa: durations.DeregisterCriticalServiceAfter!,
      OutputMaxSize: num(a.OutputMaxSize),
      FailuresBeforeWarning: num(a.FailuresBeforeWarning),
      FailuresBeforeCritical: num(a.FailuresBeforeCritical),
    },
  };
}

const CHECK_TYPE: GoType = { k: 'unmarshaler', run: (j) => decodeCheckType(j) };
const SERVICE_ADDRESS: GoType = {
  k: 'struct',
  name: 'structs.ServiceAddress',
  structName: 'ServiceAddress',
  fields: [
    { name: 'Address', type: S },
    { name: 'Port', type: I },
  ],
};
const TAGGED_ADDRESSES: GoType = { k: 'map', name: 'map[string]structs.ServiceAddress', elem: SERVICE_ADDRESS };

const SERVICE_AUX_TYPE =
  'struct { EnableTagOverrideSnake bool "json:\\"enable_tag_override\\""; ' +
  'TaggedAddressesSnake map[string]structs.ServiceAddress "json:\\"tagged_addresses\\""; *structs.Alias }';

/** ServiceDefinition.UnmarshalJSON's aux struct (C-sd): plain json.Unmarshal, so unknown keys are ignored. */
const SERVICE_AUX: GoType = {
  k: 'struct',
  name: SERVICE_AUX_TYPE,
  structName: '',
  fields: [
    { name: 'enable_tag_override', type: B },
    { name: 'tagged_addresses', type: TAGGED_ADDRESSES },
    { name: 'Kind', type: { k: 'string', name: 'structs.ServiceKind' } },
    { name: 'ID', type: S },
    { name: 'Name', type: S },
    { name: 'Tags', type: STRINGS },
    { name: 'Address', type: S },
    { name: 'TaggedAddresses', type: TAGGED_ADDRESSES },
    { name: 'Meta', type: { k: 'map', name: 'map[string]string', elem: S } },
    { name: 'Port', type: I },
    { name: 'SocketPath', type: S },
    { name: 'Check', type: CHECK_TYPE },
    { name: 'Checks', type: { k: 'slice', name: 'structs.CheckTypes', elem: { k: 'ptr', elem: CHECK_TYPE } } },
    {
      name: 'Weights',
      type: {
        k: 'ptr',
        elem: {
          k: 'struct',
          name: 'structs.Weights',
          structName: 'Weights',
          fields: [
            { name: 'Passing', type: I },
            { name: 'Warning', type: I },
          ],
        },
      },
    },
    { name: 'Token', type: S },
    { name: 'EnableTagOverride', type: B },
    { name: 'Locality', type: OPAQUE },
    { name: 'Proxy', type: OPAQUE },
    { name: 'Connect', type: OPAQUE },
  ],
};

interface ServiceDef {
  Kind: string;
  ID: string;
  Name: string;
  Tags: string[] | null;
  Address: string;
  TaggedAddresses: Record<string, { Address: string; Port: number }> | null;
  Meta: Record<string, string> | null;
  Port: number;
  Check: CheckDef;
  /** null entries are nil *CheckType (Consul panics on them). */
  Checks: Array<CheckDef | null> | null;
  Weights: { Passing: number; Warning: number } | null;
  EnableTagOverride: boolean;
}

const EMPTY_CHECK: CheckDef = (decodeCheckType({ t: 'null' }) as { value: CheckDef }).value;

function decodeServiceDefinition(body: Buffer): { def: ServiceDef } | { error: string } {
  let top: JVal;
  try {
    top = new GoJsonReader(body).readTop();
  } catch (error) {
    if (error instanceof JsonSyntaxError) return { error: error.message };
    throw error;
  }
  const r = runDecode(top, SERVICE_AUX, false);
  if ('error' in r) return { error: formatGoErr(r.error) };
  const a = (r.value ?? {}) as Record<string, unknown>;
  const tagged = (value: unknown): Record<string, { Address: string; Port: number }> | null => {
    if (value === null || value === undefined) return null;
    const out: Record<string, { Address: string; Port: number }> = Object.create(null);
    for (const [k, v] of Object.entries(value as Record<string, Record<string, unknown> | null>)) out[k] = { Address: str(v?.Address), Port: num(v?.Port) };
    return out;
  };
  const weights = a.Weights as Record<string, unknown> | null | undefined;
  let taggedAddresses = tagged(a.TaggedAddresses);
  if (taggedAddresses === null || Object.keys(taggedAddresses).length === 0) taggedAddresses = tagged(a.tagged_addresses) ?? taggedAddresses;
  return {
    def: {
      Kind: str(a.Kind),
      ID: str(a.ID),
      Name: str(a.Name),
      Tags: (a.Tags as string[] | null | undefined) ?? null,
      Address: str(a.Address),
      TaggedAddresses: taggedAddresses,
      Meta: (a.Meta as Record<string, string> | null | undefined) ?? null,
      Port: num(a.Port),
      Check: (a.Check as CheckDef | undefined) ?? EMPTY_CHECK,
      Checks: (a.Checks as Array<CheckDef | null> | null | undefined) ?? null,
      Weights: weights ? { Passing: num(weights.Passing), Warning: num(weights.Warning) } : null,
      EnableTagOverride: a.EnableTagOverride === true || a.enable_tag_override === true,
    },
  };
}

const CHECK_UPDATE: GoType = {
  k: 'struct',
  name: 'agent.checkUpdate',
  structName: 'checkUpdate',
  fields: [
    { name: 'Status', type: S },
    { name: 'Output', type: S },
  ],
};

function decodeCheckUpdate(body: Buffer): { status: string; output: string } | { error: string } {
  let top: JVal;
  try {
    top = new GoJsonReader(body).readTop();
  } catch (error) {
    if (error instanceof JsonSyntaxError) return { error: error.message };
    throw error;
  }
  const r = runDecode(top, CHECK_UPDATE, true);
  if ('error' in r) return { error: formatGoErr(r.error) };
  const a = (r.value ?? {}) as Record<string, unknown>;
  return { status: str(a.Status), output: str(a.Output) };
}

/** CheckType.Validate (C-ct). */
function validateCheck(c: CheckDef): string | undefined {
  const intervalCheck = c.scriptArgs || c.HTTP !== '' || c.TCP !== '' || c.UDP !== '' || c.GRPC !== '' || c.H2PING !== '' || c.OSService !== '';
  const alias = c.AliasNode !== '' || c.AliasService !== '';
  if (c.interval > 0n && c.ttl > 0n) return 'Interval and TTL cannot both be specified';
  if (intervalCheck && c.interval <= 0n) return 'Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks';
  if (intervalCheck && alias) return 'Interval cannot be set for Alias checks';
  if (alias && c.ttl > 0n) return 'TTL must be not be set for Alias checks';
  if (!intervalCheck && !alias && c.ttl <= 0n) return 'TTL must be > 0 for TTL checks';
  if (c.OutputMaxSize < 0) return 'MaxOutputMaxSize must be positive';
  if (c.FailuresBeforeWarning > c.FailuresBeforeCritical) return "FailuresBeforeWarning can't be higher than FailuresBeforeCritical";
  return undefined;
}

/** structs.ValidateWeights. */
function validateWeights(w: { Passing: number; Warning: number }): string | undefined {
  if (w.Passing < 1) return 'Passing must be greater than 0';
  if (w.Warning < 0) return 'Warning must be greater or equal than 0';
  if (w.Passing > 65535 || w.Warning > 65535) return 'DNS Weight must be between 0 and 65535';
  return undefined;
}

/** structs.ValidateServiceMetadata (first failing pair in body order; Go's map order is random). */
function validateMeta(meta: Record<string, string> | null): string | undefined {
  if (meta === null) return undefined;
  const entries = Object.entries(meta);
  if (entries.length > 64) return 'Node metadata cannot contain more than 64 key/value pairs';
  for (const [key, value] of entries) {
    let problem: string | undefined;
    if (key === '') problem = 'Key cannot be blank';
    else if (!/^[a-zA-Z0-9_-]+$/.test(key)) problem = 'Key contains invalid characters';
    else if (Buffer.byteLength(key) > 128) problem = 'Key is too long (limit: 128 characters)';
    else if (key.startsWith('consul-')) problem = "Key prefix 'consul-' is reserved for internal use";
    else if (Buffer.byteLength(value) > 512) problem = 'Value is too long (limit: 512 characters)';
    if (problem) return `Couldn't load metadata pair ('${key}', '${value}'): ${problem}`;
  }
  return undefined;
}

/** reflect.DeepEqual for JSON-like values (map key order does not matter). */
function sameJson(a: unknown, b: unknown): boolean {
  const stable = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(stable)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
              .map(([k, x]) => [k, stable(x)]),
          )
        : v;
  return JSON.stringify(stable(a)) === JSON.stringify(stable(b));
}

// ---------------------------------------------------------------------------------------------
// Timers

/** setTimeout without the 24.8-day limit, unref'd. */
class LongTimer {
  private handle: NodeJS.Timeout | undefined;
  constructor(fn: () => void, ms: number) {
    const due = Date.now() + ms;
    const arm = (): void => {
      const left = due - Date.now();
      this.handle = setTimeout(left > MAX_TIMER_MS ? arm : fn, Math.min(Math.max(left, 0), MAX_TIMER_MS));
      this.handle.unref();
    };
    arm();
  }
  cancel(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The agent

interface ServiceRec {
  id: string;
  name: string;
  kind: string;
  tags: string[] | null;
  address: string;
  port: number;
  meta: Record<string, string> | null;
  weights: { Passing: number; Warning: number };
  enableTagOverride: boolean;
  taggedAddresses: Record<string, { Address: string; Port: number }>;
  createIndex: number;
  modifyIndex: number;
  registerBodies: string[];
}

interface CheckRec {
  id: string;
  name: string;
  notes: string;
  status: ConsulCheckStatus;
  output: string;
  serviceId: string;
  serviceName: string;
  serviceTags: string[] | null;
  ttlMs: number;
  dcsaMs: number;
  outputMaxSize: number;
  criticalSince: number | undefined;
  createIndex: number;
  modifyIndex: number;
  /** CheckTTL.lastOutput: what the expiry message quotes. */
  lastOutput: string;
  timer: LongTimer | undefined;
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  path: string;
  query: Map<string, string[]>;
  body: Buffer;
  token: string;
  record: ConsulTestAgentRequest;
}

interface Route {
  pattern: string;
  /** Go ServeMux: a pattern ending in '/' matches the subtree. */
  prefix: boolean;
  methods: string[];
  handle: (ctx: Ctx) => void | Promise<void>;
}

type Authz = 'management' | 'anonymous';

export class ConsulTestAgent {
  /** The requests received, most recent last. */
  readonly requests: ConsulTestAgentRequest[] = [];

  private readonly host: string;
  private readonly aclToken: string | undefined;
  private readonly datacenter: string;
  private readonly nodeName: string;
  private readonly nodeAddress: string;
  private readonly minDcsaMs: number;
  private readonly reapIntervalMs: number;
  private readonly nodeId = randomUUID();
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly routes: Route[];
  private readonly svcs = new Map<string, ServiceRec>();
  private readonly checks = new Map<string, CheckRec>();
  /** Index of the last write touching each (lower-cased) service name. */
  private readonly nameIndex = new Map<string, number>();
  private readonly waiters = new Set<() => void>();
  private globalIndex = INITIAL_INDEX;
  private listenPort = 0;
  private stopped = false;
  private reaper: NodeJS.Timeout | undefined;

  private constructor(options: ConsulTestAgentOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.aclToken = options.token;
    this.datacenter = options.datacenter ?? 'dc1';
    this.nodeName = options.nodeName ?? 'test-node';
    this.nodeAddress = options.nodeAddress ?? '127.0.0.1';
    this.minDcsaMs = options.minDeregisterCriticalAfter ?? 60_000;
    this.reapIntervalMs = options.reapInterval ?? 30_000;
    if (!(this.minDcsaMs >= 0) || !(this.reapIntervalMs > 0)) throw new Error('minDeregisterCriticalAfter must be >= 0 and reapInterval > 0 (ms)');
    if (this.aclToken === '') throw new Error('token must not be empty (omit it to turn ACLs off)');
    this.routes = [
      { pattern: '/v1/agent/service/register', prefix: false, methods: ['PUT'], handle: (ctx) => this.register(ctx) },
      { pattern: '/v1/agent/service/deregister/', prefix: true, methods: ['PUT'], handle: (ctx) => this.deregister(ctx) },
      { pattern: '/v1/agent/check/pass/', prefix: true, methods: ['PUT'], handle: (ctx) => this.checkNote(ctx, 'pass', 'passing') },
      { pattern: '/v1/agent/check/warn/', prefix: true, methods: ['PUT'], handle: (ctx) => this.checkNote(ctx, 'warn', 'warning') },
      { pattern: '/v1/agent/check/fail/', prefix: true, methods: ['PUT'], handle: (ctx) => this.checkNote(ctx, 'fail', 'critical') },
      { pattern: '/v1/agent/check/update/', prefix: true, methods: ['PUT'], handle: (ctx) => this.checkUpdateBody(ctx) },
      { pattern: '/v1/health/service/', prefix: true, methods: ['GET'], handle: (ctx) => this.health(ctx) },
    ];
    this.server = createServer((req, res) => this.onRequest(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: ConsulTestAgentOptions = {}): Promise<ConsulTestAgent> {
    const agent = new ConsulTestAgent(options);
    await new Promise<void>((resolve, reject) => {
      agent.server.once('error', reject);
      agent.server.listen(options.port ?? 0, agent.host, () => {
        agent.server.off('error', reject);
        resolve();
      });
    });
    agent.listenPort = (agent.server.address() as { port: number }).port;
    agent.reaper = setInterval(() => agent.reap(), agent.reapIntervalMs);
    agent.reaper.unref();
    return agent;
  }

  /** http://host:port */
  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.listenPort}`;
  }

  get port(): number {
    return this.listenPort;
  }

  /** The raft-like index now (the last write's). */
  get index(): number {
    return this.globalIndex;
  }

  /**
   * Stop listening and end open blocking queries by destroying their sockets (as an agent
   * crash would); TTL timers and the reaper stop. This object keeps its state (services(),
   * requests). A new agent started on the same port is an empty, restarted dev agent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.reaper) clearInterval(this.reaper);
    for (const check of this.checks.values()) {
      check.timer?.cancel();
      check.timer = undefined;
    }
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    for (const wake of [...this.waiters]) wake();
    await closed;
  }

  /** For assertions: the services registered now, with their checks and the raw register bodies. */
  services(): ConsulTestAgentService[] {
    return [...this.svcs.values()]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((s) => ({
        id: s.id,
        name: s.name,
        tags: [...(s.tags ?? [])],
        address: s.address,
        port: s.port,
        meta: s.meta === null ? null : { ...s.meta },
        weights: { ...s.weights },
        createIndex: s.createIndex,
        modifyIndex: s.modifyIndex,
        checks: this.checksOf(s.id).map((c) => ({
          checkId: c.id,
          name: c.name,
          notes: c.notes,
          type: 'ttl' as const,
          status: c.status,
          output: c.output,
          ttlMs: c.ttlMs,
          deregisterCriticalServiceAfterMs: c.dcsaMs > 0 ? c.dcsaMs : undefined,
          criticalSince: c.criticalSince,
          createIndex: c.createIndex,
          modifyIndex: c.modifyIndex,
        })),
        registerBodies: [...s.registerBodies],
      }));
  }

  /** Set a check's status out of band (as an operator or a failing node would): the agent-state update, no TTL reset. */
  setCheckStatus(checkId: string, status: ConsulCheckStatus, output?: string): void {
    const check = this.checks.get(checkId);
    if (!check) throw new Error(`consul test agent: no check ${JSON.stringify(checkId)}`);
    if (!VALID_STATUS.has(status)) throw new Error(`consul test agent: invalid status ${JSON.stringify(status)}`);
    this.updateCheck(check, status, output ?? check.output);
  }

  // --- state -----------------------------------------------------------------------------------

  private checksOf(serviceId: string): CheckRec[] {
    return [...this.checks.values()].filter((c) => c.serviceId === serviceId).sort((a, b) => compareLower(a.id, b.id));
  }

  /** A write that changes the catalog: the next index, recorded for the service names it touches. */
  private commit(names: Iterable<string>): number {
    const index = ++this.globalIndex;
    for (const name of names) this.nameIndex.set(name.toLowerCase(), index);
    return index;
  }

  /** Wake blocked queries (they re-check their index). Call after the state is complete. */
  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** The index of /health/service/<name>: the name's last write, or the catalog's when it has no instance. */
  private serviceIndex(nameLower: string): number {
    for (const s of this.svcs.values()) if (s.name.toLowerCase() === nameLower) return this.nameIndex.get(nameLower) ?? this.globalIndex;
    return this.globalIndex;
  }

  /** local.State.UpdateCheck (C-local): critical-time tracking, no-op when identical, output-only not synced. */
  private updateCheck(check: CheckRec, status: ConsulCheckStatus, output: string): void {
    if (status === 'critical') {
      if (check.criticalSince === undefined) check.criticalSince = Date.now();
    } else check.criticalSince = undefined;
    if (check.status === status && check.output === output) return;
    if (check.status === status) {
      check.output = output; // deferred sync in Consul: no index bump, no wake-up (see header)
      return;
    }
    check.status = status;
    check.output = output;
    check.modifyIndex = this.commit([check.serviceName]);
    this.wake();
  }

  private armTtl(check: CheckRec): void {
    check.timer?.cancel();
    check.timer = this.stopped ? undefined : new LongTimer(() => this.expire(check), check.ttlMs);
  }

  /** CheckTTL expiry (C-ttl). */
  private expire(check: CheckRec): void {
    check.timer = undefined;
    if (this.stopped || this.checks.get(check.id) !== check) return;
    const output = check.lastOutput === '' ? 'TTL expired' : `TTL expired (last output before timeout follows): ${check.lastOutput}`;
    this.updateCheck(check, 'critical', output);
  }

  private removeService(id: string): void {
    const svc = this.svcs.get(id);
    if (!svc) return;
    this.svcs.delete(id);
    for (const check of this.checksOf(id)) {
      check.timer?.cancel();
      this.checks.delete(check.id);
    }
    this.commit([svc.name]);
    this.wake();
  }

  /** reapServicesInternal (C-agent): services whose check has been critical longer than its DCSA. */
  private reap(): void {
    if (this.stopped) return;
    const now = Date.now();
    const reaped = new Set<string>();
    for (const check of [...this.checks.values()]) {
      if (check.criticalSince === undefined || check.serviceId === '' || reaped.has(check.serviceId)) continue;
      if (check.dcsaMs > 0 && now - check.criticalSince > check.dcsaMs) {
        reaped.add(check.serviceId);
        this.removeService(check.serviceId);
      }
    }
  }

  // --- HTTP plumbing ---------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => {});
    res.on('error', () => {});
    req.on('end', () => {
      this.dispatch(req, res, Buffer.concat(chunks)).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(`consul test agent: internal error: ${error instanceof Error ? error.message : String(error)}`);
        }
      });
    });
  }

  private send(ctx: Ctx, status: number, body: string, headers: Record<string, string> = {}): void {
    if (ctx.res.destroyed || ctx.res.headersSent) return;
    ctx.record.status = status;
    ctx.res.writeHead(status, { ...headers, 'Content-Length': String(Buffer.byteLength(body)) });
    ctx.res.end(body);
  }

  private text(ctx: Ctx, status: number, body: string, headers: Record<string, string> = {}): void {
    this.send(ctx, status, body, body === '' ? headers : { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  }

  private ok(ctx: Ctx): void {
    this.send(ctx, 200, '');
  }

  private first(ctx: Ctx, key: string): string {
    return ctx.query.get(key)?.[0] ?? '';
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const rawQuery = q < 0 ? '' : rawUrl.slice(q + 1);
    const parsed = goParseQuery(rawQuery);
    const path = goUnescape(rawPath, false);
    const header = (name: string): string => req.headersDistinct[name]?.[0] ?? '';
    // parseTokenInternal (C-http): ?token= > X-Consul-Token > Authorization: Bearer.
    let token = parsed.values.get('token')?.[0] ?? '';
    let tokenSource: ConsulTestAgentRequest['tokenSource'] = token !== '' ? 'query' : undefined;
    if (token === '' && header('x-consul-token') !== '') {
      token = header('x-consul-token');
      tokenSource = 'header';
    } else if (token === '' && header('authorization') !== '') {
      const parts = header('authorization').split(' ');
      if (parts.length > 1 && parts[0] === 'Bearer') {
        token = parts.slice(1).join(' ').trim().split(' ')[0]!.trim();
        if (token !== '') tokenSource = 'bearer';
      }
    }
    const record: ConsulTestAgentRequest = {
      at: Date.now(),
      method: req.method ?? '',
      path: path ?? rawPath,
      rawQuery,
      query: Object.fromEntries([...parsed.values].map(([k, v]) => [k, v[0] ?? ''])),
      token,
      tokenSource,
      body: body.toString('utf8'),
      status: undefined,
    };
    this.requests.push(record);
    const ctx: Ctx = { req, res, method: req.method ?? '', path: path ?? rawPath, query: parsed.values, body, token, record };

    if (path === undefined) {
      // Go's server cannot parse the request URI.
      this.send(ctx, 400, '400 Bad Request', { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
      return;
    }
    if ([...path].some((ch) => !isGoPrint(ch))) {
      this.text(ctx, 400, '');
      return;
    }
    const route = this.routes.find((r) => (r.prefix ? path.startsWith(r.pattern) : path === r.pattern));
    if (!route) {
      const slashed = this.routes.find((r) => r.prefix && r.pattern === `${path}/`);
      if (slashed) {
        const location = `${slashed.pattern}${rawQuery !== '' ? `?${rawQuery}` : ''}`;
        const getLike = ctx.method === 'GET' || ctx.method === 'HEAD';
        this.send(ctx, 301, getLike ? `<a href="${location}">Moved Permanently</a>.\n\n` : '', {
          Location: location,
          ...(getLike ? { 'Content-Type': 'text/html; charset=utf-8' } : {}),
        });
        return;
      }
      if (path === '/') this.text(ctx, 200, UI_DISABLED);
      else this.text(ctx, 404, path.includes('/v1/') ? INVALID_URL_V1 : INVALID_URL_OTHER);
      return;
    }
    // wrap (C-http)
    res.setHeader('X-Consul-Default-Acl-Policy', this.aclToken === undefined ? 'allow' : 'deny');
    if (parsed.error) {
      this.text(ctx, 500, '');
      return;
    }
    const allow = ['OPTIONS', ...route.methods].join(',');
    if (ctx.method === 'OPTIONS') {
      this.send(ctx, 200, '', { Allow: allow });
      return;
    }
    if (!route.methods.includes(ctx.method)) {
      this.text(ctx, 405, `method ${ctx.method} not allowed`, { Allow: allow });
      return;
    }
    await route.handle(ctx);
  }

  /** CE parseEntMeta: namespaces are Enterprise-only. */
  private namespaceError(ctx: Ctx): boolean {
    const headerNs = ctx.req.headersDistinct['x-consul-namespace']?.[0] ?? '';
    if (headerNs !== '') this.text(ctx, 400, NS_HEADER_ERROR);
    else if (this.first(ctx, 'ns') !== '') this.text(ctx, 400, NS_QUERY_ERROR);
    else return false;
    return true;
  }

  /** ResolveToken: undefined = `ACL not found` (already answered). */
  private authorize(ctx: Ctx): Authz | undefined {
    if (this.aclToken === undefined) return 'management';
    if (ctx.token === '' || ctx.token === ANONYMOUS_TOKEN) return 'anonymous';
    if (ctx.token === this.aclToken) return 'management';
    this.text(ctx, 403, 'ACL not found');
    return undefined;
  }

  private denyServiceWrite(ctx: Ctx, serviceName: string): void {
    this.text(
      ctx,
      403,
      `Permission denied: anonymous token lacks permission 'service:write' on ${goQuote(serviceName)}. The anonymous token is used implicitly when a request does not specify a token.`,
    );
  }

  // --- endpoints -------------------------------------------------------------------------------

  /** PUT /v1/agent/service/register (C-ep AgentRegisterService). */
  private register(ctx: Ctx): void {
    if (this.namespaceError(ctx)) return;
    const decoded = decodeServiceDefinition(ctx.body);
    if ('error' in decoded) return this.text(ctx, 400, `Request decode failed: ${decoded.error}`);
    const def = decoded.def;
    if (def.Name === '') return this.text(ctx, 400, 'Missing service name');
    if (def.Address === '0.0.0.0' || def.Address === '::' || def.Address === '[::]') return this.text(ctx, 400, 'Invalid service address');
    const authz = this.authorize(ctx);
    if (authz === undefined) return;
    if (def.Weights !== null) {
      const problem = validateWeights(def.Weights);
      if (problem) return this.text(ctx, 400, `Invalid Weights: ${problem}`);
    }
    const metaProblem = validateMeta(def.Meta);
    if (metaProblem) return this.text(ctx, 400, `Invalid Service Meta: ${metaProblem}`);
    const chkTypes: CheckDef[] = [];
    if (!def.Check.empty) {
      const problem = validateCheck(def.Check);
      if (problem) return this.text(ctx, 400, `Invalid check: ${problem}`);
      chkTypes.push(def.Check);
    }
    for (const check of def.Checks ?? []) {
      if (check === null) {
        // Consul dereferences the nil *CheckType and panics; Go's server drops the connection.
        ctx.req.socket.destroy();
        return;
      }
      const problem = validateCheck(check);
      if (problem) return this.text(ctx, 400, `Invalid check: ${problem}`);
      chkTypes.push(check);
    }
    for (const check of chkTypes) {
      if (check.Status !== '' && !VALID_STATUS.has(check.Status)) return this.text(ctx, 400, "Status for checks must 'passing', 'warning', 'critical'");
    }
    // Not Consul: a valid non-TTL check (it passed Validate, so it has an Interval or is an alias check).
    if (chkTypes.some((check) => check.ttl <= 0n)) return this.text(ctx, 400, TTL_ONLY_ERROR);
    const id = def.ID !== '' ? def.ID : def.Name;
    if (authz === 'anonymous') return this.denyServiceWrite(ctx, def.Name);
    // validateService (AddService errors answer 500): user-given tagged addresses (lan_ipv6 is checked twice, wan_ipv6 never, as in Consul).
    const given = def.TaggedAddresses ?? {};
    for (const [key, want] of [
      ['lan_ipv4', 4],
      ['wan_ipv4', 4],
      ['lan_ipv6', 6],
    ] as const) {
      const sa = given[key];
      if (sa && ipVersion(sa.Address) !== want) return this.text(ctx, 500, `Service tagged address ${goQuote(key)} must be a valid ipv${want} address`);
    }
    const replace = ctx.query.has('replace-existing-checks') && ['', 'true'].includes(this.first(ctx, 'replace-existing-checks'));
    this.addService(id, def, chkTypes, replace, ctx.body.toString('utf8'));
    this.ok(ctx);
  }

  /** addServiceInternal (C-agent) + the catalog write anti-entropy would make. */
  private addService(id: string, def: ServiceDef, chkTypes: CheckDef[], replaceExisting: boolean, rawBody: string): void {
    const existing = this.svcs.get(id);
    const tagged: Record<string, { Address: string; Port: number }> = { ...(def.TaggedAddresses ?? {}) };
    const version = ipVersion(def.Address);
    if (version !== undefined) {
      tagged[`lan_ipv${version}`] ??= { Address: def.Address, Port: def.Port };
      tagged[`wan_ipv${version}`] ??= { Address: def.Address, Port: def.Port };
    }
    const svc: ServiceRec = {
      id,
      name: def.Name,
      kind: def.Kind,
      tags: def.Tags,
      address: def.Address,
      port: def.Port,
      meta: def.Meta,
      weights: def.Weights ?? { Passing: 1, Warning: 1 },
      enableTagOverride: def.EnableTagOverride,
      taggedAddresses: tagged,
      createIndex: existing?.createIndex ?? 0,
      modifyIndex: existing?.modifyIndex ?? 0,
      registerBodies: [...(existing?.registerBodies ?? []), rawBody],
    };
    const serviceChanged =
      existing === undefined ||
      !sameJson(
        [
          existing.name,
          existing.kind,
          existing.tags ?? [],
          existing.address,
          existing.port,
          existing.meta,
          existing.weights,
          existing.enableTagOverride,
          existing.taggedAddresses,
        ],
        [svc.name, svc.kind, svc.tags ?? [], svc.address, svc.port, svc.meta, svc.weights, svc.enableTagOverride, svc.taggedAddresses],
      );
    const touched = new Set<string>();
    if (serviceChanged) {
      touched.add(svc.name);
      if (existing) touched.add(existing.name);
    }
    const fresh = new Map<string, CheckRec>();
    chkTypes.forEach((c, i) => {
      const checkId = c.CheckID !== '' ? c.CheckID : `service:${id}${chkTypes.length > 1 ? `:${i + 1}` : ''}`;
      const prev = this.checks.get(checkId);
      const dcsaMs = c.dcsa > 0n ? Math.max(nsToMs(c.dcsa), this.minDcsaMs) : 0;
      fresh.set(checkId, {
        id: checkId,
        name: c.Name !== '' ? c.Name : `Service '${def.Name}' check`,
        notes: c.Notes,
        // "Restore the fields from the snapshot": an existing check keeps its status and output.
        status: prev ? prev.status : ((c.Status !== '' ? c.Status : 'critical') as ConsulCheckStatus),
        output: prev ? prev.output : '',
        serviceId: id,
        serviceName: def.Name,
        serviceTags: def.Tags,
        ttlMs: nsToMs(c.ttl),
        dcsaMs,
        outputMaxSize: c.OutputMaxSize > 0 && c.OutputMaxSize < OUTPUT_MAX_SIZE ? c.OutputMaxSize : OUTPUT_MAX_SIZE,
        criticalSince: undefined, // a new CheckState: the reap clock starts again
        createIndex: prev?.createIndex ?? 0,
        modifyIndex: prev?.modifyIndex ?? 0,
        lastOutput: '', // a new CheckTTL
        timer: undefined,
      });
    });
    const changedChecks: CheckRec[] = [];
    for (const rec of fresh.values()) {
      const prev = this.checks.get(rec.id);
      const same =
        prev !== undefined &&
        sameJson(
          [prev.name, prev.status, prev.notes, prev.output, prev.serviceId, prev.serviceName, prev.serviceTags ?? []],
          [rec.name, rec.status, rec.notes, rec.output, rec.serviceId, rec.serviceName, rec.serviceTags ?? []],
        );
      if (!same) {
        changedChecks.push(rec);
        touched.add(rec.serviceName);
        if (prev) touched.add(prev.serviceName);
      }
    }
    const removed = replaceExisting && existing ? this.checksOf(id).filter((c) => !fresh.has(c.id)) : [];
    for (const check of removed) touched.add(check.serviceName);

    this.svcs.set(id, svc);
    for (const rec of fresh.values()) {
      this.checks.get(rec.id)?.timer?.cancel();
      this.checks.set(rec.id, rec);
    }
    for (const check of removed) {
      check.timer?.cancel();
      this.checks.delete(check.id);
    }
    if (touched.size > 0) {
      const index = this.commit(touched);
      if (serviceChanged) {
        svc.modifyIndex = index;
        if (!existing) svc.createIndex = index;
      }
      for (const rec of changedChecks) {
        rec.modifyIndex = index;
        if (rec.createIndex === 0) rec.createIndex = index;
      }
    }
    for (const rec of fresh.values()) this.armTtl(rec);
    if (touched.size > 0) this.wake();
  }

  /** PUT /v1/agent/service/deregister/:id (C-ep, C-acl vetServiceUpdate). */
  private deregister(ctx: Ctx): void {
    const id = ctx.path.slice('/v1/agent/service/deregister/'.length);
    if (this.namespaceError(ctx)) return;
    const authz = this.authorize(ctx);
    if (authz === undefined) return;
    const svc = this.svcs.get(id);
    if (!svc) return this.text(ctx, 404, `Unknown service ID ${goQuote(id)}. Ensure that the service ID is passed, not the service name.`);
    if (authz === 'anonymous') return this.denyServiceWrite(ctx, svc.name);
    this.removeService(id);
    this.ok(ctx);
  }

  /** PUT /v1/agent/check/{pass,warn,fail}/:id?note= */
  private checkNote(ctx: Ctx, op: string, status: ConsulCheckStatus): void {
    this.agentCheckUpdate(ctx, ctx.path.slice(`/v1/agent/check/${op}/`.length), status, this.first(ctx, 'note'));
  }

  /** PUT /v1/agent/check/update/:id with {"Status","Output"}. */
  private checkUpdateBody(ctx: Ctx): void {
    const decoded = decodeCheckUpdate(ctx.body);
    if ('error' in decoded) return this.text(ctx, 400, `Request decode failed: ${decoded.error}`);
    if (!VALID_STATUS.has(decoded.status)) return this.text(ctx, 400, `Invalid check status: '${decoded.status}'`);
    this.agentCheckUpdate(ctx, ctx.path.slice('/v1/agent/check/update/'.length), decoded.status as ConsulCheckStatus, decoded.output);
  }

  /** agentCheckUpdate + updateTTLCheck + CheckTTL.SetStatus (C-ep, C-acl, C-ttl). */
  private agentCheckUpdate(ctx: Ctx, checkId: string, status: ConsulCheckStatus, output: string): void {
    if (this.namespaceError(ctx)) return;
    const authz = this.authorize(ctx);
    if (authz === undefined) return;
    const check = this.checks.get(checkId);
    if (!check) return this.text(ctx, 404, `Unknown check ID ${goQuote(checkId)}. Ensure that the check ID is passed, not the check name.`);
    if (authz === 'anonymous') return this.denyServiceWrite(ctx, check.serviceName);
    const bytes = Buffer.from(output, 'utf8');
    if (bytes.length > check.outputMaxSize) {
      output = `${bytes.subarray(0, check.outputMaxSize).toString('utf8')} ... (captured ${check.outputMaxSize} of ${bytes.length} bytes)`;
    }
    this.updateCheck(check, status, output);
    check.lastOutput = output;
    this.armTtl(check);
    this.ok(ctx);
  }

  /** GET /v1/health/service/:service (C-hep healthServiceNodes, C-http parse*, C-bq). */
  private async health(ctx: Ctx): Promise<void> {
    if (this.namespaceError(ctx)) return;
    const nodeMeta = new Map<string, string>();
    for (const pair of ctx.query.get('node-meta') ?? []) {
      const colon = pair.indexOf(':');
      nodeMeta.set(colon < 0 ? pair : pair.slice(0, colon), colon < 0 ? '' : pair.slice(colon + 1));
    }
    const dc = this.first(ctx, 'dc') !== '' ? this.first(ctx, 'dc') : this.datacenter;
    // parseConsistency
    let allowStale = ctx.query.has('stale');
    const requireConsistent = ctx.query.has('consistent');
    const maxStale = this.first(ctx, 'max_stale');
    if (maxStale !== '') {
      const d = parseGoDuration(maxStale);
      if ('error' in d) return this.text(ctx, 400, `Invalid max_stale value ${goQuote(maxStale)}`);
      if (d.ns > 0n) allowStale = true;
    }
    if (allowStale && requireConsistent) return this.text(ctx, 400, 'Cannot specify ?stale with ?consistent, conflicting semantics.');
    // parseWait
    let waitNs = 0n;
    const wait = this.first(ctx, 'wait');
    if (wait !== '') {
      const d = parseGoDuration(wait);
      if ('error' in d) return this.text(ctx, 400, 'Invalid wait time');
      waitNs = d.ns;
    }
    let minIndex = 0n;
    const indexParam = this.first(ctx, 'index');
    if (indexParam !== '') {
      if (!/^\d+$/.test(indexParam) || BigInt(indexParam) > 2n ** 64n - 1n) return this.text(ctx, 400, 'Invalid index');
      minIndex = BigInt(indexParam);
    }
    const tags = ctx.query.get('tag');
    const name = ctx.path.slice('/v1/health/service/'.length);
    if (name === '') return this.text(ctx, 400, 'Missing service name');
    // The RPC: datacenter, token, filter.
    if (dc !== this.datacenter) return this.text(ctx, 500, 'No path to datacenter');
    const authz = this.authorize(ctx);
    if (authz === undefined) return;
    if (this.first(ctx, 'filter') !== '') return this.text(ctx, 500, FILTER_ERROR);
    const nameLower = name.toLowerCase();
    if (minIndex > 0n) {
      let timeoutMs = nsToMs(waitNs);
      if (timeoutMs > MAX_QUERY_TIME_MS) timeoutMs = MAX_QUERY_TIME_MS;
      if (timeoutMs <= 0) timeoutMs = DEFAULT_QUERY_TIME_MS;
      timeoutMs += Math.random() * (timeoutMs / JITTER_FRACTION);
      await this.block(ctx, () => BigInt(this.serviceIndex(nameLower)) > minIndex, timeoutMs);
      if (ctx.res.destroyed || this.stopped) return;
    }
    const headers: Record<string, string> = {
      'X-Consul-Effective-Consistency': requireConsistent ? 'consistent' : allowStale ? 'stale' : 'leader',
      'X-Consul-Index': String(Math.max(1, this.serviceIndex(nameLower))),
      'X-Consul-Knownleader': 'true',
      'X-Consul-Lastcontact': '0',
      'X-Consul-Query-Backend': 'blocking-query',
    };
    // Consul parses ?passing only after the query ran (the FIXME in healthServiceNodes).
    let onlyPassing = false;
    if (ctx.query.has('passing')) {
      const value = this.first(ctx, 'passing');
      const parsed = value === '' ? true : goParseBool(value);
      if (parsed === undefined) return this.text(ctx, 400, 'Invalid value for ?passing', headers);
      onlyPassing = parsed;
    }
    let entries = authz === 'anonymous' ? [] : this.entries(nameLower, tags, nodeMeta);
    if (onlyPassing) entries = filterNonPassing(entries);
    this.send(ctx, 200, goJson(entries, ctx.query.has('pretty')), { 'Content-Type': 'application/json', ...headers });
  }

  /** Resolves when ready() holds after a write, at the timeout, or when the connection/agent ends. */
  private block(ctx: Ctx, ready: () => boolean, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.waiters.delete(check);
        ctx.res.off('close', finish);
        resolve();
      };
      const check = (): void => {
        if (this.stopped || ctx.res.destroyed || ready()) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      timer.unref();
      ctx.res.on('close', finish);
      this.waiters.add(check);
      check();
    });
  }

  private nodeJson(): Record<string, unknown> {
    const v = ipVersion(this.nodeAddress) === 6 ? 'ipv6' : 'ipv4';
    return {
      ID: this.nodeId,
      Node: this.nodeName,
      Address: this.nodeAddress,
      Datacenter: this.datacenter,
      TaggedAddresses: { lan: this.nodeAddress, [`lan_${v}`]: this.nodeAddress, wan: this.nodeAddress, [`wan_${v}`]: this.nodeAddress },
      Meta: { 'consul-network-segment': '' },
      CreateIndex: INITIAL_INDEX,
      ModifyIndex: INITIAL_INDEX,
    };
  }

  private checkJson(c: CheckRec): { Status: string } & Record<string, unknown> {
    return {
      Node: this.nodeName,
      CheckID: c.id,
      Name: c.name,
      Status: c.status,
      Notes: c.notes,
      Output: c.output,
      ServiceID: c.serviceId,
      ServiceName: c.serviceName,
      ServiceTags: c.serviceTags ?? [],
      Type: 'ttl',
      Interval: '',
      Timeout: '',
      ExposedPort: 0,
      Definition: {},
      CreateIndex: c.createIndex,
      ModifyIndex: c.modifyIndex,
    };
  }

  /** CheckServiceNodes for a service name (C-hep): node checks first, then the service's, by ID. */
  private entries(nameLower: string, tags: string[] | undefined, nodeMeta: Map<string, string>): HealthEntry[] {
    const node = this.nodeJson();
    const meta = node.Meta as Record<string, string>;
    for (const [k, v] of nodeMeta) if (meta[k] !== v) return [];
    const serf = {
      Node: this.nodeName,
      CheckID: 'serfHealth',
      Name: 'Serf Health Status',
      Status: 'passing',
      Notes: '',
      Output: 'Agent alive and reachable',
      ServiceID: '',
      ServiceName: '',
      ServiceTags: [],
      Type: '',
      Interval: '',
      Timeout: '',
      ExposedPort: 0,
      Definition: {},
      CreateIndex: INITIAL_INDEX,
      ModifyIndex: INITIAL_INDEX,
    };
    return [...this.svcs.values()]
      .filter((s) => s.name.toLowerCase() === nameLower)
      .filter((s) => (tags ?? []).every((tag) => (s.tags ?? []).some((t) => t.toLowerCase() === tag.toLowerCase())))
      .sort((a, b) => compareLower(a.id, b.id))
      .map((s) => ({
        Node: node,
        Service: {
          ...(s.kind !== '' ? { Kind: s.kind } : {}),
          ID: s.id,
          Service: s.name,
          Tags: s.tags ?? [],
          Address: s.address,
          ...(Object.keys(s.taggedAddresses).length > 0 ? { TaggedAddresses: s.taggedAddresses } : {}),
          Meta: s.meta,
          ...(s.port !== 0 ? { Port: s.port } : {}),
          Weights: s.weights,
          EnableTagOverride: s.enableTagOverride,
          Proxy: { Mode: '', MeshGateway: {}, Expose: {} },
          Connect: {},
          PeerName: '',
          CreateIndex: s.createIndex,
          ModifyIndex: s.modifyIndex,
        },
        Checks: [serf, ...this.checksOf(s.id).map((c) => this.checkJson(c))],
      }));
  }
}

interface HealthEntry {
  Node: Record<string, unknown>;
  Service: Record<string, unknown>;
  Checks: Array<{ Status: string }>;
}

function compareLower(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

/** filterNonPassing (C-hep): swaps a failing entry with the last one, as Consul does. */
function filterNonPassing(nodes: HealthEntry[]): HealthEntry[] {
  const out = [...nodes];
  let n = out.length;
  outer: for (let i = 0; i < n; i++) {
    for (const check of out[i]!.Checks) {
      if (check.Status !== 'passing') {
        out[i] = out[n - 1]!;
        n--;
        i--;
        continue outer;
      }
    }
  }
  return out.slice(0, n);
}
