import { STATUS_CODES } from 'node:http';
import { type ArgumentsHost, Catch, type HttpServer, HttpStatus, Logger, Optional } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { GrainConfigurationError, GrainError, GrainInvocationError, MessageTooLargeError } from '../cluster/errors.js';

/** How the responses to one error code look. */
export interface GrainHttpMapping {
  /** The HTTP status. A 500 is always answered with the generic body, and logged. */
  readonly status: number;
  /**
   * What the client reads in `message`. @default the error's own message: for an error a grain
   * threw, `remoteMessage` (a business error's message, written for clients); give one when
   * mapping a runtime code, whose messages are written for developers and name grains.
   */
  readonly message?: string;
  /** Seconds to send in `Retry-After`. @default none */
  readonly retryAfter?: number;
}

/** Options of `GrainExceptionFilter`. */
export interface GrainExceptionFilterOptions {
  /**
   * The application's error codes, each a status or a `GrainHttpMapping`: the codes of errors
   * its grains throw (seen as `GrainInvocationError.remoteCode`), and runtime codes
   * (`GrainError.code`) to answer otherwise than by default. A runtime code listed here also
   * applies when a grain let that error through from a call of its own. @default {}
   */
  readonly codes?: Readonly<Record<string, GrainHttpMapping | number>>;
  /**
   * The HTTP adapter to reply through. Needed with `app.useGlobalFilters(...)` only (pass
   * `app.getHttpAdapter()`); a filter registered as a provider (`APP_FILTER`) is given it by
   * Nest. @default the application's, when Nest instantiates the filter
   */
  readonly httpAdapter?: HttpServer;
}

/** The body of the responses this filter writes itself: Nest's shape, plus the error's code. */
export interface GrainErrorResponseBody {
  readonly statusCode: number;
  readonly error?: string;
  readonly message: unknown;
  /** The error code the response was chosen by; absent from 500s. */
  readonly code?: string;
}

/**
 * How the runtime's own errors are answered unless the application maps their code. A code
 * not listed (unknown kind, method not callable, call cycle, activation failed, serialization,
 * abort, configuration) is a 500: a bug or a deployment error on the server side, never the
 * client's, and nothing of it is shown.
 *
 * NOTE: an error a grain threw (`GrainInvocationError`) is never answered from this table,
 * even when its `remoteCode` is a runtime code (the grain let one through from a call of its
 * own): the grain ran, so what "nothing was changed" promises is the grain's to say — map the
 * code in `codes` to promise it.
 */
const RUNTIME_MAPPINGS: Readonly<Record<string, GrainHttpMapping>> = {
  // Ran, or was queued: it may have been applied (neverRan tells, but one answer keeps it simple).
  GRAIN_TIMEOUT: { status: HttpStatus.GATEWAY_TIMEOUT, message: 'The operation did not finish in time; it may or may not have been applied.' },
  GRAIN_OVERLOADED: {
    status: HttpStatus.SERVICE_UNAVAILABLE,
    message: 'Too many requests are waiting for this resource; nothing was changed. Retry later.',
    retryAfter: 1,
  },
  GRAIN_CLUSTER_UNAVAILABLE: {
    status: HttpStatus.SERVICE_UNAVAILABLE,
    message: 'The resource is not available right now; nothing was changed. Retry later.',
    retryAfter: 1,
  },
  GRAIN_CLUSTER_SHUTTING_DOWN: { status: HttpStatus.SERVICE_UNAVAILABLE, message: 'The service is shutting down; nothing was changed. Retry.', retryAfter: 1 },
  // NOTE: 502, not 504: the member serving the grain was lost mid-call (an upstream failed), it
  // did not merely run late.
  GRAIN_OUTCOME_UNKNOWN: {
    status: HttpStatus.BAD_GATEWAY,
    message: 'The server running the operation was lost before it answered; the operation may or may not have been applied.',
  },
  // An identity the runtime refuses is one the client sent (a malformed or too long id).
  GRAIN_INVALID_CALL: { status: HttpStatus.BAD_REQUEST, message: 'The request names a resource that cannot exist; nothing was changed.' },
  GRAIN_IDENTITY_REFUSED: { status: HttpStatus.BAD_REQUEST, message: 'The request names a resource that is not accepted; nothing was changed.' },
  // Only when the arguments were too large (see `mappingOf`): a result too large is a 500.
  GRAIN_MESSAGE_TOO_LARGE: { status: HttpStatus.PAYLOAD_TOO_LARGE, message: 'The request is too large; nothing was changed.' },
};

