/**
 * The Consul-compatible test agent (test/support/consul-agent.ts) as a process, for the local
 * demo:
 *
 *   node dist/test/support/consul-agent-main.js [--port 8500] [--host 127.0.0.1] [--token T]
 *
 * Prints `consul test agent listening on http://<host>:<port>` once it listens. With
 * --token, ACLs are on (default deny) and T is the management token. SIGTERM/SIGINT stop it
 * (exit 0). Its state lives in memory only, like `consul agent -dev`.
 */
import { ConsulTestAgent, type ConsulTestAgentOptions } from './consul-agent.js';

function usage(problem: string): never {
  process.stderr.write(`${problem}\nusage: node dist/test/support/consul-agent-main.js [--port 8500] [--host 127.0.0.1] [--token T]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): ConsulTestAgentOptions {
  const options: ConsulTestAgentOptions = { port: 8500 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const value = (): string => {
      if (eq >= 0) return arg.slice(eq + 1);
      const next = argv[++i];
      if (next === undefined) usage(`${name} needs a value`);
      return next;
    };
    switch (name) {
      case '--port': {
        const text = value();
        const port = Number(text);
        if (!/^\d+$/.test(text) || port > 65535) usage(`--port must be 0..65535, got "${text}"`);
        options.port = port;
        break;
      }
      case '--host':
        options.host = value();
        break;
      case '--token':
        options.token = value();
        if (options.token === '') usage('--token must not be empty');
        break;
      case '--help':
      case '-h':
        usage('consul test agent');
        break;
      default:
        usage(`unknown argument "${arg}"`);
    }
  }
  return options;
}

const agent = await ConsulTestAgent.start(parseArgs(process.argv.slice(2)));
process.stdout.write(`consul test agent listening on ${agent.url}\n`);

let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  void agent.stop().then(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
