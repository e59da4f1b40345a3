import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import {
  BadRequestException,
  Catch,
  ConflictException,
  Controller,
  Get,
  HttpException,
  type INestApplication,
  Module,
  Param,
  Post,
  type Type,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CallCycleError,
  Cluster,
  ClusterModule,
  ClusterShuttingDownError,
  ClusterUnavailableError,
  Grain,
  GrainActivationError,
  GrainCallAbortedError,
  type GrainClient,
  GrainConfigurationError,
  GrainError,
  GrainExceptionFilter,
  GrainIdentityRefusedError,
  GrainInvocationError,
  GrainOverloadedError,
  GrainSerializationError,
  GrainTimeoutError,
  HashIdentityLookup,
  InjectGrainClient,
  InvalidGrainCallError,
  MessageTooLargeError,
  MethodNotCallableError,
  OutcomeUnknownError,
  StaticProvider,
  UnknownKindError,
} from 'nestjs-grains';
import { MAX_HTTP_RESPONSE_BYTES } from '../../lib/cluster/errors.js';
import { remotingService } from '../../lib/remote/service-definition.js';
import { decodeFrame, encodeFrame, type RemoteErrorInfo, Status } from '../../lib/remote/wire.js';
import { freePort } from '../support/free-port.js';

/** Nothing internal (grain names, identities, advice for developers, stack frames) may reach a client in a 500. */
const LEAKS = /secret|account\/|deposit|ClusterModule|\bat\s|\.ts:\d/;
const INTERNAL_ERROR = { statusCode: 500, error: 'Internal Server Error', message: 'Internal server error' };

