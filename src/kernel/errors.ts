// The registry of public error codes: every error a client can see has a stable code, an HTTP
// status and a human message. Services return business outcomes as values; at the edge they are
// turned into an ApiError, which the HTTP layer renders as {"error": {...}}.

export const ERROR_STATUS = {
  validation_failed: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  method_not_supported: 405,
  exists_with_different_fields: 409,
  idempotency_key_reused: 409,
  idempotency_key_in_use: 409,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  // Ledger business rules (LEDGER.md result codes that reject a transfer).
  linked_event_failed: 422,
  linked_event_chain_open: 422,
  accounts_must_be_different: 422,
  debit_account_not_found: 422,
  credit_account_not_found: 422,
  currency_mismatch: 422,
  pending_transfer_not_found: 422,
  pending_transfer_not_pending: 422,
  pending_transfer_has_different_fields: 422,
  pending_transfer_already_posted: 422,
  pending_transfer_already_voided: 422,
  pending_transfer_expired: 422,
  exceeds_pending_transfer_amount: 422,
  exceeds_credits: 422,
  exceeds_debits: 422,
  overflow: 422,
  invalid_state_transition: 422,
  // Payments (PAYMENTS.md).
  attempt_in_progress: 409,
  refund_exceeds_captured: 422,
  method_not_allowed: 422,
  no_available_channel: 503,
  // Escrow (ESCROW.md).
  exceeds_escrow: 422,
  rate_limited: 429,
  internal_error: 500,
  unavailable: 503,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param?: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
}

/** An infrastructure failure that makes a request safe to retry (database down, shutting down). */
export class UnavailableError extends Error {
  override name = "UnavailableError";
  constructor(message: string, readonly retryAfterSeconds = 1, options?: { cause?: unknown }) {
    super(message, options);
  }
}
