// Table types for Kysely. Times are BIGINT microseconds since the epoch (UTC) on both databases,
// amounts BIGINT minor units, JSON documents TEXT; so one query reads the same on SQLite and
// PostgreSQL.

export interface LedgerAccountsTable {
  id: string;
  merchant_id: string | null;
  currency: string;
  code: number;
  normal_balance: "credit" | "debit";
  flags: number;
  owner: string | null;
  metadata: string | null;
  created_at: bigint;
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
  last_ts: bigint | null;
  transfer_count: bigint;
}

export interface LedgerCheckpointsTable {
  account_id: string;
  ts: bigint;
}

export interface LedgerTransfersTable {
  ts: bigint;
  id: string;
  merchant_id: string | null;
  debit_account_id: string;
  credit_account_id: string;
  amount: bigint;
  currency: string;
  code: number;
  flags: number;
  pending_id: string | null;
  timeout_seconds: number;
  expires_at: bigint | null;
  status: "posted" | "pending" | "voided" | "expired";
  resolved_at: bigint | null;
  reference: string | null;
  metadata: string | null;
  dr_debits_pending: bigint;
  dr_debits_posted: bigint;
  dr_credits_pending: bigint;
  dr_credits_posted: bigint;
  cr_debits_pending: bigint;
  cr_debits_posted: bigint;
  cr_credits_pending: bigint;
  cr_credits_posted: bigint;
  dr_prev_ts: bigint | null;
  cr_prev_ts: bigint | null;
}

export interface LedgerStateTable {
  id: number;
  last_ts: bigint;
  version: bigint;
}

export interface OutboxEventsTable {
  seq: bigint;
  id: string;
  /** The merchant whose object changed (null for the platform's own events); added by 0003. */
  merchant_id: string | null;
  type: string;
  created_at: bigint;
  data: string;
  published_at: bigint | null;
}

export interface IdempotencyKeysTable {
  principal: string;
  key: string;
  request_hash: string;
  status: "in_flight" | "done";
  response_status: number | null;
  response_body: string | null;
  created_at: bigint;
  locked_at: bigint;
}

export interface ApiKeysTable {
  id: string;
  merchant_id: string | null;
  name: string | null;
  key_hash: string;
  prefix: string;
  scopes: string;
  created_at: bigint;
  expires_at: bigint | null;
  revoked_at: bigint | null;
  /** Encrypted under a key derived from the API key (0005); null for keys made before it. */
  signing_secret: string | null;
  /** 1 = only signed requests are accepted with this key. */
  require_signature: number;
}

export interface SecurityEventsTable {
  id: string;
  type: string;
  /** Microseconds since the epoch. */
  created_at: bigint;
  client_address: string | null;
  key_id: string | null;
  /** Occurrences aggregated into this row (rate limit trips within one flush). */
  count: number;
  /** A small JSON object. */
  detail: string | null;
}

export interface RequestNoncesTable {
  key_id: string;
  nonce: string;
  /** Milliseconds since the epoch. */
  expires_at: bigint;
}

export interface PaymentsTable {
  id: string;
  merchant_id: string | null;
  /** Names this payment's ledger transfers (`pay.<key>.in` ...): client ids may be 64 characters. */
  ledger_key: string;
  amount: bigint;
  currency: string;
  merchant_account_id: string;
  description: string | null;
  capture_method: "automatic" | "manual";
  status: string;
  amount_captured: bigint;
  amount_refunded: bigint;
  /** Money held for a manual-capture payment (the pending transfer's amount), until capture or cancel. */
  amount_held: bigint;
  methods: string;
  return_url: string | null;
  contract_ref: string | null;
  metadata: string | null;
  client_secret: string;
  /** Hash of the creation request's fields: a repeated create with the same id must match it. */
  request_hash: string;
  latest_attempt_id: string | null;
  failure: string | null;
  expires_at: bigint;
  created_at: bigint;
  updated_at: bigint;
  version: bigint;
}