/** An application of `controllers` answering through `filter` (APP_FILTER unless `global`), initialised, not listening. */
async function httpApp(controllers: Type[], filter: { useClass: Type } | { global: (app: INestApplication) => GrainExceptionFilter }, imports: Type[] = []) {
  const moduleRef = await Test.createTestingModule({
    imports,
    controllers,
    providers: 'useClass' in filter ? [{ provide: APP_FILTER, useClass: filter.useClass }] : [],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  if ('global' in filter) app.useGlobalFilters(filter.global(app));
  await app.init();
  return app;
}

// Each runtime error, as the runtime builds it.
const RUNTIME_ERRORS: Readonly<Record<string, () => unknown>> = {
  'timeout-running': () => new GrainTimeoutError('account', 'secret-1', 'deposit', 250, false),
  'timeout-queued': () => new GrainTimeoutError('account', 'secret-1', 'deposit', 250, true),
  overloaded: () => new GrainOverloadedError('account', 'secret-1', 100),
  unavailable: () => new ClusterUnavailableError('Call account/secret-1.deposit() was sent on 32 times without finding a live activation.'),
  'shutting-down': () => new ClusterShuttingDownError(),
  'outcome-unknown': () => new OutcomeUnknownError('account', 'secret-1', 'deposit', 'stream closed by 10.0.0.7:4001'),
  'invalid-call': () => new InvalidGrainCallError('A grain identity may be at most 1024 UTF-8 bytes (account/secret…)'),
  'identity-refused': () => new GrainIdentityRefusedError('account', 'secret-1'),
  'arguments-too-large': () => new MessageTooLargeError('account', 'secret-1', 'deposit', true, '5000000 bytes of arguments'),
  'result-too-large': () => new MessageTooLargeError('account', 'secret-1', 'deposit', false, '5000000 bytes of result'),
  'unknown-kind': () => new UnknownKindError('account'),
  'method-not-callable': () => new MethodNotCallableError('account', 'deposit'),
  'call-cycle': () => new CallCycleError(['account/secret-1', 'transfer/t1', 'account/secret-1']),
  'activation-failed': () => new GrainActivationError('account', 'secret-1', 'secret connection string refused'),
  serialization: () => new GrainSerializationError('account', 'secret-1', 'deposit', false, 'a function'),
  aborted: () => new GrainCallAbortedError('account', 'secret-1', 'deposit', false),
  configuration: () => new GrainConfigurationError('Duplicate kind "account" in ClusterModule.forFeature()'),
  'grain-threw': () => new GrainInvocationError('account', 'secret-1', 'deposit', 'TypeError', 'secret is undefined', undefined),
  'grain-threw-coded': () => new GrainInvocationError('account', 'secret-1', 'deposit', 'Error', 'connect ECONNREFUSED secret:5432', 'ECONNREFUSED'),
  // A grain that let a runtime error of a call of its own through: it ran, so the defaults do not apply.
  'grain-let-overload-through': () =>
    new GrainInvocationError('transfer', 't1', 'execute', 'GrainOverloadedError', 'Grain account/secret-1 has 100…', 'GRAIN_OVERLOADED'),
  'grain-threw-business': () =>
    new GrainInvocationError('account', 'a1', 'withdraw', 'InsufficientFundsError', 'Balance 5, requested 10.', 'INSUFFICIENT_FUNDS'),
  'plain-error': () => Object.assign(new Error('connect ECONNREFUSED secret:5432'), { code: 'ECONNREFUSED' }),
  'nest-conflict': () => new ConflictException({ message: 'Seat 12A is taken', seat: '12A' }),
  'own-grain-error': () => new GrainError('A GrainError subclass of the app', 'APP_SPECIFIC'),
};

@Controller('throw')
class ThrowingController {
  @Get(':name')
  throw(@Param('name') name: string): never {
    throw RUNTIME_ERRORS[name]!();
  }
}

describe('GrainExceptionFilter: each runtime error code → its HTTP status', () => {
  let app: INestApplication;
  const get = (name: string) => request(app.getHttpServer()).get(`/throw/${name}`);

  beforeAll(async () => {
    app = await httpApp([ThrowingController], { useClass: GrainExceptionFilter });
  });
  afterAll(async () => {
    await app?.close();
  });

  const mapped: ReadonlyArray<{ name: string; status: number; code: string; message: string; retryAfter?: string }> = [
    { name: 'timeout-running', status: 504, code: 'GRAIN_TIMEOUT', message: 'The operation did not finish in time; it may or may not have been applied.' },
    { name: 'timeout-queued', status: 504, code: 'GRAIN_TIMEOUT', message: 'The operation did not finish in time; it may or may not have been applied.' },
    {
      name: 'overloaded',
      status: 503,
      code: 'GRAIN_OVERLOADED',
      message: 'Too many requests are waiting for this resource; nothing was changed. Retry later.',
      retryAfter: '1',
    },
    {
      name: 'unavailable',
      status: 503,
      code: 'GRAIN_CLUSTER_UNAVAILABLE',
      message: 'The resource is not available right now; nothing was changed. Retry later.',
      retryAfter: '1',
    },
    {
      name: 'shutting-down',
      status: 503,
      code: 'GRAIN_CLUSTER_SHUTTING_DOWN',
      message: 'The service is shutting down; nothing was changed. Retry.',
      retryAfter: '1',
    },
    {
      name: 'outcome-unknown',
      status: 502,
      code: 'GRAIN_OUTCOME_UNKNOWN',
      message: 'The server running the operation was lost before it answered; the operation may or may not have been applied.',
    },
    { name: 'invalid-call', status: 400, code: 'GRAIN_INVALID_CALL', message: 'The request names a resource that cannot exist; nothing was changed.' },
    {
      name: 'identity-refused',
      status: 400,
      code: 'GRAIN_IDENTITY_REFUSED',
      message: 'The request names a resource that is not accepted; nothing was changed.',
    },
    { name: 'arguments-too-large', status: 413, code: 'GRAIN_MESSAGE_TOO_LARGE', message: 'The request is too large; nothing was changed.' },
  ];
  it.each(mapped)('$name → $status ($code)', async ({ name, status, code, message, retryAfter }) => {
    const res = await get(name);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ statusCode: status, error: expect.any(String), message, code });
    expect(res.headers['retry-after']).toBe(retryAfter);
    expect(res.text).not.toMatch(/secret|10\.0\.0\.7/);
  });

  it.each([
    'result-too-large',
    'unknown-kind',
    'method-not-callable',
    'call-cycle',
    'activation-failed',
    'serialization',
    'aborted',
    'configuration',
    'grain-threw',
    'grain-threw-coded',
    'grain-let-overload-through',
    'grain-threw-business',
    'own-grain-error',
  ])('%s → 500 that shows nothing internal', async (name) => {
    const res = await get(name);
    expect(res.status).toBe(500);
    expect(res.body).toEqual(INTERNAL_ERROR);
    expect(res.headers['retry-after']).toBeUndefined();
    expect(res.text).not.toMatch(LEAKS);
  });

  it('leaves errors that are not grain errors to Nest: an HttpException as it is, anything else Nest’s 500', async () => {
    const conflict = await get('nest-conflict').expect(409);
    expect(conflict.body).toEqual({ message: 'Seat 12A is taken', seat: '12A' });
    const plain = await get('plain-error').expect(500);
    expect(plain.body).toEqual({ statusCode: 500, message: 'Internal server error' }); // BaseExceptionFilter's own body
    expect(plain.text).not.toMatch(LEAKS);
  });
});

