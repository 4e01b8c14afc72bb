// Mapping between ledger rows (as both databases return them) and the domain types.
import type { LedgerAccountsTable, LedgerTransfersTable } from "../db/schema.ts";
import { accountFlagBits, accountFlagsFromBits, type Account, type Transfer } from "./model.ts";

/** Column order of ledger_transfers, shared by the bulk insert statements. */
export const TRANSFER_COLUMNS = [
  "ts", "id", "merchant_id", "debit_account_id", "credit_account_id", "amount", "currency", "code",
  "flags", "pending_id", "timeout_seconds", "expires_at", "status", "resolved_at", "reference",
  "metadata", "dr_debits_pending", "dr_debits_posted", "dr_credits_pending", "dr_credits_posted",
  "cr_debits_pending", "cr_debits_posted", "cr_credits_pending", "cr_credits_posted",
  "dr_prev_ts", "cr_prev_ts",
] as const;

/**
 * Column order of ledger_transfers on SQLite. The columns SQL looks at (keys, indexes, the history
 * chain, the expiry scans) stay columns; the rest of the row is packed in `body` (TransferBody
 * below): a row of 12 values writes in two thirds of the time of one of 26 (docs/benchmarks.md).
 * PostgreSQL keeps a column each (TRANSFER_COLUMNS): its rows are written by COPY, where width
 * costs little.
 */
export const SQLITE_TRANSFER_COLUMNS = [
  "ts", "id", "merchant_id", "debit_account_id", "credit_account_id", "amount", "status", "expires_at",
  "resolved_at", "dr_prev_ts", "cr_prev_ts", "body",
] as const;

// The body of a SQLite transfer row, little-endian:
//   [0] format (1)   [1] null bits: 1 pending_id, 2 reference, 4 metadata
//   [2..13] code, flags, timeout_seconds (int32 each)
//   [14..77] balances after, int64 each: debit side then credit side, each
//            debits_pending, debits_posted, credits_pending, credits_posted
//   [78] currency's byte length, then its bytes (UTF-8)
//   then pending_id, reference, metadata where not null: uint32 byte length, then UTF-8 bytes.
const BODY_FORMAT = 1;
const BODY_FIXED = 78;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** The balances after a transfer on their way into a body: little-endian, as the body's format is. */
const AFTER_SCRATCH = new BigInt64Array(8);
const AFTER_SCRATCH_BYTES = new Uint8Array(AFTER_SCRATCH.buffer);
if (new Uint8Array(new BigInt64Array([1n]).buffer)[0] !== 1) throw new Error("transfer row bodies are written on little-endian machines only");

/** The length of a short ASCII text (its UTF-8 bytes are its char codes), or -1 when it is not. */
function asciiLength(text: string): number {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return -1;
  return text.length;
}

/** Bytes the body of `t` takes. */
export function transferBodySize(t: Transfer): number {
  const ascii = asciiLength(t.currency);
  let n = BODY_FIXED + 1 + (ascii >= 0 ? ascii : Buffer.byteLength(t.currency));
  if (t.pendingId !== null) n += 4 + Buffer.byteLength(t.pendingId);
  if (t.reference !== null) n += 4 + Buffer.byteLength(t.reference);
  if (t.metadata !== null) n += 4 + Buffer.byteLength(t.metadata);
  return n;
}

/** Writes the body of `t` into `bytes` at `at` (transferBodySize(t) bytes); returns the end. */
export function writeTransferBody(t: Transfer, bytes: Uint8Array, view: DataView, at: number): number {
  bytes[at] = BODY_FORMAT;
  bytes[at + 1] = (t.pendingId === null ? 0 : 1) | (t.reference === null ? 0 : 2) | (t.metadata === null ? 0 : 4);
  view.setInt32(at + 2, t.code, true);
  view.setInt32(at + 6, t.flags, true);
  view.setInt32(at + 10, t.timeoutSeconds, true);
  // The eight balances go through an aligned scratch array and one copy: a typed array's store
  // is compiled inline, where DataView.setBigInt64 cost ~13 ns each (docs/benchmarks.md, session 8).
  const after = AFTER_SCRATCH;
  after[0] = t.drDebitsPending;
  after[1] = t.drDebitsPosted;
  after[2] = t.drCreditsPending;
  after[3] = t.drCreditsPosted;
  after[4] = t.crDebitsPending;
  after[5] = t.crDebitsPosted;
  after[6] = t.crCreditsPending;
  after[7] = t.crCreditsPosted;
  bytes.set(AFTER_SCRATCH_BYTES, at + 14);
  // Currencies are ASCII codes: copied byte by byte, without a view and a call into the encoder
  // per transfer of a batch.
  let currency = asciiLength(t.currency);
  if (currency >= 0) for (let i = 0; i < currency; i++) bytes[at + BODY_FIXED + 1 + i] = t.currency.charCodeAt(i);
  else currency = utf8.encodeInto(t.currency, bytes.subarray(at + BODY_FIXED + 1)).written;
  if (currency > 255) throw new Error("a currency code is at most 255 bytes");
  bytes[at + BODY_FIXED] = currency;
  // Each in turn, without an array per transfer (this runs for every transfer of a batch).
  let pos = writeText(t.pendingId, bytes, view, at + BODY_FIXED + 1 + currency);
  pos = writeText(t.reference, bytes, view, pos);
  return writeText(t.metadata, bytes, view, pos);
}

