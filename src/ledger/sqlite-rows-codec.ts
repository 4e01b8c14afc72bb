// Transfer and balance rows as the SQLite writer thread receives them: column by column, integers
// in typed arrays and every string of the batch in one string, rather than one array per row.
// Handing a batch of 8190 rows to the thread as arrays of arrays made the structured clone (one
// tagged value at a time, both ways) the largest single cost of the main thread; typed arrays
// and one flat string copy as blocks, and the thread rebuilds each row's values as it binds them.
import { SQLITE_TRANSFER_COLUMNS, transferBodySize, writeTransferBody } from "./rows.ts";
import type { Account, Transfer } from "./model.ts";

/** 64-bit integer columns of a transfer, in SQLITE_TRANSFER_COLUMNS order. */
const T_BIG = ["ts", "amount", "expires_at", "resolved_at", "dr_prev_ts", "cr_prev_ts"] as const;
/** Text columns. */
const T_TEXT = ["id", "merchant_id", "debit_account_id", "credit_account_id", "status"] as const;
// Columns that may be null have a bit each in the row's null mask, from bit 0: expires_at,
// resolved_at, dr_prev_ts, cr_prev_ts, merchant_id. The rest of the row is its body (rows.ts),
// written here into the batch's buffer. A BigInt64Array would wrap a value past 64 bits silently:
// the engine refuses a balance limit that does not fit (both databases store 64-bit integers).

/** The order TransferRowReader.read writes (unrolled there); checked against SQLITE_TRANSFER_COLUMNS. */
const READ_ORDER = ["big", "text", "text", "text", "text", "big", "text", "big", "big", "big", "big", "body"];
SQLITE_TRANSFER_COLUMNS.forEach((column, k) => {
  const source = (T_BIG as readonly string[]).includes(column) ? "big" : (T_TEXT as readonly string[]).includes(column) ? "text" : "body";
  if (READ_ORDER[k] !== source) throw new Error(`the rows codec does not match SQLITE_TRANSFER_COLUMNS at ${column}`);
});

export interface TransferColumns {
  readonly count: number;
  /** T_BIG.length values per row. */
  readonly big: BigInt64Array;
  /** T_TEXT.length lengths per row (UTF-16 code units) into `text`. */
  readonly textLengths: Uint32Array;
  /** The rows' text columns, TEXT_CHUNK_ROWS rows to a string (see there). */
  readonly text: string[];
  /** One bit per nullable column, per row. */
  readonly nulls: Uint8Array;
  /** Every row's body, one after the other. */
  readonly bodies: Uint8Array;
  /** Where each row's body ends in `bodies`. */
  readonly bodyEnds: Uint32Array;
}

type Arrays<T> = Omit<T, "count" | "text" | "ids">;

/**
 * Rows whose text columns share one string. One string for a whole batch of 8190 rows (~330 KB)
 * was a large object, which V8 allocates on fresh pages of its own, as it does the array of its
 * 41 k parts; on a machine where a page fault cost 14 µs (session 14, docs/benchmarks.md) that
 * string alone was a fifth of the batch endpoint's page faults. Strings of 512 rows (~20 KB) are
 * ordinary young objects.
 */
export const TEXT_CHUNK_ROWS = 512;

/** Bytes the bodies of `transfers` take together. */
function bodiesSize(transfers: readonly Transfer[]): number {
  let n = 0;
  for (let i = 0; i < transfers.length; i++) n += transferBodySize(transfers[i]!);
  return n;
}

