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
}

export interface Tables {
  ledger_accounts: LedgerAccountsTable;
  ledger_transfers: LedgerTransfersTable;
  ledger_checkpoints: LedgerCheckpointsTable;
  ledger_state: LedgerStateTable;
  outbox_events: OutboxEventsTable;
  idempotency_keys: IdempotencyKeysTable;
  api_keys: ApiKeysTable;
}
