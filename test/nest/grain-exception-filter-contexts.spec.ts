import 'reflect-metadata';
import { ExpressAdapter } from '@nestjs/platform-express';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { describe, expect, it } from 'vitest';
import { GrainConfigurationError, GrainExceptionFilter, GrainInvocationError, GrainTimeoutError, UnknownKindError } from 'nestjs-grains';

const filter = (codes?: ConstructorParameters<typeof GrainExceptionFilter>[0]) => new GrainExceptionFilter({ httpAdapter: new ExpressAdapter(), ...codes });

describe('GrainExceptionFilter outside HTTP, and its options', () => {
  it('hands a grain error back unchanged in GraphQL and microservice contexts (there is no HTTP response there)', () => {
    const timeout = new GrainTimeoutError('account', 'a1', 'deposit', 100, false);
    const conflict = new GrainInvocationError('account', 'a1', 'withdraw', 'ConflictException', 'no', 'CONFLICT');
    for (const [type, args] of [
      ['rpc', [{ data: 1 }, {}]],
      ['graphql', [{}, {}, {}, {}]],
      ['ws', [{}, {}]],
    ] as const) {
      const host = new ExecutionContextHost([...args]);
      host.setType(type);
      expect(filter().catch(timeout, host)).toBe(timeout);
      expect(filter().catch(conflict, host)).toBe(conflict);
    }
  });

  it('refuses a mapping it could not answer, naming the code, when it is made', () => {
    expect(() => filter({ codes: { BROKEN: 9999 } })).toThrow(GrainConfigurationError);
    expect(() => filter({ codes: { BROKEN: 9999 } })).toThrow(/codes\.BROKEN: status 9999/);
    expect(() => filter({ codes: { SLOW: { status: 503, retryAfter: -1 } } })).toThrow(/codes\.SLOW: retryAfter -1/);
    expect(() => filter({ codes: { SLOW: { status: 503, retryAfter: 1.5 } } })).toThrow(GrainConfigurationError);
    expect(() => filter({ codes: { FINE: { status: 503, retryAfter: 0 } } })).not.toThrow();
  });

  it('answers a runtime code mapped without a message with the status text, not the runtime’s message (it names kinds and members)', () => {
    const replies: unknown[] = [];
    const adapter = new ExpressAdapter();
    adapter.reply = (_response: unknown, body: unknown) => void replies.push(body);
    adapter.isHeadersSent = () => false;
    const f = new GrainExceptionFilter({ httpAdapter: adapter, codes: { GRAIN_UNKNOWN_KIND: 503 } });
    const host = new ExecutionContextHost([{}, {}]);
    host.setType('http');
    f.catch(new UnknownKindError('secret-kind'), host);
    expect(replies).toEqual([{ statusCode: 503, error: 'Service Unavailable', message: 'Service Unavailable', code: 'GRAIN_UNKNOWN_KIND' }]);
  });
});