export function encodeTransfers(transfers: readonly Transfer[], into?: Arrays<TransferColumns>): TransferColumns {
  const n = transfers.length;
  const big = into?.big ?? new BigInt64Array(n * T_BIG.length);
  const textLengths = into?.textLengths ?? new Uint32Array(n * T_TEXT.length);
  const nulls = into?.nulls ?? new Uint8Array(n);
  const bodies = into?.bodies ?? new Uint8Array(bodiesSize(transfers));
  const bodyEnds = into?.bodyEnds ?? new Uint32Array(n);
  const view = new DataView(bodies.buffer, bodies.byteOffset, bodies.byteLength);
  const text: string[] = [];
  const parts: string[] = new Array(Math.min(n, TEXT_CHUNK_ROWS) * T_TEXT.length);
  let bodyAt = 0;
  for (let r = 0; r < n; r++) {
    const t = transfers[r]!;
    const b = r * T_BIG.length;
    let mask = 0;
    big[b] = t.ts;
    big[b + 1] = t.amount;
    if (t.expiresAt === null) mask |= 1;
    else big[b + 2] = t.expiresAt;
    if (t.resolvedAt === null) mask |= 2;
    else big[b + 3] = t.resolvedAt;
    if (t.debitPrevTs === null) mask |= 4;
    else big[b + 4] = t.debitPrevTs;
    if (t.creditPrevTs === null) mask |= 8;
    else big[b + 5] = t.creditPrevTs;
    if (t.merchantId === null) mask |= 16;
    const s = r * T_TEXT.length;
    const p = (r % TEXT_CHUNK_ROWS) * T_TEXT.length;
    const merchant = t.merchantId ?? "";
    parts[p] = t.id;
    parts[p + 1] = merchant;
    parts[p + 2] = t.debitAccountId;
    parts[p + 3] = t.creditAccountId;
    parts[p + 4] = t.status;
    textLengths[s] = t.id.length;
    textLengths[s + 1] = merchant.length;
    textLengths[s + 2] = t.debitAccountId.length;
    textLengths[s + 3] = t.creditAccountId.length;
    textLengths[s + 4] = t.status.length;
    nulls[r] = mask;
    bodyAt = writeTransferBody(t, bodies, view, bodyAt);
    bodyEnds[r] = bodyAt;
    if ((r + 1) % TEXT_CHUNK_ROWS === 0 || r === n - 1) {
      // The last chunk's parts array may hold the previous chunk's strings past its own rows.
      if (r === n - 1) parts.length = ((r % TEXT_CHUNK_ROWS) + 1) * T_TEXT.length;
      text.push(parts.join(""));
    }
  }
  return { count: n, big, textLengths, text, nulls, bodies, bodyEnds };
}

/** Reads the rows back, in order: each row's values in SQLITE_TRANSFER_COLUMNS order, into a caller's array. */
export class TransferRowReader {
  private textPos = 0;
  private next = 0;
  private readonly texts: string[] = new Array(T_TEXT.length);
  /** The bodies as a Buffer (bound as a blob); each row's is a view into it. */
  private readonly bodies: Buffer;

  constructor(private readonly c: TransferColumns) {
    this.bodies = Buffer.from(c.bodies.buffer, c.bodies.byteOffset, c.bodies.byteLength);
  }

  /** Writes row `r` (rows are read in order, each once) into `out` from `offset`. */
  read(r: number, out: unknown[], offset: number): void {
    if (r !== this.next) throw new Error(`transfer rows are read in order: expected ${this.next}, got ${r}`);
    this.next++;
    const c = this.c;
    const s = r * T_TEXT.length;
    if (r % TEXT_CHUNK_ROWS === 0) this.textPos = 0;
    const chunk = c.text[Math.floor(r / TEXT_CHUNK_ROWS)]!;
    for (let i = 0; i < T_TEXT.length; i++) {
      const len = c.textLengths[s + i]!;
      this.texts[i] = chunk.slice(this.textPos, this.textPos + len);
      this.textPos += len;
    }
    const mask = c.nulls[r]!;
    const b = r * T_BIG.length;
    const x = this.texts;
    // Unrolled in SQLITE_TRANSFER_COLUMNS order (READ_ORDER checks it when the module loads).
    out[offset] = c.big[b];
    out[offset + 1] = x[0];
    out[offset + 2] = mask & 16 ? null : x[1];
    out[offset + 3] = x[2];
    out[offset + 4] = x[3];
    out[offset + 5] = c.big[b + 1];
    out[offset + 6] = x[4];
    out[offset + 7] = mask & 1 ? null : c.big[b + 2];
    out[offset + 8] = mask & 2 ? null : c.big[b + 3];
    out[offset + 9] = mask & 4 ? null : c.big[b + 4];
    out[offset + 10] = mask & 8 ? null : c.big[b + 5];
    out[offset + 11] = this.bodies.subarray(r === 0 ? 0 : c.bodyEnds[r - 1]!, c.bodyEnds[r]!);
  }
}

