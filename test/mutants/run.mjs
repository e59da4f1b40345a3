/**
 * `npm run mutants`: mutation testing for the guarantees that matter most (issue 8, item 13).
 *
 * Applies each bug of ./mutants.mjs, one at a time, to a throwaway copy of the working tree
 * (uncommitted changes included) and runs the tests there: every mutant must make them fail.
 * A mutant that leaves them green is a guarantee no test can see; it is reported loudly and
 * the run exits 1. The repository itself is never written to.
 *
 *   node test/mutants/run.mjs                 every mutant, whole suite each (`vitest run`)
 *   node test/mutants/run.mjs --fast          every mutant, only its own `tests` files
 *   node test/mutants/run.mjs --only a,b      some mutants (ids from mutants.mjs)
 *   options: --ref <commit> (a commit's tree instead of the working tree), --typecheck
 *            (tsc --noEmit on each mutated copy first), --no-baseline, --keep (keep the copy
 *            and the logs), --timeout <minutes per run>, --list
 *
 * Exit: 0 every mutant killed; 1 a mutant survived, or its run ended without a verdict;
 * 2 the run could not start (a `find` not found exactly once, an unknown id, a baseline
 * that is already red).
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mutants } from './mutants.mjs';

/** @typedef {import('./mutants.mjs').Mutant} Mutant */

/**
 * What one vitest run showed. `failed` lists the test files that failed, with the titles of
 * their failed tests (none when the file failed as a whole: an import error, a failing hook).
 * @typedef {object} RunResult
 * @property {'killed' | 'survived' | 'error' | 'hung'} verdict
 * @property {Array<{ file: string, tests: string[], message: string }>} failed
 * @property {number} ms
 * @property {string} log the run's output, kept in the copy
 * @property {string} [note] why there is no verdict ('error'), or what the type-check said
 */

/**
 * The part of vitest's JSON report (`--reporter=json`) read here.
 * @typedef {object} JsonReport
 * @property {Array<{ name: string, status: string, message?: string, assertionResults: Array<{ fullName: string, status: string }> }>} testResults
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const UNIT_CONFIG = 'vitest.unit.config.ts';
/** The default config: every suite, and the build first (globalSetup), which test/e2e needs. */
const FULL_CONFIG = 'vitest.config.ts';
/** Left out of the node_modules link farm: caches a vitest run writes (they stay in the copy). */
const CACHE_DIRS = new Set(['.vite', '.vite-temp', '.vitest', '.cache']);

class SetupError extends Error {}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      fast: { type: 'boolean', default: false },
      only: { type: 'string' },
      ref: { type: 'string' },
      typecheck: { type: 'boolean', default: false },
      'no-baseline': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      timeout: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const timeoutMinutes = values.timeout === undefined ? (values.fast ? 10 : 20) : Number(values.timeout);
  if (!(timeoutMinutes > 0)) throw new SetupError(`--timeout takes minutes (a positive number), got "${values.timeout}"`);
  return {
    fast: values.fast === true,
    only: values.only === undefined ? undefined : values.only.split(',').map((id) => id.trim()),
    ref: values.ref,
    typecheck: values.typecheck === true,
    baseline: values['no-baseline'] !== true,
    keep: values.keep === true,
    timeoutMs: timeoutMinutes * 60_000,
    list: values.list === true,
    help: values.help === true,
  };
}

/** @param {string[] | undefined} only */
function select(only) {
  const ids = new Set(mutants.map((m) => m.id));
  if (ids.size !== mutants.length) throw new SetupError('mutants.mjs: two mutants share an id');
  if (only === undefined) return [...mutants];
  const unknown = only.filter((id) => !ids.has(id));
  if (unknown.length > 0) throw new SetupError(`unknown mutant id(s): ${unknown.join(', ')}; known: ${[...ids].join(', ')}`);
  return mutants.filter((m) => only.includes(m.id));
}

/**
 * A throwaway copy of the working tree: tracked files as they are on disk, plus untracked files
 * that are not ignored (or, with `ref`, the tree of that commit). node_modules becomes a
 * directory of links to the repository's own entries, so a run's caches (node_modules/.vite)
 * stay in the copy and never touch the repository's.
 * @param {string | undefined} ref
 */
