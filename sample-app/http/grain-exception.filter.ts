import { STATUS_CODES } from 'node:http';
import { type ArgumentsHost, Catch, type HttpServer, HttpStatus, Logger } from '@nestjs/common';
import { GrainActivationError, type GrainError, GrainExceptionFilter, type GrainHttpMapping } from 'nestjs-grains';
import { StaleEpochError } from '../common/stale-epoch.error.js';
import { StoreUnavailableError } from '../common/store-unavailable.error.js';

const RETRY_LATER = 'The resource is not available right now; nothing was changed. Retry later.';

/**
 * The bank's error codes, over the library's defaults: its business codes (thrown by grains,
 * seen as `GrainInvocationError.remoteCode`), its stores' codes, and the runtime codes it
 * answers in its own words — listed here also because a transfer lets its accounts' errors
 * through (a `remoteCode`), where the library's defaults do not apply.
 */
export const BANK_ERROR_CODES: Readonly<Record<string, GrainHttpMapping>> = {
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
  GRAIN_CLUSTER_UNAVAILABLE: { status: HttpStatus.SERVICE_UNAVAILABLE, message: RETRY_LATER, retryAfter: 1 },
  GRAIN_CLUSTER_SHUTTING_DOWN: { status: HttpStatus.SERVICE_UNAVAILABLE, message: 'The service is shutting down; nothing was changed. Retry.', retryAfter: 1 },
  // Cluster mode only: the member hosting the grain was lost while the call ran…
  GRAIN_OUTCOME_UNKNOWN: {
    status: HttpStatus.BAD_GATEWAY,
    message: 'The member serving this resource was lost while the operation ran; it may or may not have been applied.',
  },
  // …or no member hosting the kind is known yet (this member is still learning the others).
  GRAIN_UNKNOWN_KIND: { status: HttpStatus.SERVICE_UNAVAILABLE, message: RETRY_LATER, retryAfter: 1 },
  // Redis mode only (StoreUnavailableError): the ledger or journal did not take the operation…
  STORE_UNAVAILABLE: {
    status: HttpStatus.SERVICE_UNAVAILABLE,
    message: 'The data store is not available right now; nothing was changed. Retry later.',
    retryAfter: 1,
  },
  // …or a write was sent and not confirmed.
  STORE_OUTCOME_UNKNOWN: { status: HttpStatus.GATEWAY_TIMEOUT, message: 'The data store did not confirm the operation; it may or may not have been applied.' },
};

/**
 * The library's `GrainExceptionFilter` with the bank's codes; besides, it answers every other
 * error that is not an `HttpException` with a 500 that names nothing internal (the error,
 * with its stack, goes to the log).
 */
@Catch()
export class BankExceptionFilter extends GrainExceptionFilter {
  private readonly unknownErrors = new Logger('BankExceptionFilter');

  constructor() {
    super({ codes: BANK_ERROR_CODES });
  }

  /**
   * An account that could not load its balance (Redis unavailable, or a newer activation has
   * loaded it: STALE_EPOCH) never ran the call.
   * NOTE: only on the member that hosts it: across members the cause does not travel.
   */
  protected override codeOf(exception: GrainError): string | undefined {
    const cause = exception.cause;
    if (exception instanceof GrainActivationError && (cause instanceof StoreUnavailableError || cause instanceof StaleEpochError)) return cause.code;
    return super.codeOf(exception);
  }

  override handleUnknownError(exception: unknown, host: ArgumentsHost, applicationRef: HttpServer): void {
    this.unknownErrors.error(
      exception instanceof Error ? `${exception.name}: ${exception.message}` : `Non-error thrown: ${String(exception)}`,
      exception instanceof Error ? exception.stack : undefined,
    );
    const statusCode = HttpStatus.INTERNAL_SERVER_ERROR;
    applicationRef.reply(host.getArgByIndex(1), { statusCode, error: STATUS_CODES[statusCode], message: 'Internal server error' }, statusCode);
  }
}