describe('GrainExceptionFilter: the application’s codes', () => {
  const codes = {
    INSUFFICIENT_FUNDS: 409,
    ECONNREFUSED: { status: 503, message: 'The database is not available; retry later.', retryAfter: 30 },
    GRAIN_OVERLOADED: { status: 429, message: 'Slow down.', retryAfter: 2 },
    GRAIN_UNKNOWN_KIND: { status: 503, message: 'Starting up; retry later.', retryAfter: 1 },
    APP_SPECIFIC: { status: 500, message: 'shown nowhere: a 500 is always the generic answer' },
  };

  /** Registered with APP_FILTER: the options go to super(). */
  @Catch(GrainError)
  class AppExceptionFilter extends GrainExceptionFilter {
    constructor() {
      super({ codes });
    }
  }

  const registrations: ReadonlyArray<readonly [string, Parameters<typeof httpApp>[1]]> = [
    ['a subclass registered with APP_FILTER', { useClass: AppExceptionFilter }],
    [
      'app.useGlobalFilters(new GrainExceptionFilter({ httpAdapter, codes }))',
      { global: (app) => new GrainExceptionFilter({ httpAdapter: app.getHttpAdapter(), codes }) },
    ],
  ];
  describe.each(registrations)('%s', (_name, registration) => {
    let app: INestApplication;
    const get = (name: string) => request(app.getHttpServer()).get(`/throw/${name}`);

    beforeAll(async () => {
      app = await httpApp([ThrowingController], registration);
    });
    afterAll(async () => {
      await app?.close();
    });

    it('answers a business code a grain threw with its status and the grain’s own message', async () => {
      const res = await get('grain-threw-business').expect(409);
      expect(res.body).toEqual({ statusCode: 409, error: 'Conflict', message: 'Balance 5, requested 10.', code: 'INSUFFICIENT_FUNDS' });
    });

    it('answers a coded error a grain threw with the message given, and Retry-After', async () => {
      const res = await get('grain-threw-coded').expect(503);
      expect(res.body).toEqual({ statusCode: 503, error: 'Service Unavailable', message: 'The database is not available; retry later.', code: 'ECONNREFUSED' });
      expect(res.headers['retry-after']).toBe('30');
    });

    it('answers runtime codes it maps its own way, also when a grain let one through', async () => {
      for (const name of ['overloaded', 'grain-let-overload-through']) {
        const res = await get(name).expect(429);
        expect(res.body).toEqual({ statusCode: 429, error: 'Too Many Requests', message: 'Slow down.', code: 'GRAIN_OVERLOADED' });
        expect(res.headers['retry-after']).toBe('2');
      }
      await get('unknown-kind').expect(503, {
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'Starting up; retry later.',
        code: 'GRAIN_UNKNOWN_KIND',
      });
    });

    it('keeps the defaults of the codes it does not map, and a 500 generic', async () => {
      await get('timeout-running').expect(504);
      await get('grain-threw').expect(500, INTERNAL_ERROR);
      await get('own-grain-error').expect(500, INTERNAL_ERROR);
    });
  });

  it('says how to fix a filter that has no HTTP adapter (useGlobalFilters without one)', async () => {
    const filter = new GrainExceptionFilter();
    const host = { getType: () => 'http', getArgByIndex: () => ({}) } as never;
    expect(() => filter.catch(new GrainTimeoutError('a', 'b', 'c', 1, true), host)).toThrow(/httpAdapter: app\.getHttpAdapter\(\)/);
  });
});