function copyTree(ref) {
  const copy = mkdtempSync(join(tmpdir(), 'grains-mutants-'));
  mkdirSync(join(copy, '.mutants'));
  let files = 0;
  if (ref !== undefined) {
    const tar = join(copy, '.mutants', 'tree.tar');
    execFileSync('git', ['archive', '--format=tar', '-o', tar, ref], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('tar', ['-xf', tar, '-C', copy]);
    rmSync(tar);
    files = execFileSync('git', ['ls-tree', '-r', '--name-only', '-z', ref], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\0')
      .filter((f) => f !== '').length;
  } else {
    const listing = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
    for (const file of new Set(listing.split('\0').filter((f) => f !== ''))) {
      const from = join(ROOT, file);
      // NOTE: a tracked file deleted in the working tree is gone from what is being tested too.
      if (!existsSync(from) || !lstatSync(from).isFile()) continue;
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      copyFileSync(from, join(copy, file));
      files++;
    }
  }
  mkdirSync(join(copy, 'node_modules'));
  for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
    if (!CACHE_DIRS.has(entry)) symlinkSync(join(ROOT, 'node_modules', entry), join(copy, 'node_modules', entry));
  }
  return { copy, files };
}

/**
 * @param {string} text
 * @param {string} find
 */
function occurrences(text, find) {
  let count = 0;
  for (let at = text.indexOf(find); at !== -1; at = text.indexOf(find, at + 1)) count++;
  return count;
}

/**
 * Every mutant's text must be found exactly once, and its test files must exist, before any
 * test runs: a mutant whose line moved must stop the run, not quietly test nothing.
 * @param {string} copy
 * @param {readonly Mutant[]} selected
 */
function checkMutants(copy, selected) {
  const problems = [];
  for (const m of selected) {
    const path = join(copy, m.file);
    if (!existsSync(path)) {
      problems.push(`${m.id}: ${m.file} does not exist`);
      continue;
    }
    const count = occurrences(readFileSync(path, 'utf8'), m.find);
    if (count !== 1) problems.push(`${m.id}: the text to replace occurs ${count} times in ${m.file} (must be exactly once):\n      ${JSON.stringify(m.find)}`);
    if (m.find === m.replace) problems.push(`${m.id}: find and replace are the same text`);
    if (m.tests.length === 0) problems.push(`${m.id}: no test files for --fast`);
    for (const test of m.tests) if (!existsSync(join(copy, test))) problems.push(`${m.id}: test file ${test} does not exist`);
  }
  if (problems.length > 0) throw new SetupError(`mutants.mjs is out of date with the code:\n  ${problems.join('\n  ')}`);
}

/**
 * The vitest command for a set of test files (all of them when `files` is undefined).
 * NOTE: a mutant's run stops at its first failed test (`--bail=1`): one failure kills it, and
 * the whole suite per mutant would take hours; the baseline runs in full.
 * @param {readonly string[] | undefined} files
 * @param {string} report where the JSON report goes
 * @param {boolean} bail
 */
function vitestArgs(files, report, bail) {
  const config = files === undefined || files.some((f) => f.startsWith('test/e2e/')) ? FULL_CONFIG : UNIT_CONFIG;
  return ['run', '--config', config, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...(bail ? ['--bail=1'] : []), ...(files ?? [])];
}

/**
 * Run `command` in the copy, output to `log`; kills its whole process group (vitest, its
 * workers, the member processes and redis-servers the tests started) past `timeoutMs`.
 * @param {string} copy
 * @param {string} command
 * @param {string[]} args
 * @param {string} log
 * @param {number} timeoutMs
 * @returns {Promise<{ code: number | null, hung: boolean }>}
 */
function runLogged(copy, command, args, log, timeoutMs) {
  return new Promise((resolve, reject) => {
    const chunks = /** @type {Buffer[]} */ ([]);
    const child = spawn(command, args, { cwd: copy, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    current = child;
    child.stdout.on('data', (chunk) => chunks.push(chunk));
    child.stderr.on('data', (chunk) => chunks.push(chunk));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      killGroup(child.pid);
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      current = undefined;
      writeFileSync(log, Buffer.concat(chunks));
      resolve({ code, hung });
    });
  });
}

/** The run in progress, and the copy: what an interrupted run leaves behind. */
/** @type {import('node:child_process').ChildProcess | undefined} */
let current;
/** @type {string | undefined} */
let copyDir;

/** @param {number | undefined} pid */
function killGroup(pid) {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * @param {string} copy
 * @param {string} name a file name for the log and the report
 * @param {readonly string[] | undefined} files
 * @param {number} timeoutMs
 * @returns {Promise<RunResult>}
 */
async function runTests(copy, name, files, timeoutMs) {
  const report = join(copy, '.mutants', `${name}.json`);
  const log = join(copy, '.mutants', `${name}.log`);
  rmSync(report, { force: true });
  const started = Date.now();
  const { code, hung } = await runLogged(copy, join(copy, 'node_modules', '.bin', 'vitest'), vitestArgs(files, report, name !== 'baseline'), log, timeoutMs);
  const ms = Date.now() - started;
  if (hung) return { verdict: 'hung', failed: [], ms, log, note: `no result within ${Math.round(timeoutMs / 60_000)} min; its processes were killed` };
  const failed = existsSync(report) ? failedFiles(copy, /** @type {JsonReport} */ (JSON.parse(readFileSync(report, 'utf8')))) : [];
  if (code === 0) return { verdict: 'survived', failed, ms, log };
  // NOTE: a red run with no failed test file (the build in globalSetup failed, no file matched,
  // vitest crashed) says nothing about the mutant: no verdict, rather than a false kill.
  if (failed.length === 0) return { verdict: 'error', failed, ms, log, note: `vitest exited ${code} without a failed test file` };
  return { verdict: 'killed', failed, ms, log };
}

/**
 * @param {string} copy
 * @param {JsonReport} report
 */
function failedFiles(copy, report) {
  return report.testResults
    .filter((file) => file.status === 'failed')
    .map((file) => ({
      file: relative(copy, file.name),
      tests: file.assertionResults.filter((test) => test.status === 'failed').map((test) => test.fullName),
      message: (file.message ?? '').split('\n')[0] ?? '',
    }));
}

/**
 * tsc --noEmit over the copy (`--typecheck`): a mutant must be a program that compiles, or the
 * whole suite (which builds first) would fail for the wrong reason. Returns the error lines.
 * @param {string} copy
 * @param {string} name
 * @returns {Promise<string[]>}
 */
async function typeErrors(copy, name) {
  const log = join(copy, '.mutants', `${name}.tsc.log`);
  const { code } = await runLogged(copy, join(copy, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--noEmit', '--pretty', 'false'], log, 10 * 60_000);
  if (code === 0) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => / error TS\d+:/.test(line));
}

/** @param {number} ms */
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** @param {RunResult['failed']} failed */
function describeKills(failed) {
  return failed.map((f) => `${f.file}${f.tests.length > 0 ? ` (${f.tests.length})` : ' (whole file)'}`).join(', ');
}

/**
 * @param {ReadonlyArray<{ mutant: Mutant, result: RunResult }>} rows
 */
function printTable(rows) {
  const header = ['mutant', 'result', 'time', 'killed by'];
  const lines = rows.map(({ mutant, result }) => [
    mutant.id,
    result.verdict === 'survived' ? 'SURVIVED' : result.verdict,
    seconds(result.ms),
    result.verdict === 'killed'
      ? describeKills(result.failed)
      : ((result.note ?? (result.verdict === 'survived' ? 'nothing: every test passed' : '')).split('\n')[0] ?? ''),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const format = (/** @type {string[]} */ cells) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  console.log(`\n${format(header)}\n${format(widths.map((w) => '-'.repeat(w)))}`);
  for (const line of lines) console.log(format(line));
}

async function main() {
  const options = parseOptions();
  if (options.help) {
    const header = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0] ?? '';
    console.log(header.replace(/^\/\*\*\n/, '').replace(/^ \* ?/gm, ''));
    return 0;
  }
  const selected = select(options.only);
  if (options.list) {
    for (const m of selected) console.log(`${m.id.padEnd(24)} ${m.file}\n${' '.repeat(25)}${m.description}`);
    return 0;
  }
  const { copy, files } = copyTree(options.ref);
  copyDir = copy;
  let keep = options.keep;
  try {
    console.log(
      `mutants: ${selected.length} mutant(s), ${options.fast ? 'fast (their own test files)' : 'whole suite'}; a copy of ${options.ref ?? 'the working tree'} (${files} files) in ${copy}`,
    );
    checkMutants(copy, selected);

    /** @param {Mutant} m */
    const filesOf = (m) => (options.fast ? m.tests : undefined);
    if (options.baseline) {
      // NOTE: kills mean nothing if the same tests already fail without a mutant.
      const union = options.fast ? [...new Set(selected.flatMap((m) => m.tests))] : undefined;
      process.stdout.write(`baseline (no mutant${union === undefined ? '' : `: ${union.length} test files`}) … `);
      const base = await runTests(copy, 'baseline', union, options.timeoutMs);
      console.log(`${base.verdict === 'survived' ? 'green' : base.verdict === 'killed' ? 'RED' : base.verdict} in ${seconds(base.ms)}`);
      if (base.verdict !== 'survived') {
        keep = true;
        const why = base.verdict === 'killed' ? `failing without any mutant: ${describeKills(base.failed)}` : (base.note ?? base.verdict);
        throw new SetupError(`the baseline is not green (${why}); see ${base.log}. Fix it first, or pass --no-baseline.`);
      }
    }

    /** @type {Set<string> | undefined} */
    let baseTypeErrors;
    if (options.typecheck) {
      baseTypeErrors = new Set(await typeErrors(copy, 'baseline'));
      if (baseTypeErrors.size > 0) console.log(`type-check: the copy has ${baseTypeErrors.size} type error(s) without any mutant; only new ones count`);
    }

    /** @type {Array<{ mutant: Mutant, result: RunResult }>} */
    const rows = [];
    for (const [index, m] of selected.entries()) {
      const path = join(copy, m.file);
      const original = readFileSync(path, 'utf8');
      writeFileSync(
        path,
        original.replace(m.find, () => m.replace),
      );
      process.stdout.write(`[${index + 1}/${selected.length}] ${m.id} … `);
      /** @type {RunResult} */
      let result;
      try {
        // NOTE: only errors the mutant adds count: others may be editing the working tree.
        const added = baseTypeErrors === undefined ? [] : (await typeErrors(copy, m.id)).filter((line) => !baseTypeErrors.has(line));
        result =
          added.length === 0
            ? await runTests(copy, m.id, filesOf(m), options.timeoutMs)
            : { verdict: 'error', failed: [], ms: 0, log: join(copy, '.mutants', `${m.id}.tsc.log`), note: `does not compile: ${added[0]}` };
      } finally {
        writeFileSync(path, original);
      }
      rows.push({ mutant: m, result });
      if (result.verdict === 'killed') {
        console.log(`killed in ${seconds(result.ms)} by ${describeKills(result.failed)}`);
        for (const f of result.failed) console.log(`      ${f.file}: ${f.tests[0] ?? f.message}${f.tests.length > 1 ? ` (+${f.tests.length - 1})` : ''}`);
      } else if (result.verdict === 'survived') {
        console.log(`SURVIVED (${seconds(result.ms)}): ${m.description}`);
        console.log(`      every test passed with ${m.file} changed to: ${m.replace}`);
      } else {
        console.log(`${result.verdict.toUpperCase()} (${seconds(result.ms)}): ${result.note ?? ''}; see ${result.log}`);
      }
    }

    printTable(rows);
    const survivors = rows.filter((r) => r.result.verdict === 'survived');
    const unsettled = rows.filter((r) => r.result.verdict === 'error');
    const killed = rows.length - survivors.length - unsettled.length;
    console.log(
      `\n${killed} of ${rows.length} killed${rows.some((r) => r.result.verdict === 'hung') ? ' (counting hung runs: the suite never went green)' : ''}.`,
    );
    if (survivors.length > 0) {
      console.log(`\n!!! ${survivors.length} MUTANT(S) SURVIVED: no test can see these bugs !!!`);
      for (const { mutant } of survivors) console.log(`  - ${mutant.id}: ${mutant.description} (${mutant.file})`);
    }
    if (unsettled.length > 0) console.log(`\n${unsettled.length} mutant(s) ended without a verdict: ${unsettled.map((r) => r.mutant.id).join(', ')}`);
    if (survivors.length > 0 || unsettled.length > 0) {
      keep = true;
      return 1;
    }
    return 0;
  } finally {
    if (keep) console.log(`\nThe copy and the logs of each run (.mutants/) are kept in ${copy}`);
    else rmSync(copy, { recursive: true, force: true });
  }
}

for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    killGroup(current?.pid);
    if (copyDir !== undefined) console.log(`\nInterrupted; the copy is left in ${copyDir}`);
    process.exit(130);
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(error instanceof SetupError ? `\nmutants: ${error.message}` : error);
    process.exitCode = 2;
  },
);