export interface ChannelAttemptsTable {
  id: string;
  flow: "pay_in" | "payout";
  /** The payment or payout this attempt belongs to. */
  parent_id: string;
  merchant_id: string | null;
  channel: string;
  method: string;
  status: string;
  amount: bigint;
  currency: string;
  installments: number | null;
  options: string | null;
  next_action: string | null;
  channel_ref: string | null;
  failure_code: string | null;
  failure_channel_code: string | null;
  failure_user_caused: number | null;
  created_at: bigint;
  updated_at: bigint;
  settled_at: bigint | null;
  requery_count: number;
  next_requery_at: bigint | null;
}

export interface RefundsTable {
  id: string;
  ledger_key: string;
  payment_id: string;
  merchant_id: string | null;
  amount: bigint;
  currency: string;
  reason: string | null;
  status: string;
  channel: string;
  channel_ref: string | null;
  failure: string | null;
  request_hash: string;
  created_at: bigint;
  updated_at: bigint;
}

export interface PayoutsTable {
  id: string;
  ledger_key: string;
  merchant_id: string | null;
  amount: bigint;
  currency: string;
  source_account_id: string;
  /** Destination details, encrypted by the vault. */
  destination: string;
  /** The masked destination shown in responses. */
  destination_masked: string;
  /** Blind index of the destination account number (exact-match search without decrypting). */
  account_number_index: string;
  channel: string;
  status: string;
  options: string | null;
  channel_ref: string | null;
  failure: string | null;
  request_hash: string;
  metadata: string | null;
  created_at: bigint;
  updated_at: bigint;
}

export interface ChannelNotificationsTable {
  id: string;
  channel: string;
  received_at: bigint;
  content_type: string | null;
  headers: string;
  /**
   * The body exactly as received, in clear: only rows received before migration 0011 that the
   * vault job has not sealed yet. Empty once `sealed_body` holds it.
   */
  body: string;
  /** The body exactly as received (UTF-8), sealed by the vault (purpose `channel.notification`). */
  sealed_body: Uint8Array | null;
  status: "received" | "applied" | "duplicate" | "rejected" | "ignored" | "failed";
  reason: string | null;
  dedupe_key: string | null;
  processed_at: bigint | null;
}

export interface WebhookEndpointsTable {
  id: string;
  merchant_id: string | null;
  url: string;
  secret: string;
  events: string;
  created_at: bigint;
  disabled_at: bigint | null;
}

export interface WebhookDeliveriesTable {
  id: string;
  event_id: string;
  endpoint_id: string;
  attempt: number;
  status: "pending" | "delivering" | "delivered" | "failed";
  response_status: number | null;
  error: string | null;
  created_at: bigint;
  next_attempt_at: bigint | null;
  finished_at: bigint | null;
}

export interface JobCursorsTable {
  name: string;
  position: bigint;
}

export interface AgreementsTable {
  id: string;
  merchant_id: string | null;
  ledger_key: string;
  contract_ref: string | null;
  amount_due: bigint;
  currency: string;
  custody_bank: string;
  status: string;
  amount_received: bigint;
  amount_released: bigint;
  amount_refunded: bigint;
  amount_converted: bigint;
  /** Held for releases and refunds the bank has not confirmed yet. */
  amount_pending_out: bigint;
  virtual_account_number: string | null;
  virtual_account_name: string | null;
  escrow_account_id: string;
  /** Payer and payee details, encrypted by the vault; the masked forms are shown. */
  payer: string;
  payer_masked: string;
  payer_name_index: string;
  payee: string;
  payee_masked: string;
  agent_account_id: string | null;
  expires_at: bigint | null;
  metadata: string | null;
  bank_attempts: number;
  next_bank_attempt_at: bigint | null;
  bank_reason: string | null;
  request_hash: string;
  created_at: bigint;
  updated_at: bigint;
  version: bigint;
}

export interface CustodyDocumentsTable {
  id: string;
  bank: string;
  kind: "notice" | "statement";
  received_at: bigint;
  content_type: string | null;
  /** The body byte for byte as received. */
  raw_body: Uint8Array;
  status: "received" | "processed" | "quarantined";
  errors: string | null;
  profile_version: number | null;
  processed_at: bigint | null;
}

