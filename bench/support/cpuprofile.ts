import { readFileSync } from 'node:fs';

/** The parts of a V8 `.cpuprofile` (as written by `node --cpu-prof`) that we read. */
interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface SelfTimeEntry {
  readonly functionName: string;
  /** `file:line` (1-based; dist/ JavaScript lines for our code, not the .ts source). */
  readonly location: string;
  readonly selfMs: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  /** Samples counted (inside the window, when one is given). */
  readonly samples: number;
  /** Top functions by self time (samples whose leaf frame is that function). */
  readonly top: readonly SelfTimeEntry[];
  /** Self time by source file. */
  readonly byFile: readonly { readonly file: string; readonly selfMs: number; readonly share: number }[];
}

function shortUrl(url: string, root: string): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  return path.startsWith(root) ? path.slice(root.length) : path;
}

/**
 * Self time per function and per file; each sample's time is the delta that follows it.
 * `windowUs` ([start, end] on the monotonic clock of `process.hrtime`, which is the clock of
 * V8 profile timestamps on Linux) keeps only the samples taken while the driver was timing,
 * so start-up (module loading, compilation) does not count.
 */
export function summarizeProfile(file: string, root: string, limit = 15, windowUs?: readonly [number, number]): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfUs = new Map<number, number>();
  const n = profile.samples.length;
  let at = profile.startTime;
  let counted = 0;
  for (let i = 0; i < n; i++) {
    at += profile.timeDeltas[i]!;
    if (windowUs !== undefined && (at < windowUs[0] || at > windowUs[1])) continue;
    const next = i + 1 < n ? profile.timeDeltas[i + 1]! : 0;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, next));
    counted++;
  }
  let totalUs = 0;
  const perFunction = new Map<string, { functionName: string; location: string; us: number }>();
  const perFile = new Map<string, number>();
  for (const [id, us] of selfUs) {
    totalUs += us;
    const frame = byId.get(id)!.callFrame;
    const fileName = shortUrl(frame.url, root);
    const location = frame.url === '' ? fileName : `${fileName}:${frame.lineNumber + 1}`;
    const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
    const key = `${name}@${location}`;
    const entry = perFunction.get(key) ?? { functionName: name, location, us: 0 };
    entry.us += us;
    perFunction.set(key, entry);
    const fileKey = frame.url === '' ? name : fileName;
    perFile.set(fileKey, (perFile.get(fileKey) ?? 0) + us);
  }
  const top = [...perFunction.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, limit)
    .map((e) => ({ functionName: e.functionName, location: e.location, selfMs: e.us / 1000, share: e.us / totalUs }));
  const byFile = [...perFile.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([f, us]) => ({ file: f, selfMs: us / 1000, share: us / totalUs }));
  return { file, totalMs: totalUs / 1000, samples: counted, top, byFile };
}
