// Schema migrations, in code, for both databases. Each migration names the dialect-specific
// types it needs through `types`; everything else is Kysely's dialect-neutral schema builder.
// A released migration is never edited. Migrations add, but for two SQLite-only rebuilds: 0007
// packs ledger_transfers into its compact layout, 0008 splits ledger_accounts (see there).
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from "kysely";
import type { Database, Dialect } from "./database.ts";
import type { Transfer } from "../ledger/model.ts";
import type { LedgerTransfersTable } from "./schema.ts";
import { transferBody, transferFromRow } from "../ledger/rows.ts";

interface Types {
  /** A 64-bit ledger timestamp used as the primary key (SQLite: the rowid alias, for append speed). */
  readonly timestampKey: "integer" | "bigint";
  /** An auto-incrementing 64-bit sequence. */
  readonly sequenceKey: (dialect: Dialect) => ReturnType<typeof sql>;
}

const types = (dialect: Dialect): Types => ({
  timestampKey: dialect === "sqlite" ? "integer" : "bigint",
  sequenceKey: () => (dialect === "sqlite" ? sql`integer primary key autoincrement` : sql`bigint generated always as identity primary key`),
});

type Step = (db: Kysely<any>, dialect: Dialect) => Promise<void>;

const steps: Record<string, Step> = {
  "0001_ledger": async (db, dialect) => {
    const t = types(dialect);
    await db.schema
      .createTable("ledger_accounts")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("merchant_id", "text")
      .addColumn("currency", "text", (c) => c.notNull())
      .addColumn("code", "integer", (c) => c.notNull())
      .addColumn("normal_balance", "text", (c) => c.notNull())
      .addColumn("flags", "integer", (c) => c.notNull())
      .addColumn("owner", "text")
      .addColumn("metadata", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("debits_pending", "bigint", (c) => c.notNull())
      .addColumn("debits_posted", "bigint", (c) => c.notNull())
      .addColumn("credits_pending", "bigint", (c) => c.notNull())
      .addColumn("credits_posted", "bigint", (c) => c.notNull())
      .addColumn("last_ts", "bigint")
      .addColumn("transfer_count", "bigint", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("ledger_transfers")
      .addColumn("ts", t.timestampKey, (c) => c.primaryKey())
      .addColumn("id", "text", (c) => c.notNull().unique())
      .addColumn("merchant_id", "text")
      .addColumn("debit_account_id", "text", (c) => c.notNull())
      .addColumn("credit_account_id", "text", (c) => c.notNull())
      .addColumn("amount", "bigint", (c) => c.notNull())
      .addColumn("currency", "text", (c) => c.notNull())
      .addColumn("code", "integer", (c) => c.notNull())
      .addColumn("flags", "integer", (c) => c.notNull())
      .addColumn("pending_id", "text")
      .addColumn("timeout_seconds", "integer", (c) => c.notNull())
      .addColumn("expires_at", "bigint")
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("resolved_at", "bigint")
      .addColumn("reference", "text")
      .addColumn("metadata", "text")
      .addColumn("dr_debits_pending", "bigint", (c) => c.notNull())
      .addColumn("dr_debits_posted", "bigint", (c) => c.notNull())
      .addColumn("dr_credits_pending", "bigint", (c) => c.notNull())
      .addColumn("dr_credits_posted", "bigint", (c) => c.notNull())
      .addColumn("cr_debits_pending", "bigint", (c) => c.notNull())
      .addColumn("cr_debits_posted", "bigint", (c) => c.notNull())
      .addColumn("cr_credits_pending", "bigint", (c) => c.notNull())
      .addColumn("cr_credits_posted", "bigint", (c) => c.notNull())
      .addColumn("dr_prev_ts", "bigint")
      .addColumn("cr_prev_ts", "bigint")
      .execute();
    // History per account is a chain: each transfer points to the account's previous transfer
    // (dr_prev_ts / cr_prev_ts) and the account to its latest. Every CHECKPOINT_INTERVAL-th
    // transfer of an account is also indexed here, so a point-in-time lookup is one index probe
    // plus a bounded walk. An index on (account, ts) over all transfers would cost a random
    // b-tree write per side per transfer: docs/ledger-engine.md has the measurements.
    let checkpoints = db.schema
      .createTable("ledger_checkpoints")
      .addColumn("account_id", "text", (c) => c.notNull())
      .addColumn("ts", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("ledger_checkpoints_pk", ["account_id", "ts"]);
    if (dialect === "sqlite") checkpoints = checkpoints.modifyEnd(sql`without rowid`);
    await checkpoints.execute();
    // Holds waiting to expire (the sweep), and expired holds by the moment they were applied
    // (point-in-time balances). Partial, so ordinary transfers cost nothing here.
    await db.schema
      .createIndex("ledger_transfers_due_holds")
      .on("ledger_transfers")
      .column("expires_at")
      .where(sql.ref("status"), "=", "pending")
      .execute();
    await db.schema
      .createIndex("ledger_transfers_expired_debit")
      .on("ledger_transfers")
      .columns(["debit_account_id", "resolved_at"])
      .where(sql.ref("status"), "=", "expired")
      .execute();
    await db.schema
      .createIndex("ledger_transfers_expired_credit")
      .on("ledger_transfers")
      .columns(["credit_account_id", "resolved_at"])
      .where(sql.ref("status"), "=", "expired")
      .execute();
    await db.schema
      .createTable("ledger_state")
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("last_ts", "bigint", (c) => c.notNull())
      .addColumn("version", "bigint", (c) => c.notNull())
      .execute();
    await db.insertInto("ledger_state").values({ id: 1, last_ts: 0, version: 0 }).execute();
  },

  "0002_service": async (db, dialect) => {
    const t = types(dialect);
    await db.schema
      .createTable("outbox_events")
      .addColumn("seq", t.sequenceKey(dialect) as any)
      .addColumn("id", "text", (c) => c.notNull().unique())
      .addColumn("type", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("data", "text", (c) => c.notNull())
      .addColumn("published_at", "bigint")
      .execute();
    await db.schema
      .createTable("idempotency_keys")
      .addColumn("principal", "text", (c) => c.notNull())
      .addColumn("key", "text", (c) => c.notNull())
      .addColumn("request_hash", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("response_status", "integer")
      .addColumn("response_body", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("locked_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("idempotency_keys_pk", ["principal", "key"])
      .execute();
    await db.schema
      .createTable("api_keys")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("merchant_id", "text")
      .addColumn("name", "text")
      .addColumn("key_hash", "text", (c) => c.notNull().unique())
      .addColumn("prefix", "text", (c) => c.notNull())
      .addColumn("scopes", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("expires_at", "bigint")
      .addColumn("revoked_at", "bigint")
      .execute();
  },

  "0003_payments": async (db) => {
    await db.schema.alterTable("outbox_events").addColumn("merchant_id", "text").execute();
    await db.schema
      .createTable("payments")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("merchant_id", "text")
      .addColumn("ledger_key", "text", (c) => c.notNull().unique())
      .addColumn("amount", "bigint", (c) => c.notNull())
      .addColumn("currency", "text", (c) => c.notNull())
      .addColumn("merchant_account_id", "text", (c) => c.notNull())
      .addColumn("description", "text")
      .addColumn("capture_method", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("amount_captured", "bigint", (c) => c.notNull())
      .addColumn("amount_refunded", "bigint", (c) => c.notNull())
      .addColumn("amount_held", "bigint", (c) => c.notNull())
      .addColumn("methods", "text", (c) => c.notNull())
      .addColumn("return_url", "text")
      .addColumn("contract_ref", "text")
      .addColumn("metadata", "text")
      .addColumn("client_secret", "text", (c) => c.notNull())
      .addColumn("request_hash", "text", (c) => c.notNull())
      .addColumn("latest_attempt_id", "text")
      .addColumn("failure", "text")
      .addColumn("expires_at", "bigint", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .addColumn("version", "bigint", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("payments_merchant_created").on("payments").columns(["merchant_id", "created_at", "id"]).execute();
    await db.schema.createIndex("payments_status_expires").on("payments").columns(["status", "expires_at"]).execute();
    await db.schema
      .createTable("channel_attempts")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("flow", "text", (c) => c.notNull())
      .addColumn("parent_id", "text", (c) => c.notNull())
      .addColumn("merchant_id", "text")
      .addColumn("channel", "text", (c) => c.notNull())
      .addColumn("method", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("amount", "bigint", (c) => c.notNull())
      .addColumn("currency", "text", (c) => c.notNull())
      .addColumn("installments", "integer")
      .addColumn("options", "text")
      .addColumn("next_action", "text")
      .addColumn("channel_ref", "text")
      .addColumn("failure_code", "text")
      .addColumn("failure_channel_code", "text")
      .addColumn("failure_user_caused", "integer")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .addColumn("settled_at", "bigint")
      .addColumn("requery_count", "integer", (c) => c.notNull())
      .addColumn("next_requery_at", "bigint")
      .execute();
    await db.schema.createIndex("channel_attempts_parent").on("channel_attempts").columns(["parent_id", "created_at"]).execute();
    await db.schema.createIndex("channel_attempts_created").on("channel_attempts").columns(["flow", "created_at"]).execute();
    await db.schema
      .createIndex("channel_attempts_requery")
      .on("channel_attempts")
      .column("next_requery_at")
      .where(sql.ref("next_requery_at"), "is not", null)
      .execute();
    await db.schema
      .createTable("refunds")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("ledger_key", "text", (c) => c.notNull().unique())
      .addColumn("payment_id", "text", (c) => c.notNull())
      .addColumn("merchant_id", "text")
      .addColumn("amount", "bigint", (c) => c.notNull())
      .addColumn("currency", "text", (c) => c.notNull())
      .addColumn("reason", "text")
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("channel", "text", (c) => c.notNull())
      .addColumn("channel_ref", "text")
      .addColumn("failure", "text")
      .addColumn("request_hash", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("refunds_payment").on("refunds").column("payment_id").execute();
    await db.schema.createIndex("refunds_status").on("refunds").columns(["status", "updated_at"]).execute();
    await db.schema
      .createTable("payouts")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("ledger_key", "text", (c) => c.notNull().unique())
      .addColumn("merchant_id", "text")
      .addColumn("amount", "bigint", (c) => c.notNull())
      .addColumn("currency", "text", (c) => c.notNull())
      .addColumn("source_account_id", "text", (c) => c.notNull())
      .addColumn("destination", "text", (c) => c.notNull())
      .addColumn("destination_masked", "text", (c) => c.notNull())
      .addColumn("account_number_index", "text", (c) => c.notNull())
      .addColumn("channel", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("options", "text")
      .addColumn("channel_ref", "text")
      .addColumn("failure", "text")
      .addColumn("request_hash", "text", (c) => c.notNull())
      .addColumn("metadata", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("payouts_merchant_created").on("payouts").columns(["merchant_id", "created_at", "id"]).execute();
    await db.schema.createIndex("payouts_status").on("payouts").columns(["status", "updated_at"]).execute();
    await db.schema.createIndex("payouts_account_number").on("payouts").column("account_number_index").execute();
    await db.schema
      .createTable("channel_notifications")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("channel", "text", (c) => c.notNull())
      .addColumn("received_at", "bigint", (c) => c.notNull())
      .addColumn("content_type", "text")
      .addColumn("headers", "text", (c) => c.notNull())
      .addColumn("body", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("reason", "text")
      .addColumn("dedupe_key", "text")
      .addColumn("processed_at", "bigint")
      .execute();
    await db.schema.createIndex("channel_notifications_dedupe").on("channel_notifications").columns(["channel", "dedupe_key"]).execute();
    await db.schema.createIndex("channel_notifications_status").on("channel_notifications").columns(["status", "received_at"]).execute();
    await db.schema
      .createTable("webhook_endpoints")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("merchant_id", "text")
      .addColumn("url", "text", (c) => c.notNull())
      .addColumn("secret", "text", (c) => c.notNull())
      .addColumn("events", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("disabled_at", "bigint")
      .execute();
    await db.schema
      .createTable("webhook_deliveries")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("event_id", "text", (c) => c.notNull())
      .addColumn("endpoint_id", "text", (c) => c.notNull())
      .addColumn("attempt", "integer", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("response_status", "integer")
      .addColumn("error", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("next_attempt_at", "bigint")
      .addColumn("finished_at", "bigint")
      .execute();
    await db.schema.createIndex("webhook_deliveries_event").on("webhook_deliveries").columns(["event_id", "created_at"]).execute();
    await db.schema
      .createIndex("webhook_deliveries_due")
      .on("webhook_deliveries")
      .column("next_attempt_at")
      .where(sql.ref("status"), "=", "pending")
      .execute();
    await db.schema
      .createTable("job_cursors")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("position", "bigint", (c) => c.notNull())
      .execute();
  },

  "0004_vault": async (db, dialect) => {
    await db.schema
      .createTable("vault_data_keys")
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("purpose", "text", (c) => c.notNull())
      .addColumn("version", "integer", (c) => c.notNull())
      .addColumn("suite", "text", (c) => c.notNull())
      .addColumn("provider", "text", (c) => c.notNull())
      .addColumn("wrapped_key", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("vault_data_keys_pk", ["kind", "purpose", "version"])
      .execute();
    // The reveal audit log: a hash chain (each row's hash covers the previous row's hash), with
    // unique positions and previous hashes so concurrent appenders cannot fork it.
    await db.schema
      .createTable("vault_audit_log")
      .addColumn("position", "bigint", (c) => c.primaryKey())
      .addColumn("id", "text", (c) => c.notNull().unique())
      .addColumn("at", "bigint", (c) => c.notNull())
      .addColumn("actor", "text", (c) => c.notNull())
      .addColumn("action", "text", (c) => c.notNull())
      .addColumn("object_type", "text", (c) => c.notNull())
      .addColumn("object_id", "text", (c) => c.notNull())
      .addColumn("field", "text", (c) => c.notNull())
      .addColumn("reason", "text", (c) => c.notNull())
      .addColumn("prev_hash", "text", (c) => c.notNull().unique())
      .addColumn("hash", "text", (c) => c.notNull())
      .execute();
    // Append-only in the database too: updating or deleting a row needs dropping these first
    // (and the hash chain shows it even then).
    if (dialect === "sqlite") {
      await sql`create trigger vault_audit_log_no_update before update on vault_audit_log begin select raise(abort, 'vault_audit_log is append-only'); end`.execute(db);
      await sql`create trigger vault_audit_log_no_delete before delete on vault_audit_log begin select raise(abort, 'vault_audit_log is append-only'); end`.execute(db);
    } else {
      await sql`create function vault_audit_log_append_only() returns trigger language plpgsql as $$ begin raise exception 'vault_audit_log is append-only'; end $$`.execute(db);
      await sql`create trigger vault_audit_log_no_change before update or delete on vault_audit_log for each row execute function vault_audit_log_append_only()`.execute(db);
    }
    // Re-encryption progress per sensitive column: the target key version and the last primary
    // key done, so a job killed midway resumes where it stopped.
    await db.schema
      .createTable("vault_reencrypt_progress")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("target_version", "integer", (c) => c.notNull())
      .addColumn("last_key", "text")
      .addColumn("rows_changed", "bigint", (c) => c.notNull())
      .addColumn("started_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .addColumn("finished_at", "bigint")
      .execute();
  },

  "0005_security": async (db) => {
    // A key's request-signing secret, encrypted under a key derived from the API key itself (see
    // http/api-keys.ts), and whether the key may only be used on signed requests.
    await db.schema.alterTable("api_keys").addColumn("signing_secret", "text").execute();
    await db.schema.alterTable("api_keys").addColumn("require_signature", "integer", (c) => c.notNull().defaultTo(0)).execute();
    await db.schema
      .createTable("security_events")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("type", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("client_address", "text")
      .addColumn("key_id", "text")
      .addColumn("count", "integer", (c) => c.notNull())
      .addColumn("detail", "text")
      .execute();
    await db.schema.createIndex("security_events_type").on("security_events").columns(["type", "id"]).execute();
    // Nonces of signed requests on PostgreSQL, shared by every process (SQLite keeps them in memory).
    await db.schema
      .createTable("request_nonces")
      .addColumn("key_id", "text", (c) => c.notNull())
      .addColumn("nonce", "text", (c) => c.notNull())
      .addColumn("expires_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("request_nonces_pk", ["key_id", "nonce"])
      .execute();
    await db.schema.createIndex("request_nonces_expires").on("request_nonces").column("expires_at").execute();
  },

  // Numbered 0006: 0004 (vault) and 0005 (security) are added beside it.
  "0006_escrow": async (db, dialect) => {
    const blob = dialect === "sqlite" ? "blob" : "bytea";
    await db.schema
      .createTable("agreements")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("merchant_id", "text")
      .addColumn("ledger_key", "text", (c) => c.notNull().unique())
      .addColumn("contract_ref", "text")
      .addColumn("amount_due", "bigint", (c) => c.notNull())
      .addColumn("currency", "text", (c) => c.notNull())
      .addColumn("custody_bank", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("amount_received", "bigint", (c) => c.notNull())
      .addColumn("amount_released", "bigint", (c) => c.notNull())
      .addColumn("amount_refunded", "bigint", (c) => c.notNull())
      .addColumn("amount_converted", "bigint", (c) => c.notNull())
      .addColumn("amount_pending_out", "bigint", (c) => c.notNull())
      .addColumn("virtual_account_number", "text", (c) => c.unique())
      .addColumn("virtual_account_name", "text")
      .addColumn("escrow_account_id", "text", (c) => c.notNull())
      .addColumn("payer", "text", (c) => c.notNull())
      .addColumn("payer_masked", "text", (c) => c.notNull())
      .addColumn("payer_name_index", "text", (c) => c.notNull())
      .addColumn("payee", "text", (c) => c.notNull())
      .addColumn("payee_masked", "text", (c) => c.notNull())
      .addColumn("agent_account_id", "text")
      .addColumn("expires_at", "bigint")
      .addColumn("metadata", "text")
      .addColumn("bank_attempts", "integer", (c) => c.notNull())
      .addColumn("next_bank_attempt_at", "bigint")
      .addColumn("bank_reason", "text")
      .addColumn("request_hash", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .addColumn("version", "bigint", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("agreements_merchant_created").on("agreements").columns(["merchant_id", "created_at", "id"]).execute();
    await db.schema.createIndex("agreements_contract_ref").on("agreements").column("contract_ref").execute();
    await db.schema.createIndex("agreements_payer_name").on("agreements").columns(["payer_name_index", "status"]).execute();
    await db.schema
      .createIndex("agreements_bank_retry")
      .on("agreements")
      .column("next_bank_attempt_at")
      .where(sql.ref("next_bank_attempt_at"), "is not", null)
      .execute();
    await db.schema
      .createTable("custody_documents")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("bank", "text", (c) => c.notNull())
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("received_at", "bigint", (c) => c.notNull())
      .addColumn("content_type", "text")
      .addColumn("raw_body", blob as "blob", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("errors", "text")
      .addColumn("profile_version", "integer")
      .addColumn("processed_at", "bigint")
      .execute();
    await db.schema.createIndex("custody_documents_bank_status").on("custody_documents").columns(["bank", "status", "received_at"]).execute();
    await db.schema.createIndex("custody_documents_received").on("custody_documents").columns(["received_at", "id"]).execute();
    await db.schema
      .createTable("custody_entries")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("document_id", "text", (c) => c.notNull())
      .addColumn("position", "integer", (c) => c.notNull())
      .addColumn("bank", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("reason", "text")
      .addColumn("bank_reference", "text")
      .addColumn("account", "text")
      .addColumn("amount", "bigint")
      .addColumn("currency", "text")
      .addColumn("direction", "text")
      .addColumn("reversal", "integer", (c) => c.notNull())
      .addColumn("payer_name", "text")
      .addColumn("payer_name_index", "text")
      .addColumn("remittance", "text")
      .addColumn("booked_at", "bigint")
      .addColumn("booking_date", "text")
      .addColumn("arrival_id", "text")
      .addColumn("agreement_id", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .addColumn("alerted_at", "bigint")
      .addUniqueConstraint("custody_entries_position", ["document_id", "position"])
      .execute();
    await db.schema.createIndex("custody_entries_status").on("custody_entries").columns(["status", "bank", "created_at"]).execute();
    await db.schema.createIndex("custody_entries_reference").on("custody_entries").columns(["bank", "bank_reference"]).execute();
    await db.schema
      .createTable("arrivals")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("agreement_id", "text")
      .addColumn("bank", "text", (c) => c.notNull())
      .addColumn("amount", "bigint", (c) => c.notNull())
      .addColumn("currency", "text", (c) => c.notNull())
      .addColumn("bank_reference", "text", (c) => c.notNull())
      .addColumn("account", "text")
      .addColumn("source", "text", (c) => c.notNull())
      .addColumn("document_id", "text")
      .addColumn("entry_id", "text")
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("booked_at", "bigint")
      .addColumn("booking_date", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("created_by", "text")
      .addColumn("reason", "text")
      .addUniqueConstraint("arrivals_reference", ["bank", "bank_reference"])
      .execute();
    await db.schema.createIndex("arrivals_agreement").on("arrivals").columns(["agreement_id", "created_at"]).execute();
    await db.schema.createIndex("arrivals_account_date").on("arrivals").columns(["bank", "account", "booking_date"]).execute();
    await db.schema
      .createTable("bank_profiles")
      .addColumn("bank", "text", (c) => c.notNull())
      .addColumn("version", "integer", (c) => c.notNull())
      .addColumn("profile", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("created_by", "text")
      .addPrimaryKeyConstraint("bank_profiles_pk", ["bank", "version"])
      .execute();
    await db.schema
      .createTable("custody_payouts")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("agreement_id", "text", (c) => c.notNull())
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("ledger_key", "text", (c) => c.notNull().unique())
      .addColumn("amount", "bigint", (c) => c.notNull())
      .addColumn("currency", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("bank_transfer_id", "text")
      .addColumn("failure", "text")
      .addColumn("request_hash", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("custody_payouts_agreement").on("custody_payouts").columns(["agreement_id", "created_at"]).execute();
    await db.schema.createIndex("custody_payouts_status").on("custody_payouts").columns(["status", "updated_at"]).execute();
    await db.schema
      .createTable("commissions")
      .addColumn("agreement_id", "text", (c) => c.notNull())
      .addColumn("event_id", "text", (c) => c.notNull())
      .addColumn("amount", "bigint", (c) => c.notNull())
      .addColumn("account_id", "text", (c) => c.notNull())
      .addColumn("transfer_id", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("commissions_pk", ["agreement_id", "event_id"])
      .execute();
    await db.schema
      .createTable("reconciliations")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("bank", "text", (c) => c.notNull())
      .addColumn("document_id", "text", (c) => c.notNull())
      .addColumn("body_hash", "text", (c) => c.notNull())
      .addColumn("summary", "text", (c) => c.notNull())
      .addColumn("lines", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addUniqueConstraint("reconciliations_body", ["bank", "body_hash"])
      .execute();
    await db.schema
      .createTable("escrow_audit")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("at", "bigint", (c) => c.notNull())
      .addColumn("actor", "text", (c) => c.notNull())
      .addColumn("action", "text", (c) => c.notNull())
      .addColumn("object_id", "text", (c) => c.notNull())
      .addColumn("reason", "text")
      .addColumn("detail", "text")
      .execute();
    await db.schema.createIndex("escrow_audit_object").on("escrow_audit").columns(["object_id", "at"]).execute();
  },

  // SQLite only: ledger_transfers keeps as columns what SQL looks at (keys, indexes, the history
  // chain, the expiry scans) and packs the rest of the row in `body` (ledger/rows.ts), as the
  // writer thread spent most of its time binding and storing 26 columns per transfer. The one
  // migration that rebuilds a table rather than adding: rows are copied in timestamp order, in
  // chunks, then the table takes the old one's name and indexes. PostgreSQL keeps its columns.
  "0007_ledger_compact_rows": async (db, dialect) => {
    if (dialect !== "sqlite") return;
    await sql`create table ledger_transfers_compact (
      ts integer primary key, id text not null unique, merchant_id text, debit_account_id text not null,
      credit_account_id text not null, amount bigint not null, status text not null, expires_at bigint,
      resolved_at bigint, dr_prev_ts bigint, cr_prev_ts bigint, body blob not null)`.execute(db);
    let after: bigint | number = -1;
    for (;;) {
      const rows = await db.selectFrom("ledger_transfers").selectAll().where("ts", ">", after).orderBy("ts").limit(COPY_ROWS).execute();
      if (rows.length === 0) break;
      await db
        .insertInto("ledger_transfers_compact")
        .values(rows.map((row) => compactRow(transferFromRow(row as LedgerTransfersTable))))
        .execute();
      after = rows.at(-1)!.ts;
    }
    await sql`drop table ledger_transfers`.execute(db);
    await sql`alter table ledger_transfers_compact rename to ledger_transfers`.execute(db);
    await db.schema.createIndex("ledger_transfers_due_holds").on("ledger_transfers").column("expires_at").where(sql.ref("status"), "=", "pending").execute();
    for (const side of ["debit", "credit"] as const) {
      await db.schema
        .createIndex(`ledger_transfers_expired_${side}`)
        .on("ledger_transfers")
        .columns([`${side}_account_id`, "resolved_at"])
        .where(sql.ref("status"), "=", "expired")
        .execute();
    }
  },

  // SQLite only: an account's balances move to their own narrow table, ledger_balances, keyed by
  // an explicit integer `seq` that ledger_account_rows (the fields that never change) shares. The
  // writer rewrites thousands of balance rows per batch; a 7-column row by its integer key costs
  // about half of the 15-column row by rowid (docs/benchmarks.md), and VACUUM never renumbers an
  // INTEGER PRIMARY KEY, so the writer may remember each account's seq. `ledger_accounts` becomes
  // a view joining the two, with the table's columns in the table's order, so every reader is
  // unchanged. PostgreSQL nets balance updates per batch and keeps its table.
  "0008_ledger_balances": async (db, dialect) => {
    if (dialect !== "sqlite") return;
    await sql`create table ledger_account_rows (
      seq integer primary key, id text not null unique, merchant_id text, currency text not null,
      code integer not null, normal_balance text not null, flags integer not null, owner text,
      metadata text, created_at bigint not null)`.execute(db);
    await sql`create table ledger_balances (
      seq integer primary key, debits_pending bigint not null, debits_posted bigint not null,
      credits_pending bigint not null, credits_posted bigint not null, last_ts bigint,
      transfer_count bigint not null)`.execute(db);
    await sql`insert into ledger_account_rows
      select rowid, id, merchant_id, currency, code, normal_balance, flags, owner, metadata, created_at
      from ledger_accounts order by rowid`.execute(db);
    await sql`insert into ledger_balances
      select r.seq, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, a.last_ts, a.transfer_count
      from ledger_accounts a join ledger_account_rows r on r.id = a.id order by r.seq`.execute(db);
    await sql`drop table ledger_accounts`.execute(db);
    await sql`create view ledger_accounts as
      select r.id, r.merchant_id, r.currency, r.code, r.normal_balance, r.flags, r.owner, r.metadata,
        r.created_at, b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted,
        b.last_ts, b.transfer_count
      from ledger_account_rows r join ledger_balances b on b.seq = r.seq`.execute(db);
  },

  // PostgreSQL only: every batch rewrites thousands of account rows (the netted balance UPDATE).
  // With full pages each new row version went to another page and every index took a new entry;
  // with 30 % of each page left free, PostgreSQL keeps the new version on the same page (a HOT
  // update, no index work). Measured: 97 % of updates HOT against 36 %, the database's CPU per
  // transfer 9.3 µs against 12.3–12.9 µs (docs/benchmarks.md, session 6). Existing pages take
  // the setting as they are rewritten; `VACUUM FULL ledger_accounts` applies it at once.
  "0009_ledger_accounts_fillfactor": async (db, dialect) => {
    if (dialect !== "postgres") return;
    await sql`alter table ledger_accounts set (fillfactor = 70)`.execute(db);
  },
  // The ledger lease (ledger/store-postgres.ts) is a lock on this table, which holds no rows. A
  // process waits for it in LOCK TABLE, which holds no snapshot while it waits; waiting in
  // pg_advisory_lock did, and kept the holder's old account row versions from being pruned.
  "0010_ledger_lease": async (db, dialect) => {
    if (dialect !== "postgres") return;
    await sql`create table ledger_lease (id integer primary key)`.execute(db);
  },
  // A channel's notification can name the payer (Alipay's buyer_logon_id, a masked card number):
  // its body is sealed by the vault like a bank's notice (vault/registry.ts SEALED_DOCUMENTS).
  // Rows received before this migration keep their clear `body` until the vault job seals them
  // (payments/notifications.ts sealClearNotificationBodies); a sealed row's `body` is empty.
  "0011_notification_bodies_sealed": async (db, dialect) => {
    await db.schema.alterTable("channel_notifications").addColumn("sealed_body", dialect === "sqlite" ? "blob" : "bytea").execute();
    // The vault job looks for clear bodies on every run: a partial index holds only those, so once
    // all are sealed the look is a read of an empty index, not a scan of the inbox.
    await db.schema.createIndex("channel_notifications_clear").on("channel_notifications").column("id").where(sql.ref("sealed_body"), "is", null).execute();
  },
};

/** Rows per statement when a migration copies a table (12 columns: within SQLite's 32 766 variables). */
const COPY_ROWS = 1000;

function compactRow(t: Transfer): Record<string, unknown> {
  return {
    ts: t.ts, id: t.id, merchant_id: t.merchantId, debit_account_id: t.debitAccountId, credit_account_id: t.creditAccountId,
    amount: t.amount, status: t.status, expires_at: t.expiresAt, resolved_at: t.resolvedAt, dr_prev_ts: t.debitPrevTs,
    cr_prev_ts: t.creditPrevTs, body: transferBody(t),
  };
}

class CodeMigrationProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    const out: Record<string, Migration> = {};
    for (const [name, step] of Object.entries(steps)) {
      out[name] = { up: (db) => step(db, this.dialect) };
    }
    return out;
  }
}

/** Brings the schema up to date; safe to run from several processes at once. */
export async function migrate(db: Database, options: { upTo?: string } = {}): Promise<string[]> {
  // Migrations of features built side by side may land out of name order (0006 before 0004):
  // each only adds its own tables, so applying a missing earlier one later is safe.
  const migrator = new Migrator({ db: db.kysely, provider: new CodeMigrationProvider(db.dialect), allowUnorderedMigrations: true });
  // `upTo` stops at a named migration: tests build a database as an earlier release left it.
  const { error, results } = options.upTo ? await migrator.migrateTo(options.upTo) : await migrator.migrateToLatest();
  if (error) throw new Error("database migration failed", { cause: error });
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