/** A nullable text of the body at `pos` (nothing when null: the null bits say so); returns the end. */
function writeText(text: string | null, bytes: Uint8Array, view: DataView, pos: number): number {
  if (text === null) return pos;
  const written = utf8.encodeInto(text, bytes.subarray(pos + 4)).written;
  view.setUint32(pos, written, true);
  return pos + 4 + written;
}

/** The body of a transfer alone (tests, migrations). */
export function transferBody(t: Transfer): Buffer {
  const bytes = Buffer.alloc(transferBodySize(t));
  writeTransferBody(t, bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0);
  return bytes;
}

/** The row values of a transfer in SQLITE_TRANSFER_COLUMNS order. */
export function sqliteTransferValues(t: Transfer): unknown[] {
  return [
    t.ts, t.id, t.merchantId, t.debitAccountId, t.creditAccountId, t.amount, t.status, t.expiresAt,
    t.resolvedAt, t.debitPrevTs, t.creditPrevTs, transferBody(t),
  ];
}

/** A SQLite row (SQLITE_TRANSFER_COLUMNS) as a transfer. */
function transferFromCompactRow(r: CompactTransferRow): Transfer {
  const body = r.body;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (body.byteLength < BODY_FIXED + 1 || body[0] !== BODY_FORMAT) throw new Error(`transfer ${r.id}: unknown row body format`);
  const nulls = body[1]!;
  let pos = BODY_FIXED + 1 + body[BODY_FIXED]!;
  if (pos > body.byteLength) throw new Error(`transfer ${r.id}: row body cut short`);
  const currency = utf8Decoder.decode(body.subarray(BODY_FIXED + 1, pos));
  const text = (bit: number): string | null => {
    if ((nulls & bit) === 0) return null;
    const length = view.getUint32(pos, true);
    if (pos + 4 + length > body.byteLength) throw new Error(`transfer ${r.id}: row body cut short`);
    const value = utf8Decoder.decode(body.subarray(pos + 4, pos + 4 + length));
    pos += 4 + length;
    return value;
  };
  const pendingId = text(1);
  const reference = text(2);
  const metadata = text(4);
  return assemble(r, {
    currency,
    code: view.getInt32(2, true),
    flags: view.getInt32(6, true),
    pendingId,
    timeoutSeconds: view.getInt32(10, true),
    reference,
    metadata,
    drDebitsPending: view.getBigInt64(14, true),
    drDebitsPosted: view.getBigInt64(22, true),
    drCreditsPending: view.getBigInt64(30, true),
    drCreditsPosted: view.getBigInt64(38, true),
    crDebitsPending: view.getBigInt64(46, true),
    crDebitsPosted: view.getBigInt64(54, true),
    crCreditsPending: view.getBigInt64(62, true),
    crCreditsPosted: view.getBigInt64(70, true),
  });
}

/** The fields SQLite packs in a row's body, read from wherever the row keeps them. */
type Packed = Pick<
  Transfer,
  | "currency" | "code" | "flags" | "pendingId" | "timeoutSeconds" | "reference" | "metadata"
  | "drDebitsPending" | "drDebitsPosted" | "drCreditsPending" | "drCreditsPosted"
  | "crDebitsPending" | "crDebitsPosted" | "crCreditsPending" | "crCreditsPosted"
>;