const INTERNAL_ERROR: GrainErrorResponseBody = {
  statusCode: HttpStatus.INTERNAL_SERVER_ERROR,
  error: STATUS_CODES[HttpStatus.INTERNAL_SERVER_ERROR],
  message: 'Internal server error',
};

const NO_ADAPTER =
  'GrainExceptionFilter has no HTTP adapter to reply through. Register it as a provider ({ provide: APP_FILTER, useClass: GrainExceptionFilter }), or pass the adapter: app.useGlobalFilters(new GrainExceptionFilter({ httpAdapter: app.getHttpAdapter() })).';

/** What one error is answered with. */
interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly retryAfter?: number | undefined;
}

/**
 * Answers grain errors over HTTP, in Nest's shape `{ statusCode, error, message, code }`:
 *
 * - an HTTP exception a grain threw (Nest's `HttpException`, such as `ConflictException`)
 *   with its own status and response, as Nest answers it when a controller throws it — the
 *   same whether the grain ran on this member or on another;
 * - an error a grain threw, by its `remoteCode` through `options.codes`;
 * - the runtime's errors by `code`: timeout 504, overloaded and cluster unavailable or
 *   shutting down 503 with `Retry-After`, outcome unknown 502 (it may have been applied),
 *   invalid call and identity refused 400, arguments too large 413;
 * - anything else that is a grain error with a 500 that shows nothing internal; the error
 *   goes to the log.
 *
 * It catches `GrainError`s only, so every other exception keeps Nest's default handling (or
 * the application's own filters). For HTTP applications:
 *
 * ```ts
 * providers: [{ provide: APP_FILTER, useClass: GrainExceptionFilter }]
 * // or, with the application's codes:
 * app.useGlobalFilters(new GrainExceptionFilter({ httpAdapter: app.getHttpAdapter(), codes: { INSUFFICIENT_FUNDS: 409 } }));
 * ```
 *
 * A subclass may pass its options to `super(...)` (and be registered with `APP_FILTER`), read
 * codes from elsewhere (`codeOf`), or be decorated `@Catch()` to handle every exception,
 * where those that are not grain errors go to `BaseExceptionFilter`.
 */
@Catch(GrainError)
export class GrainExceptionFilter extends BaseExceptionFilter {
  private readonly logger = new Logger('GrainExceptionFilter');
  private readonly codes: ReadonlyMap<string, GrainHttpMapping>;

  constructor(@Optional() options: GrainExceptionFilterOptions = {}) {
    super(options.httpAdapter);
    this.codes = new Map(
      Object.entries(options.codes ?? {}).map(([code, mapping]) => [code, checkedMapping(code, typeof mapping === 'number' ? { status: mapping } : mapping)]),
    );
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    // NOTE: Nest runs global filters for GraphQL resolvers and microservice handlers too, where
    // there is no HTTP response to answer on: the error goes back unchanged to the transport's
    // own handling (GraphQL reports a returned error; see the README for microservices).
    if (host.getType() !== 'http') return exception as void;
    if (!(exception instanceof GrainError)) return super.catch(exception, host);
    const adapter = this.applicationRef ?? this.httpAdapterHost?.httpAdapter;
    if (adapter === undefined) throw new Error(NO_ADAPTER);
    const { status, body, retryAfter } = this.answerFor(exception);
    const response: unknown = host.getArgByIndex(1);
    if (adapter.isHeadersSent(response)) {
      adapter.end(response);
      return;
    }
    if (retryAfter !== undefined) adapter.setHeader(response, 'Retry-After', String(retryAfter));
    adapter.reply(response, body, status);
  }

