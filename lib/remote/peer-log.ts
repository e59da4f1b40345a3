/**
 * Log lines a peer causes: what it sent shows escaped (it cannot forge a log line or hide
 * text with control characters), and how many lines it causes is bounded (it cannot flood
 * the member's log, nor make the member spend its event loop writing one).
 */

/** Lines one peer may cause per window; past it, one "… suppressed" line at the window's end. */
export const PEER_LOG_LINES = 20;
/** Lines all peers together may cause per window (a stranger may claim a new member id on each stream). */
export const PEER_LOG_TOTAL_LINES = 100;
/** The window of `PEER_LOG_LINES` and `PEER_LOG_TOTAL_LINES`, in ms. */
export const PEER_LOG_WINDOW_MS = 10_000;
/** Longest peer string shown in a log line, in UTF-16 units; the rest is counted, not shown. */
export const PEER_STRING_SHOWN = 200;
/** Peers tracked at once; lines of peers beyond it count under one shared key. */
const MAX_TRACKED = 1_000;
const OTHER_PEERS = '\u0000other peers';
const ALL_PEERS = '\u0000all peers';

/**
 * Characters JSON.stringify leaves as they are that still change how a line reads: DEL and
 * the C1 controls, line and paragraph separators, bidirectional overrides and isolates,
 * zero-width and invisible formatting characters, the BOM.
 */
const INVISIBLE = /[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;
/** Control characters of every kind (for a whole message, escaped without quotes). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

const unicodeEscape = (c: string): string => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * A string a peer sent, as it may appear in a log line: in double quotes with JSON escapes
 * (newlines, control and invisible characters, lone surrogates), at most `max` units of it
 * shown and the length of the rest said.
 */
export function quote(value: string, max = PEER_STRING_SHOWN): string {
  const cut = value.length > max;
  const shown = JSON.stringify(cut ? value.slice(0, max) : value).replace(INVISIBLE, unicodeEscape);
  return cut ? `${shown}… (${value.length} characters)` : shown;
}

/** A whole message that may hold text from a peer, its control and invisible characters escaped (JSON style, no quotes added). */
export function escapeControls(message: string): string {
  return message.replace(CONTROL, unicodeEscape).replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, unicodeEscape);
}

type Level = 'warn' | 'log';

interface Window {
  start: number;
  lines: number;
  suppressed: number;
  /** How the summary line names the peer(s). */
  label: string;
}

export interface PeerLogOptions {
  readonly perPeer?: number;
  readonly total?: number;
  readonly windowMs?: number;
  readonly now?: () => number;
}

/**
 * Rate-limits the lines peers cause: `perPeer` lines per peer and `total` for all peers
 * together per window; what is over is counted, and said in one line when the window ends
 * ("Remote: N more log lines caused by … suppressed").
 */
export class PeerLog {
  private readonly windows = new Map<string, Window>();
  private readonly perPeer: number;
  private readonly total: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private lastSweep = 0;

  constructor(
    private readonly sink: (level: Level, message: string) => void,
    options: PeerLogOptions = {},
  ) {
    this.perPeer = options.perPeer ?? PEER_LOG_LINES;
    this.total = options.total ?? PEER_LOG_TOTAL_LINES;
    this.windowMs = options.windowMs ?? PEER_LOG_WINDOW_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * Log `message`, caused by the peer `key` (named `label` in a summary line), unless that
   * peer, or all peers together, caused their lines of the window already.
   * NOTE: `message` shows whatever the peer sent through `quote` (this does not escape it).
   */
  log(key: string, label: string, level: Level, message: string): void {
    const at = this.now();
    if (this.windows.size >= MAX_TRACKED && at - this.lastSweep >= 1_000) {
      this.lastSweep = at;
      this.flush(at);
    }
    const all = this.window(ALL_PEERS, 'all peers together', at);
    const peer = this.window(this.windows.has(key) || this.windows.size < MAX_TRACKED ? key : OTHER_PEERS, label, at);
    if (peer.lines >= this.perPeer) {
      peer.suppressed++;
    } else if (all.lines >= this.total) {
      all.suppressed++;
    } else {
      peer.lines++;
      all.lines++;
      this.sink(level, message);
      return;
    }
    this.arm(at);
  }

  /** Say what is still suppressed, and stop the timer. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flush(Infinity);
  }

  private window(key: string, label: string, at: number): Window {
    let w = this.windows.get(key);
    if (w !== undefined && at - w.start >= this.windowMs) {
      this.summarize(w);
      w = undefined;
    }
    if (w === undefined) {
      w = { start: at, lines: 0, suppressed: 0, label: key === OTHER_PEERS ? 'other peers' : label };
      this.windows.set(key, w);
    }
    return w;
  }

  private summarize(w: Window): void {
    if (w.suppressed === 0) return;
    const n = w.suppressed;
    w.suppressed = 0;
    this.sink('warn', `Remote: ${n} more log line${n === 1 ? '' : 's'} caused by ${w.label} within ${this.windowMs / 1_000} s suppressed`);
  }

  /** End the windows that are over: a summary for what each suppressed; forget them. */
  private flush(at: number): void {
    for (const [key, w] of this.windows) {
      if (at - w.start < this.windowMs) continue;
      this.summarize(w);
      this.windows.delete(key);
    }
  }

  /** Summarize when the first window holding suppressed lines ends. */
  private arm(at: number): void {
    if (this.timer !== undefined) return;
    let end = Infinity;
    for (const w of this.windows.values()) if (w.suppressed > 0) end = Math.min(end, w.start + this.windowMs);
    if (end === Infinity) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const now = this.now();
        this.flush(now);
        this.arm(now);
      },
      Math.max(0, end - at),
    );
    this.timer.unref();
  }
}