export interface CustodyEntriesTable {
  id: string;
  document_id: string;
  position: number;
  bank: string;
  status: "matched" | "unmatched" | "duplicate" | "quarantined" | "ignored";
  reason: string | null;
  bank_reference: string | null;
  account: string | null;
  amount: bigint | null;
  currency: string | null;
  direction: string | null;
  reversal: number;
  /** Payer name, encrypted; with its blind index for matching. */
  payer_name: string | null;
  payer_name_index: string | null;
  remittance: string | null;
  booked_at: bigint | null;
  booking_date: string | null;
  arrival_id: string | null;
  agreement_id: string | null;
  created_at: bigint;
  updated_at: bigint;
  /** When the entry_unmatched alert went out for it. */
  alerted_at: bigint | null;
}

export interface ArrivalsTable {
  id: string;
  agreement_id: string | null;
  bank: string;
  amount: bigint;
  currency: string;
  bank_reference: string;
  account: string | null;
  source: "notice" | "manual" | "statement_match";
  document_id: string | null;
  entry_id: string | null;
  /** Held in the bank's suspense account until matched. */
  status: "matched" | "unmatched" | "reversed";
  booked_at: bigint | null;
  booking_date: string | null;
  created_at: bigint;
  created_by: string | null;
  reason: string | null;
}

export interface BankProfilesTable {
  bank: string;
  version: number;
  profile: string;
  created_at: bigint;
  created_by: string | null;
}

export interface CustodyPayoutsTable {
  id: string;
  agreement_id: string;
  kind: "release" | "refund";
  ledger_key: string;
  amount: bigint;
  currency: string;
  status: "pending" | "paid" | "failed";
  bank_transfer_id: string | null;
  failure: string | null;
  request_hash: string;
  created_at: bigint;
  updated_at: bigint;
}

export interface CommissionsTable {
  agreement_id: string;
  event_id: string;
  amount: bigint;
  account_id: string;
  transfer_id: string;
  created_at: bigint;
}

export interface ReconciliationsTable {
  id: string;
  bank: string;
  document_id: string;
  body_hash: string;
  summary: string;
  lines: string;
  created_at: bigint;
}

export interface EscrowAuditTable {
  id: string;
  at: bigint;
  actor: string;
  action: string;
  object_id: string;
  reason: string | null;
  detail: string | null;
}

export interface VaultDataKeysTable {
  kind: string;
  purpose: string;
  version: number;
  suite: string;
  provider: string;
  /** The data key, encrypted by the key provider's master key. */
  wrapped_key: string;
  created_at: bigint;
}

export interface VaultAuditLogTable {
  position: bigint;
  id: string;
  at: bigint;
  /** The API key id that asked. */
  actor: string;
  action: string;
  object_type: string;
  object_id: string;
  field: string;
  reason: string;
  prev_hash: string;
  /** sha256(prev_hash ‖ canonical row), hex. */
  hash: string;
}

export interface VaultReencryptProgressTable {
  name: string;
  target_version: number;
  last_key: string | null;
  rows_changed: bigint;
  started_at: bigint;
  updated_at: bigint;
  finished_at: bigint | null;
}

export interface Tables {
  ledger_accounts: LedgerAccountsTable;
  ledger_transfers: LedgerTransfersTable;
  ledger_checkpoints: LedgerCheckpointsTable;
  ledger_state: LedgerStateTable;
  outbox_events: OutboxEventsTable;
  idempotency_keys: IdempotencyKeysTable;
  api_keys: ApiKeysTable;
  payments: PaymentsTable;
  channel_attempts: ChannelAttemptsTable;
  refunds: RefundsTable;
  payouts: PayoutsTable;
  channel_notifications: ChannelNotificationsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  job_cursors: JobCursorsTable;
  agreements: AgreementsTable;
  custody_documents: CustodyDocumentsTable;
  custody_entries: CustodyEntriesTable;
  arrivals: ArrivalsTable;
  bank_profiles: BankProfilesTable;
  custody_payouts: CustodyPayoutsTable;
  commissions: CommissionsTable;
  reconciliations: ReconciliationsTable;
  escrow_audit: EscrowAuditTable;
  security_events: SecurityEventsTable;
  request_nonces: RequestNoncesTable;
  vault_data_keys: VaultDataKeysTable;
  vault_audit_log: VaultAuditLogTable;
  vault_reencrypt_progress: VaultReencryptProgressTable;
}
