import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.js';

/**
 * The package as a user gets it. `npm pack` runs on a copy of this checkout without dist/,
 * so the package's `prepare` script has to build it (as it does for a git install); the
 * tarball goes into a new Nest app beside Nest itself (the versions of this repository's
 * package-lock); the app's source is the README's Quick start, its `// file.ts` blocks taken
 * from README.md as they are. The app compiles with its own TypeScript, serves a grain call
 * over HTTP, and leaves on SIGTERM.
 *
 * Slow (npm, two compilations): not in `npm run test:unit`. Needs the npm registry, or an npm
 * cache holding this repository's dependencies (`--prefer-offline`).
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Not part of a checkout: installed, built, or caches. */
const NOT_CHECKED_OUT = new Set(['node_modules', 'dist', '.git', '.cache', '.mutants', 'coverage', '.vitest-cache']);
/** The app's dependencies besides the package, at the versions this repository is tested with. */
const APP_DEPENDENCIES = ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express', 'reflect-metadata', 'rxjs'];
const APP_DEV_DEPENDENCIES = ['typescript', '@types/node'];

const run = promisify(execFile);

/**
 * The environment of the npm commands run here. NOTE: under `npm test`, the environment holds
 * npm's description of this repository's script (npm_package_*, npm_lifecycle_*,
 * npm_config_local_prefix); none of it is true of the app's folder, so none of it is passed on.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false' };
  for (const key of Object.keys(env)) if (/^npm_(package|lifecycle)_/.test(key) || key === 'npm_config_local_prefix') delete env[key];
  return env;
}

async function npm(args: string[], cwd: string): Promise<void> {
  try {
    await run('npm', args, { cwd, env: npmEnv(), timeout: 150_000, maxBuffer: 16 << 20 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}:\n${e.stderr || e.stdout || e.message}`);
  }
}

/** The version of `name` in this repository's package-lock.json. */
function lockedVersion(name: string): string {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
  const version = lock.packages[`node_modules/${name}`]?.version;
  if (version === undefined) throw new Error(`package-lock.json has no ${name}`);
  return version;
}

/**
 * The fenced ```ts blocks of README.md's "## Quick start" section, split into files at their
 * `// name.ts` lines: file name → source.
 */
function quickStartFiles(): Map<string, string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Quick start\n');
  if (start < 0) throw new Error('README.md has no "## Quick start" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const files = new Map<string, string>();
  for (const [, block] of section.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    let name: string | undefined;
    for (const line of block!.split('\n').slice(0, -1)) {
      const header = /^\/\/ ([\w.-]+\.ts)(?:\s|$)/.exec(line);
      if (header) name = header[1]!;
      else if (name === undefined) throw new Error(`a ts block of the README's Quick start does not start with a "// name.ts" line: ${line}`);
      files.set(name, `${files.get(name) ?? ''}${line}\n`);
    }
  }
  return files;
}

describe('the package, installed into a new Nest app', () => {
  let work: string;
  let app: string;
  let installed: string;
  let server: ChildProcess | undefined;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'grains-consumer-'));
    // NOTE: packed from a copy, not from the repository: `prepare` rewrites dist/lib, which the
    // multi-process tests running beside this one load their members from.
    const checkout = join(work, 'checkout');
    cpSync(ROOT, checkout, { recursive: true, filter: (path) => !NOT_CHECKED_OUT.has(relative(ROOT, path).split(sep)[0]!) });
    symlinkSync(join(ROOT, 'node_modules'), join(checkout, 'node_modules'), 'dir');
    await npm(['pack', '--pack-destination', work], checkout);
    const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`npm pack made no tarball in ${work}`);

    app = join(work, 'app');
    mkdirSync(join(app, 'src'), { recursive: true });
    const versions = (names: string[]) => Object.fromEntries(names.map((name) => [name, lockedVersion(name)]));
    const manifest = {
      name: 'grains-consumer',
      private: true,
      type: 'module',
      dependencies: { 'nestjs-grains': `file:../${tarball}`, ...versions(APP_DEPENDENCIES) },
      devDependencies: versions(APP_DEV_DEPENDENCIES),
    };
    writeFileSync(join(app, 'package.json'), JSON.stringify(manifest, null, 2));
    await npm(['install', '--no-audit', '--no-fund', '--prefer-offline'], app);
    installed = join(app, 'node_modules', 'nestjs-grains');
  }, 240_000);

  afterAll(() => {
    server?.kill('SIGKILL');
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('holds dist/lib (built by `prepare`), proto/ and lua/, and no sources or tests', () => {
    for (const file of ['dist/lib/index.js', 'dist/lib/index.d.ts', 'proto/remote.proto', 'lua/claim.lua']) {
      expect(existsSync(join(installed, file)), `${file} is not in the package`).toBe(true);
    }
    expect(readdirSync(join(installed, 'dist'))).toEqual(['lib']);
    expect(readdirSync(installed).filter((name) => ['lib', 'test', 'sample-app', 'bench', 'scripts'].includes(name))).toEqual([]);
  });

  it("compiles the README's Quick start with the app's own TypeScript", async () => {
    const files = quickStartFiles();
    expect([...files.keys()], 'the Quick start has a main.ts').toContain('main.ts');
    for (const [name, source] of files) writeFileSync(join(app, 'src', name), source);
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        module: 'nodenext',
        strict: true,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
        types: ['node'],
        rootDir: 'src',
        outDir: 'dist',
      },
      include: ['src'],
    };
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc');
    const compiled = await run(process.execPath, [tsc, '-p', app], { cwd: app, timeout: 60_000 }).then(
      () => '',
      (error: { stdout?: string; message: string }) => error.stdout || error.message,
    );
    expect(compiled, 'tsc reported errors').toBe('');
  }, 90_000);

  it('serves a grain call over HTTP, then leaves on SIGTERM with exit code 0', async () => {
    const main = join(app, 'dist', 'main.js');
    if (!existsSync(main)) throw new Error('no dist/main.js: the Quick start was not compiled (the test above)');
    const port = await freePort();
    const child = spawn(process.execPath, [main], {
      cwd: app,
      env: { ...process.env, PORT: String(port), NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server = child;
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );

    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the app exited before listening:\n${output}`);
      if (Date.now() > deadline) throw new Error(`the app did not listen on ${port} within 30 s:\n${output}`);
      const answered = await fetch(base).then(
        () => true,
        () => false,
      );
      if (answered) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    for (const expected of ['1', '2']) {
      const res = await fetch(`${base}/counters/x`, { method: 'POST' });
      expect({ status: res.status, body: await res.text() }, output).toEqual({ status: 201, body: expected });
    }

    child.kill('SIGTERM');
    const timeout = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const status = await exited.finally(() => clearTimeout(timeout));
    expect(status, `after SIGTERM:\n${output}`).toEqual({ code: 0, signal: null });
  }, 60_000);
});