/** A transfer from a row's own columns and its packed fields: one literal, so one object shape. */
function assemble(r: CompactTransferRow | LedgerTransfersTable, p: Packed): Transfer {
  return {
    ts: big(r.ts),
    id: r.id,
    merchantId: r.merchant_id,
    debitAccountId: r.debit_account_id,
    creditAccountId: r.credit_account_id,
    amount: big(r.amount),
    currency: p.currency,
    code: p.code,
    flags: p.flags,
    pendingId: p.pendingId,
    timeoutSeconds: p.timeoutSeconds,
    expiresAt: bigOrNull(r.expires_at),
    status: r.status,
    resolvedAt: bigOrNull(r.resolved_at),
    reference: p.reference,
    metadata: p.metadata,
    drDebitsPending: p.drDebitsPending,
    drDebitsPosted: p.drDebitsPosted,
    drCreditsPending: p.drCreditsPending,
    drCreditsPosted: p.drCreditsPosted,
    crDebitsPending: p.crDebitsPending,
    crDebitsPosted: p.crDebitsPosted,
    crCreditsPending: p.crCreditsPending,
    crCreditsPosted: p.crCreditsPosted,
    debitPrevTs: bigOrNull(r.dr_prev_ts),
    creditPrevTs: bigOrNull(r.cr_prev_ts),
  };
}

/** A ledger_transfers row as SQLite stores it. */
export type CompactTransferRow = Pick<
  LedgerTransfersTable,
  "ts" | "id" | "merchant_id" | "debit_account_id" | "credit_account_id" | "amount" | "status" | "expires_at" | "resolved_at" | "dr_prev_ts" | "cr_prev_ts"
> & { body: Uint8Array };

export const ACCOUNT_COLUMNS = [
  "id", "merchant_id", "currency", "code", "normal_balance", "flags", "owner", "metadata",
  "created_at", "debits_pending", "debits_posted", "credits_pending", "credits_posted",
  "last_ts", "transfer_count",
] as const;

// SQLite returns every integer as bigint (safeIntegers); PostgreSQL returns INTEGER as number and
// BIGINT as bigint. These helpers accept either.
const num = (v: unknown): number => Number(v);
const big = (v: unknown): bigint => (typeof v === "bigint" ? v : BigInt(v as number | string));
const bigOrNull = (v: unknown): bigint | null => (v === null || v === undefined ? null : big(v));

export function accountFromRow(r: LedgerAccountsTable): Account {
  return {
    id: r.id,
    merchantId: r.merchant_id,
    currency: r.currency,
    code: num(r.code),
    normalBalance: r.normal_balance,
    flags: accountFlagsFromBits(num(r.flags)),
    owner: r.owner,
    metadata: r.metadata,
    createdAt: big(r.created_at),
    debitsPending: big(r.debits_pending),
    debitsPosted: big(r.debits_posted),
    creditsPending: big(r.credits_pending),
    creditsPosted: big(r.credits_posted),
    lastTs: bigOrNull(r.last_ts),
    transferCount: num(r.transfer_count),
    touchedBy: 0,
  };
}

/** A ledger_transfers row of either database as a transfer. */
export function transferFromRow(r: LedgerTransfersTable | CompactTransferRow): Transfer {
  if ("body" in r && r.body != null) return transferFromCompactRow(r as CompactTransferRow);
  return fromColumns(r as LedgerTransfersTable);
}

function fromColumns(r: LedgerTransfersTable): Transfer {
  return assemble(r, {
    currency: r.currency,
    code: num(r.code),
    flags: num(r.flags),
    pendingId: r.pending_id,
    timeoutSeconds: num(r.timeout_seconds),
    reference: r.reference,
    metadata: r.metadata,
    drDebitsPending: big(r.dr_debits_pending),
    drDebitsPosted: big(r.dr_debits_posted),
    drCreditsPending: big(r.dr_credits_pending),
    drCreditsPosted: big(r.dr_credits_posted),
    crDebitsPending: big(r.cr_debits_pending),
    crDebitsPosted: big(r.cr_debits_posted),
    crCreditsPending: big(r.cr_credits_pending),
    crCreditsPosted: big(r.cr_credits_posted),
  });
}

/** The row values of a transfer in TRANSFER_COLUMNS order. */
export function transferValues(t: Transfer): unknown[] {
  return [
    t.ts, t.id, t.merchantId, t.debitAccountId, t.creditAccountId, t.amount, t.currency, t.code,
    t.flags, t.pendingId, t.timeoutSeconds, t.expiresAt, t.status, t.resolvedAt, t.reference,
    t.metadata, t.drDebitsPending, t.drDebitsPosted, t.drCreditsPending, t.drCreditsPosted,
    t.crDebitsPending, t.crDebitsPosted, t.crCreditsPending, t.crCreditsPosted, t.debitPrevTs, t.creditPrevTs,
  ];
}

export function accountValues(a: Account): unknown[] {
  return [
    a.id, a.merchantId, a.currency, a.code, a.normalBalance, accountFlagBits(a.flags),
    a.owner, a.metadata, a.createdAt, a.debitsPending, a.debitsPosted, a.creditsPending, a.creditsPosted,
    a.lastTs, BigInt(a.transferCount),
  ];
}