// HTTP exceptions thrown by grains -----------------------------------------------------------

/** Every way a grain below throws, by name. */
const SEAT_FAILURES: Readonly<Record<string, () => never>> = {
  'custom-body': () => {
    throw new ConflictException({ message: 'Seat 12A is taken', code: 'SEAT_TAKEN', seat: '12A', alternatives: ['12B', '14C'], held: { until: null, by: 7 } });
  },
  'string-message': () => {
    throw new ConflictException('Seat 12A is taken');
  },
  'string-response': () => {
    throw new HttpException('I am a teapot', 418);
  },
  validation: () => {
    throw new BadRequestException(['seat must be a string', 'amount must be positive']);
  },
  'server-error': () => {
    throw new HttpException({ statusCode: 503, message: 'Bookings are paused', retry: true }, 503);
  },
  'too-large': () => {
    throw new ConflictException({ message: 'Seat 12A is taken', blob: 'x'.repeat(MAX_HTTP_RESPONSE_BYTES) });
  },
  'not-json': () => {
    throw new ConflictException({ message: 'Seat 12A is taken', count: 10n });
  },
};

@Grain({ kind: 'seat' })
class SeatGrain {
  book(how: string): never {
    return SEAT_FAILURES[how]!();
  }
}

/** Books a seat through the seat's grain, and lets what it throws through. */
@Grain({ kind: 'booking' })
class BookingGrain {
  constructor(@InjectGrainClient('seat') private readonly seats: GrainClient<SeatGrain>) {}
  book(seat: string, how: string): Promise<never> {
    return this.seats.get(seat).book(how);
  }
}

@Controller()
class SeatsController {
  constructor(@InjectGrainClient('seat') private readonly seats: GrainClient<SeatGrain>) {}

  @Post('grain/:id/:how')
  book(@Param('id') id: string, @Param('how') how: string): Promise<never> {
    return this.seats.get(id).book(how);
  }
}

/** What a grain that called the seat's grain answers (hosting members only). */
@Controller()
class BookingsController {
  constructor(@InjectGrainClient('booking') private readonly bookings: GrainClient<BookingGrain>) {}

  @Post('booking/:id/:how')
  book(@Param('id') id: string, @Param('how') how: string): Promise<never> {
    return this.bookings.get(id).book(`seat-of-${id}`, how);
  }

  /** The same exception thrown by the controller itself: what Nest answers without grains. */
  @Post('direct/:how')
  direct(@Param('how') how: string): never {
    return SEAT_FAILURES[how]!();
  }
}

