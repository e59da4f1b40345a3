import { STATUS_CODES } from 'node:http';
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { GrainActivationError, GrainError, GrainInvocationError } from 'nestjs-grains';
import { StaleEpochError } from '../common/stale-epoch.error.js';
import { StoreUnavailableError } from '../common/store-unavailable.error.js';

/** How one error code is answered over HTTP. */
interface CodeMapping {
  readonly status: HttpStatus;
  /** A fixed message for the client; absent for business errors, whose own message is shown. */
  readonly message?: string;
  /** Seconds to send in `Retry-After`. */
  readonly retryAfter?: number;
}

/**
 * Error codes the API answers with something better than 500: the sample's business codes
 * (thrown by grains, seen as `GrainInvocationError.remoteCode`) and the runtime's own
 * (`GrainError.code`, also seen as a `remoteCode` when a grain let one through from a call
 * of its own).
 */
const CODE_MAPPINGS: Readonly<Record<string, CodeMapping>> = {
  INSUFFICIENT_FUNDS: { status: HttpStatus.CONFLICT },
  TRANSFER_ID_REUSED: { status: HttpStatus.CONFLICT },
  INVALID_AMOUNT: { status: HttpStatus.BAD_REQUEST },
  INVALID_TRANSFER: { status: HttpStatus.BAD_REQUEST },
  STALE_EPOCH: { status: HttpStatus.SERVICE_UNAVAILABLE, message: 'The account moved while the request ran; nothing was changed. Retry.', retryAfter: 1 },
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
  // Cluster mode only: the member hosting the grain was lost while the call ran…
  GRAIN_OUTCOME_UNKNOWN: {
    status: HttpStatus.BAD_GATEWAY,
    message: 'The member serving this resource was lost while the operation ran; it may or may not have been applied.',
  },
  // …or no member hosting the kind is known yet (this member is still learning the others).
  GRAIN_UNKNOWN_KIND: {
    status: HttpStatus.SERVICE_UNAVAILABLE,
    message: 'The resource is not available right now; nothing was changed. Retry later.',
    retryAfter: 1,
  },
  // Redis mode only (StoreUnavailableError): the ledger or journal did not take the operation…
  STORE_UNAVAILABLE: {
    status: HttpStatus.SERVICE_UNAVAILABLE,
    message: 'The data store is not available right now; nothing was changed. Retry later.',
    retryAfter: 1,
  },
  // …or a write was sent and not confirmed.
  STORE_OUTCOME_UNKNOWN: { status: HttpStatus.GATEWAY_TIMEOUT, message: 'The data store did not confirm the operation; it may or may not have been applied.' },
};

/** The JSON body of every error response. `code` is present for mapped error codes. */
export interface ErrorResponseBody {
  readonly statusCode: number;
  readonly error?: string;
  readonly message: unknown;
  readonly code?: string;
}

/**
 * Turns what a request handler throws into an HTTP response: Nest's `HttpException`s as
 * they are, grain errors by code (see `CODE_MAPPINGS`), anything else into a 500 that names
 * nothing internal; the error itself, with its stack, goes to the log.
 */
@Catch()
export class GrainExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('GrainExceptionFilter');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    const response: unknown = host.switchToHttp().getResponse();
    const { status, body, retryAfter } = this.toResponse(exception);
    if (retryAfter !== undefined) httpAdapter.setHeader(response, 'Retry-After', String(retryAfter));
    httpAdapter.reply(response, body, status);
  }

  private toResponse(exception: unknown): { status: number; body: unknown; retryAfter?: number } {
    if (exception instanceof HttpException) {
      // NOTE: the status is the exception's, whatever its body holds (terminus' 503 body, for
      // one, has no statusCode).
      const status = exception.getStatus();
      const answer = exception.getResponse();
      return { status, body: typeof answer === 'object' && answer !== null ? answer : { statusCode: status, message: answer } };
    }
    const code = errorCode(exception);
    const mapping = code === undefined ? undefined : CODE_MAPPINGS[code];
    if (code !== undefined && mapping !== undefined) {
      const message = mapping.message ?? (exception instanceof GrainInvocationError ? exception.remoteMessage : (exception as Error).message);
      const body: ErrorResponseBody = { statusCode: mapping.status, error: STATUS_CODES[mapping.status], message, code };
      return mapping.retryAfter === undefined ? { status: mapping.status, body } : { status: mapping.status, body, retryAfter: mapping.retryAfter };
    }
    this.logger.error(
      exception instanceof Error ? `${exception.name}: ${exception.message}` : `Non-error thrown: ${String(exception)}`,
      exception instanceof Error ? exception.stack : undefined,
    );
    const statusCode = HttpStatus.INTERNAL_SERVER_ERROR;
    const body: ErrorResponseBody = { statusCode, error: STATUS_CODES[statusCode], message: 'Internal server error' };
    return { status: statusCode, body };
  }
}

/** The code an error is answered by (see `CODE_MAPPINGS`), if it has one. */
function errorCode(exception: unknown): string | undefined {
  if (exception instanceof GrainInvocationError) return exception.remoteCode;
  // An account that could not load its balance (Redis unavailable, or a newer activation has
  // loaded it: STALE_EPOCH) never ran the call.
  // NOTE: only on the member that hosts it: across members the cause does not travel.
  if (exception instanceof GrainActivationError && (exception.cause instanceof StoreUnavailableError || exception.cause instanceof StaleEpochError))
    return exception.cause.code;
  if (exception instanceof GrainError) return exception.code;
  return undefined;
}