  /**
   * The code `exception` is answered by, looked up in `options.codes` first: `remoteCode` for an
   * error a grain threw, else `code`. Override it to answer by something else, such as the
   * code of an activation's `cause` (which stays on the member that hosts the grain).
   */
  protected codeOf(exception: GrainError): string | undefined {
    return exception instanceof GrainInvocationError ? exception.remoteCode : exception.code;
  }

  private answerFor(exception: GrainError): Answer {
    if (exception instanceof GrainInvocationError && exception.httpStatus !== undefined) {
      const status = exception.httpStatus;
      const response = exception.httpResponse;
      // NOTE: what BaseExceptionFilter answers for an HttpException: its response when it is an
      // object, else { statusCode, message }. A response dropped on the way (too large, not
      // JSON) leaves the exception's message.
      return { status, body: typeof response === 'object' ? response : { statusCode: status, message: response ?? exception.remoteMessage } };
    }
    const mapped = this.mappingOf(exception);
    if (mapped === undefined || mapped.mapping.status === HttpStatus.INTERNAL_SERVER_ERROR) {
      const cause = exception.cause instanceof Error ? exception.cause : exception;
      this.logger.error(`${exception.name}: ${exception.message}`, cause.stack);
      return { status: HttpStatus.INTERNAL_SERVER_ERROR, body: INTERNAL_ERROR };
    }
    const { code, mapping } = mapped;
    // NOTE: a grain's own error says what it means to say; the runtime's messages name kinds,
    // identities and members, so a runtime code mapped without a message answers the status's text.
    const message = mapping.message ?? (exception instanceof GrainInvocationError ? exception.remoteMessage : (STATUS_CODES[mapping.status] ?? 'Error'));
    const body: GrainErrorResponseBody = { statusCode: mapping.status, error: STATUS_CODES[mapping.status], message, code };
    return { status: mapping.status, body, retryAfter: mapping.retryAfter };
  }

  /** The application's mapping of `codeOf(exception)`, else the runtime's of `exception.code`. */
  private mappingOf(exception: GrainError): { code: string; mapping: GrainHttpMapping } | undefined {
    const code = this.codeOf(exception);
    const own = code === undefined ? undefined : this.codes.get(code);
    if (code !== undefined && own !== undefined) return { code, mapping: own };
    if (exception instanceof GrainInvocationError || !Object.hasOwn(RUNTIME_MAPPINGS, exception.code)) return undefined;
    // NOTE: a result too large means the grain ran and answered more than members may send
    // each other: the server's doing, not the client's request.
    if (exception instanceof MessageTooLargeError && !exception.neverRan) return undefined;
    return { code: exception.code, mapping: RUNTIME_MAPPINGS[exception.code]! };
  }
}

/** `mapping` if it can be answered; else a GrainConfigurationError naming the code (at startup, not at the first error). */
function checkedMapping(code: string, mapping: GrainHttpMapping): GrainHttpMapping {
  if (!Number.isInteger(mapping.status) || mapping.status < 100 || mapping.status > 599) {
    throw new GrainConfigurationError(`GrainExceptionFilter codes.${code}: status ${String(mapping.status)} is not an HTTP status (100 to 599).`);
  }
  if (mapping.retryAfter !== undefined && (!Number.isInteger(mapping.retryAfter) || mapping.retryAfter < 0)) {
    throw new GrainConfigurationError(
      `GrainExceptionFilter codes.${code}: retryAfter ${String(mapping.retryAfter)} must be a whole number of seconds, 0 or more.`,
    );
  }
  return mapping;
}