export interface BalanceColumns {
  readonly count: number;
  /** Per account: debits_pending, debits_posted, credits_pending, credits_posted, last_ts, transfer_count. */
  readonly big: BigInt64Array;
  /** 1 where last_ts is null. */
  readonly lastTsNull: Uint8Array;
  readonly ids: string;
  readonly idLengths: Uint32Array;
}

export function encodeBalances(accounts: readonly Account[], into?: Arrays<BalanceColumns>): BalanceColumns {
  const n = accounts.length;
  const big = into?.big ?? new BigInt64Array(n * 6);
  const lastTsNull = into?.lastTsNull ?? new Uint8Array(n);
  const idLengths = into?.idLengths ?? new Uint32Array(n);
  const ids: string[] = new Array(n);
  for (let r = 0; r < n; r++) {
    const a = accounts[r]!;
    const b = r * 6;
    big[b] = a.debitsPending;
    big[b + 1] = a.debitsPosted;
    big[b + 2] = a.creditsPending;
    big[b + 3] = a.creditsPosted;
    if (a.lastTs === null) lastTsNull[r] = 1;
    else big[b + 4] = a.lastTs;
    big[b + 5] = BigInt(a.transferCount);
    ids[r] = a.id;
    idLengths[r] = a.id.length;
  }
  return { count: n, big, lastTsNull, ids: ids.join(""), idLengths };
}

/** Calls `each` with every row's account id and the row's number. */
export function forEachBalanceId(c: BalanceColumns, each: (id: string, row: number) => void): void {
  let pos = 0;
  for (let r = 0; r < c.count; r++) {
    const len = c.idLengths[r]!;
    each(c.ids.slice(pos, pos + len), r);
    pos += len;
  }
}

/** Writes row `r` into `values`: debits_pending, debits_posted, credits_pending, credits_posted, last_ts, transfer_count, then `id`. */
export function readBalance(c: BalanceColumns, r: number, id: string, values: unknown[]): void {
  const b = r * 6;
  values[0] = c.big[b]!;
  values[1] = c.big[b + 1]!;
  values[2] = c.big[b + 2]!;
  values[3] = c.big[b + 3]!;
  values[4] = c.lastTsNull[r] ? null : c.big[b + 4]!;
  values[5] = c.big[b + 5]!;
  values[6] = id;
}

/**
 * A batch's transfer and balance rows with every typed array a view of one ArrayBuffer: posting
 * a message costs several microseconds per buffer it carries, which dominated small batches.
 */
export function encodeRows(transfers: readonly Transfer[], accounts: readonly Account[]) {
  const n = transfers.length;
  const m = accounts.length;
  // 8-byte arrays first, so that every view starts aligned to its element size.
  const sizes = [n * T_BIG.length * 8, m * 6 * 8, n * T_TEXT.length * 4, m * 4, n * 4, n, m, bodiesSize(transfers)];
  const buffer = new ArrayBuffer(sizes.reduce((a, b) => a + b, 0));
  const at: number[] = [];
  sizes.reduce((offset, size) => (at.push(offset), offset + size), 0);
  return {
    buffer,
    transfers: encodeTransfers(transfers, {
      big: new BigInt64Array(buffer, at[0], n * T_BIG.length),
      textLengths: new Uint32Array(buffer, at[2], n * T_TEXT.length),
      bodyEnds: new Uint32Array(buffer, at[4], n),
      nulls: new Uint8Array(buffer, at[5], n),
      bodies: new Uint8Array(buffer, at[7], sizes[7]),
    }),
    balances: encodeBalances(accounts, {
      big: new BigInt64Array(buffer, at[1], m * 6),
      idLengths: new Uint32Array(buffer, at[3], m),
      lastTsNull: new Uint8Array(buffer, at[6], m),
    }),
  };
}
