import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Vitest global setup: build once (`tsc -p tsconfig.build.json`, what `npm run build` does)
 * before any test runs. The multi-process tests spawn `dist/test/support/members/member.js`
 * (and other built scripts): child processes run the tsc build, not Vitest's transforms,
 * because those are not available there and esbuild drops decorator metadata.
 */
export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  try {
    execFileSync(tsc, ['-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe', timeout: 180_000 });
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer; message: string };
    const output = `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.trim();
    throw new Error(
      `test/support/global-setup.ts: the build (tsc -p tsconfig.build.json) failed, so the multi-process tests cannot run the built members.\n${output || e.message}`,
    );
  }
}
