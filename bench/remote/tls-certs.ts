/**
 * Certificates for the remote-call-tls scenario, made with the `openssl` CLI in a temporary
 * directory: a cluster CA and one certificate per member (EC P-256, serverAuth + clientAuth),
 * as a user would make them (README, "Securing the remote").
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface MemberTlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface BenchCerts {
  /** Member A's (the caller) and member B's (the callee) files. */
  readonly a: MemberTlsFiles;
  readonly b: MemberTlsFiles;
  remove(): void;
}

export function makeBenchCerts(): BenchCerts {
  const dir = mkdtempSync(join(tmpdir(), 'grains-bench-tls-'));
  const run = (args: string[]) => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 20_000 });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`remote-call-tls needs the openssl CLI to make its certificates: openssl ${args[0]} failed (${(error as Error).message})`);
    }
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=bench-ca', '-keyout', 'ca.key', '-out', 'ca.pem']);
  writeFileSync(join(dir, 'member.ext'), 'extendedKeyUsage=serverAuth,clientAuth\n');
  const member = (name: string, serial: string): MemberTlsFiles => {
    run(['req', '-new', ...ec, '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
    run([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-set_serial',
      serial,
      '-days',
      '2',
      '-extfile',
      'member.ext',
      '-out',
      `${name}.pem`,
    ]);
    return { caFile: join(dir, 'ca.pem'), certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`) };
  };
  return { a: member('member-a', '1'), b: member('member-b', '2'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