describe('an HttpException thrown by a grain keeps its status and response, on this member and across members', () => {
  let host: INestApplication; // hosts the seat grains: its calls are local
  let gateway: INestApplication; // client only: its calls cross gRPC to the host

  beforeAll(async () => {
    const port = await freePort();
    const members = [`127.0.0.1:${port}`];
    const member = async (hosts: boolean) => {
      @Module({
        imports: [
          ClusterModule.forRoot({
            clusterName: 'http-errors',
            provider: new StaticProvider({ members, probeInterval: 50 }),
            identityLookup: new HashIdentityLookup(),
            remote: hosts ? { host: '127.0.0.1', port } : {},
          }),
          ClusterModule.forFeature(hosts ? [SeatGrain, BookingGrain] : ['seat', 'booking']),
        ],
        controllers: [SeatsController, BookingsController],
      })
      class MemberModule {}
      return httpApp([], { useClass: GrainExceptionFilter }, [MemberModule]);
    };
    host = await member(true);
    gateway = await member(false);
    await Promise.all([host, gateway].map((app) => app.get(Cluster).whenReady('5s')));
  });
  afterAll(async () => {
    await gateway?.close();
    await host?.close();
  });

  /** What each member answers for `how`: the grain's caller on its own member, one on another, and through a grain that called it. */
  const answers = async (how: string) => {
    const id = `seat-${randomUUID().slice(0, 8)}`;
    const [local, remote, relayed] = await Promise.all([
      request(host.getHttpServer()).post(`/grain/${id}/${how}`),
      request(gateway.getHttpServer()).post(`/grain/${id}/${how}`),
      request(gateway.getHttpServer()).post(`/booking/${id}/${how}`),
    ]);
    expect(gateway.get(Cluster).stats().activations).toBe(0); // the gateway's calls did cross to the host
    return [local, remote, relayed];
  };

  it.each([
    ['custom-body', 409],
    ['string-message', 409],
    ['string-response', 418],
    ['validation', 400],
    ['server-error', 503],
  ])('%s: %i with the body Nest gives it, from the local, the remote and a relaying grain alike', async (how, status) => {
    const direct = await request(host.getHttpServer()).post(`/direct/${how}`);
    expect(direct.status).toBe(status);
    for (const res of await answers(how)) {
      expect(res.status).toBe(status);
      expect(res.body).toEqual(direct.body);
    }
  });

  it('a custom body arrives whole (nested objects, arrays, null)', async () => {
    const [, remote] = await answers('custom-body');
    expect(remote!.body).toEqual({ message: 'Seat 12A is taken', code: 'SEAT_TAKEN', seat: '12A', alternatives: ['12B', '14C'], held: { until: null, by: 7 } });
  });

  it.each(['too-large', 'not-json'])('a response that cannot travel (%s) keeps the status, with the exception’s message only', async (how) => {
    for (const res of await answers(how)) {
      expect(res.status).toBe(409);
      expect(res.body).toEqual({ statusCode: 409, message: 'Seat 12A is taken' });
    }
  });

  it('the error says so, and carries the status and response for code that catches it', async () => {
    const seats = gateway.get(Cluster).client<SeatGrain>('seat');
    const remote = (await seats
      .get('seat-x')
      .book('custom-body')
      .catch((e: unknown) => e)) as GrainInvocationError;
    expect(remote).toBeInstanceOf(GrainInvocationError);
    expect(remote).toMatchObject({ remoteName: 'ConflictException', httpStatus: 409, httpResponse: { code: 'SEAT_TAKEN', seat: '12A' } });
    const dropped = (await host
      .get(Cluster)
      .client<SeatGrain>('seat')
      .get('seat-x')
      .book('too-large')
      .catch((e: unknown) => e)) as GrainInvocationError;
    expect(dropped).toMatchObject({ httpStatus: 409, httpResponse: undefined });
    expect(dropped.message).toMatch(/HTTP response was dropped: more than 16384 bytes of JSON/);
  });
});

// Hostile values from a peer ---------------------------------------------------------------

/** What the hostile member answers, per identity called: an INVOCATION_FAILED response with these fields. */
const HOSTILE: Readonly<Record<string, Partial<RemoteErrorInfo>>> = {
  'status-9999': { httpStatus: 9999, httpResponse: '{"message":"x"}' },
  'status-99': { httpStatus: 99, httpResponse: '{"message":"x"}' },
  'status-0': { httpStatus: 0, httpResponse: '{"message":"x"}' },
  'invalid-json': { httpStatus: 409, httpResponse: '{"message": "unterminated' },
  // Fewer characters than the bound, more bytes (é is 2 bytes of UTF-8).
  'too-large': { httpStatus: 409, httpResponse: JSON.stringify({ blob: 'é'.repeat(MAX_HTTP_RESPONSE_BYTES / 2) }) },
  'a-number': { httpStatus: 409, httpResponse: '42' },
  'null-response': { httpStatus: 409, httpResponse: 'null' },
  'no-response': { httpStatus: 409 },
  'well-formed': { httpStatus: 409, httpResponse: '{"message":"Seat 12A is taken","seat":"12A"}' },
};

