import { EventEmitter } from 'node:events';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import Consul from 'consul';
import type { ConsulRegistration } from './consul-registration.js';

/**
 * The four Consul calls the provider makes, typed, over the `consul` npm client (whose
 * typings lack `index`/`wait` and demand fields a TTL check does not have). Every call takes
 * a `ConsulCall` so it can be cancelled, and carries the ACL token as `X-Consul-Token`.
 */

/** Cancels the requests made with it (papi aborts a request when its ctx emits `cancel`). */
export class ConsulCall extends EventEmitter {
  /** papi: resolve with `[response, body]`, so headers such as X-Consul-Index can be read. */
  readonly includeResponse = true;
  /** papi: a request started on a cancelled ctx is refused at once. */
  canceled = false;

  cancel(): void {
    if (this.canceled) return;
    this.canceled = true;
    this.emit('cancel');
  }
}

/** A reply of `GET /v1/health/service/<name>`. */
export interface HealthServiceReply {
  readonly body: unknown;
  /** `X-Consul-Index`, as sent (unparsed). */
  readonly index: string | undefined;
  /** `X-Consul-Default-ACL-Policy`, when sent. */
  readonly defaultAclPolicy: string | undefined;
}

/** Why a call failed, for logs, health and retry decisions. */
export interface ConsulFailure {
  /** The HTTP status when Consul answered, undefined for network errors and timeouts. */
  readonly status: number | undefined;
  readonly text: string;
  /** The call was cancelled by this provider (shutdown, leave): not a failure of Consul. */
  readonly aborted: boolean;
  /** The client refused the call before sending it (a bug or a bad option, never transient). */
  readonly invalid: boolean;
}

type ClientCall = (options: Record<string, unknown>) => Promise<unknown>;

interface ConsulClient {
  readonly agent: { readonly service: { readonly register: ClientCall; readonly deregister: ClientCall }; readonly check: { readonly pass: ClientCall } };
  readonly health: { readonly service: ClientCall };
  destroy(): void;
}

// NOTE: the client's constructor typings omit `baseUrl` (which papi takes, with a path prefix
// and credentials) and its methods' option types; this is the shape it really has.
const ConsulClientClass = Consul as unknown as new (options: { baseUrl: string }) => ConsulClient;

/** The Consul HTTP API as the provider uses it. */
export class ConsulApi {
  private readonly client: ConsulClient;

  constructor(
    /** The agent's API root, ending in `/v1`. */
    baseUrl: string,
    private readonly token: string | undefined,
    private readonly datacenter: string | undefined,
  ) {
    this.client = new ConsulClientClass({ baseUrl });
  }

  /** `PUT /v1/agent/service/register`, with one TTL check that starts passing. */
  async register(registration: ConsulRegistration, timeoutMs: number, call: ConsulCall): Promise<void> {
    await this.client.agent.service.register({
      ...this.common(timeoutMs, call),
      name: registration.serviceName,
      id: registration.serviceId,
      address: registration.address,
      port: registration.port,
      meta: { ...registration.meta },
      check: {
        checkid: registration.checkId,
        name: `nestjs-grains member ${registration.member.id}`,
        notes: 'TTL passed by the member every ttl/3 while it serves.',
        ttl: registration.ttl,
        deregistercriticalserviceafter: registration.deregisterCriticalServiceAfter,
        // NOTE: a new TTL check starts critical unless told otherwise; the member is ready when it registers.
        status: 'passing',
      },
    });
  }

  /** `PUT /v1/agent/service/deregister/<id>`. */
  async deregister(serviceId: string, timeoutMs: number, call: ConsulCall): Promise<void> {
    await this.client.agent.service.deregister({ ...this.common(timeoutMs, call), id: serviceId });
  }

  /** `PUT /v1/agent/check/pass/<id>`: passing, and the TTL clock restarts. */
  async pass(checkId: string, timeoutMs: number, call: ConsulCall): Promise<void> {
    await this.client.agent.check.pass({ ...this.common(timeoutMs, call), id: checkId });
  }

  /** `GET /v1/health/service/<name>?index=…&wait=…`: blocks while `index` > 0 and nothing changed. */
  async healthService(serviceName: string, index: string, wait: string, timeoutMs: number, call: ConsulCall): Promise<HealthServiceReply> {
    const options: Record<string, unknown> = { ...this.common(timeoutMs, call), service: serviceName, index, wait };
    if (this.datacenter !== undefined) options['dc'] = this.datacenter;
    const reply = await this.client.health.service(options);
    // includeResponse: the client resolves [response, body].
    const [response, body] = Array.isArray(reply) ? (reply as [IncomingMessage | undefined, unknown]) : [undefined, reply];
    return { body, index: header(response, 'x-consul-index'), defaultAclPolicy: header(response, 'x-consul-default-acl-policy') };
  }

  /** Close the client's keep-alive connections. */
  destroy(): void {
    this.client.destroy();
  }

  private common(timeoutMs: number, call: ConsulCall): Record<string, unknown> {
    const options: Record<string, unknown> = { timeout: Math.ceil(timeoutMs), ctx: call };
    if (this.token !== undefined) options['token'] = this.token;
    return options;
  }
}

function header(response: IncomingMessage | undefined, name: string): string | undefined {
  const value = response?.headers?.[name];
  return Array.isArray(value) ? value[0] : value;
}

const MAX_BODY_IN_LOGS = 300;

/** What went wrong in a call, from the papi/consul error it rejected with. */
export function describeFailure(error: unknown): ConsulFailure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    message?: unknown;
    isResponse?: unknown;
    isAbort?: unknown;
    isValidation?: unknown;
    isTimeout?: unknown;
    response?: { statusCode?: unknown; body?: unknown };
  };
  const message = typeof e.message === 'string' ? e.message : String(error);
  if (e.isResponse === true && typeof e.response?.statusCode === 'number') {
    const status = e.response.statusCode;
    const body = bodyText(e.response.body);
    return { status, text: `HTTP ${status} ${STATUS_CODES[status] ?? ''}${body === '' ? '' : `: ${body}`}`.trim(), aborted: false, invalid: false };
  }
  return { status: undefined, text: message, aborted: e.isAbort === true, invalid: e.isValidation === true && e.isTimeout !== true && e.isAbort !== true };
}

function bodyText(body: unknown): string {
  let text = '';
  if (typeof body === 'string') text = body;
  else if (Buffer.isBuffer(body)) text = body.toString('utf8');
  else if (body !== undefined && body !== null) text = JSON.stringify(body) ?? '';
  text = text.trim().replace(/\s+/g, ' ');
  return text.length > MAX_BODY_IN_LOGS ? `${text.slice(0, MAX_BODY_IN_LOGS)}…` : text;
}