/**
 * A gRPC server at a listed address that answers the handshake as a member hosting "seat", and
 * every request with INVOCATION_FAILED and the `HOSTILE` fields of the identity called.
 */
async function hostileMember(port: number): Promise<Server> {
  const server = new Server();
  const address = `127.0.0.1:${port}`;
  server.addService(remotingService, {
    connect: (stream: ServerDuplexStream<Buffer, Buffer>) => {
      stream.on('data', (chunk: Buffer) => {
        const frame = decodeFrame(chunk);
        if ('handshake' in frame) {
          const member = { memberId: address, incarnation: 'hostile-1', address, kinds: ['seat'] };
          stream.write(encodeFrame({ handshakeAck: { accepted: true, protocol: 1, member, reason: '', leaving: false, closing: false } }));
        } else if ('batch' in frame) {
          const { strings, requests } = frame.batch;
          const responses = requests.map((r) => ({
            id: r.id,
            status: Status.INVOCATION_FAILED,
            result: new Uint8Array(0),
            error: { name: 'ConflictException', message: 'Seat 12A is taken', code: '', origin: '', cycle: [], ...HOSTILE[strings[r.identity]!] },
          }));
          stream.write(encodeFrame({ batch: { strings: [], requests: [], responses } }));
        }
      });
      stream.on('error', () => {});
    },
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(address, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return server;
}

describe('hostile values from a peer are ignored', () => {
  let server: Server;
  let app: INestApplication;
  const book = (id: string) => request(app.getHttpServer()).post(`/grain/${id}/custom-body`);

  beforeAll(async () => {
    const port = await freePort();
    server = await hostileMember(port);
    @Module({
      imports: [
        ClusterModule.forRoot({
          clusterName: 'http-errors-hostile',
          provider: new StaticProvider({ members: [`127.0.0.1:${port}`], probeInterval: 50 }),
          identityLookup: new HashIdentityLookup(),
          remote: {},
        }),
        ClusterModule.forFeature(['seat']),
      ],
      controllers: [SeatsController],
    })
    class GatewayModule {}
    app = await httpApp([], { useClass: GrainExceptionFilter }, [GatewayModule]);
    await app.get(Cluster).whenReady('5s');
  });
  afterAll(async () => {
    await app?.close();
    server?.forceShutdown();
  });

  it('answers a well-formed status and response as they are (the control)', async () => {
    await book('well-formed').expect(409, { message: 'Seat 12A is taken', seat: '12A' });
  });

  it.each(['status-9999', 'status-99', 'status-0'])('a status outside 100..599 (%s) is ignored: the grain threw, a 500', async (id) => {
    const res = await book(id).expect(500);
    expect(res.body).toEqual(INTERNAL_ERROR);
  });

  it.each(['invalid-json', 'too-large', 'a-number', 'null-response', 'no-response'])(
    'a response that is not JSON of a string or an object of at most 16 KiB (%s) is dropped: the status stays',
    async (id) => {
      await book(id).expect(409, { statusCode: 409, message: 'Seat 12A is taken' });
    },
  );

  it('the error a caller catches says what was ignored', async () => {
    const seats = app.get(Cluster).client<SeatGrain>('seat');
    const caught = (await seats
      .get('too-large')
      .book('x')
      .catch((e: unknown) => e)) as GrainInvocationError;
    expect(caught).toMatchObject({ httpStatus: 409, httpResponse: undefined });
    expect(caught.message).toMatch(/the HTTP response its member sent was ignored: more than 16384 bytes of JSON/);
    const bad = (await seats
      .get('status-9999')
      .book('x')
      .catch((e: unknown) => e)) as GrainInvocationError;
    expect(bad).toMatchObject({ httpStatus: undefined, httpResponse: undefined });
  });
});
