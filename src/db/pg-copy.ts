// COPY ... FROM STDIN on a node-postgres client, in the binary format. For thousands of rows per
// transaction it is several times cheaper for PostgreSQL than INSERT ... SELECT FROM unnest(...)
// (no array literals to parse and take apart, no executor plan over them), and building the text
// costs the client less than encoding arrays. node-postgres runs it as a "submittable" query.
import type pg from "pg";

/** A COPY FROM STDIN whose data is one buffer. */
class CopyIn {
  private error: Error | null = null;
  private done = false;
  callback?: (error: Error | null) => void;

  constructor(readonly text: string, private readonly data: Buffer) {}

  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: { sendCopyFromChunk(chunk: Buffer): void; endCopyFrom(): void }): void {
    connection.sendCopyFromChunk(this.data);
    connection.endCopyFrom();
  }

  handleError(error: Error): void {
    // Answered at once (as node-postgres's own queries are): the connection may be gone, with no
    // ReadyForQuery to come. The client queues any next query until the server is ready.
    this.error ??= error;
    this.finish();
  }

  handleReadyForQuery(): void {
    this.finish();
  }

  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.callback?.(this.error);
  }
}

/**
 * Copies rows (a CopyBinaryWriter's output) into `table`. The rows may arrive as a plain
 * Uint8Array: a Buffer posted to a worker thread does.
 */
export function copyIn(client: pg.ClientBase, table: string, columns: readonly string[], rows: Uint8Array): Promise<void> {
  const data = Buffer.isBuffer(rows) ? rows : Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength);
  return new Promise((resolve, reject) => {
    const copy = new CopyIn(`copy ${table} (${columns.join(", ")}) from stdin with (format binary)`, data);
    copy.callback = (error) => (error ? reject(error) : resolve());
    client.query(copy as unknown as pg.QueryConfig);
  });
}

const INT8_MAX = 2n ** 63n - 1n;
const INT8_MIN = -(2n ** 63n);
const INT4_MAX = 2 ** 31 - 1;

/**
 * Rows in COPY's binary format. Cheaper to build than text (no integer is turned into decimal
 * digits, which for bigint is slow) and cheaper for the server to read. Each field must have
 * exactly its column's type: int8 for bigint, int4 for integer, UTF-8 for text.
 */
export class CopyBinaryWriter {
  private buffer: Buffer;
  /** Integers go through a DataView: Buffer.writeBigInt64BE takes a bigint apart in JavaScript, far slower. */
  private view: DataView;
  private offset = 0;

  constructor(bytesHint: number) {
    this.buffer = Buffer.allocUnsafe(Math.max(bytesHint, 64));
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.length);
    // Signature, flags, header extension length.
    this.buffer.write("PGCOPY\n\xff\r\n\0", 0, "latin1");
    this.offset = 11;
    this.view.setInt32(this.offset, 0);
    this.view.setInt32(this.offset + 4, 0);
    this.offset += 8;
  }

  row(fields: number): void {
    this.ensure(2);
    this.view.setInt16(this.offset, fields);
    this.offset += 2;
  }

  int8(value: bigint | null): void {
    if (value === null) return this.nil();
    // A DataView wraps an out-of-range value silently; the column would then hold another number.
    if (value > INT8_MAX || value < INT8_MIN) throw new RangeError(`${value} does not fit a PostgreSQL bigint`);
    this.ensure(12);
    this.view.setInt32(this.offset, 8);
    this.view.setBigInt64(this.offset + 4, value);
    this.offset += 12;
  }

  int4(value: number | null): void {
    if (value === null) return this.nil();
    if (!Number.isInteger(value) || value > INT4_MAX || value < -INT4_MAX - 1) throw new RangeError(`${value} does not fit a PostgreSQL integer`);
    this.ensure(8);
    this.view.setInt32(this.offset, 4);
    this.view.setInt32(this.offset + 4, value);
    this.offset += 8;
  }

  text(value: string | null): void {
    if (value === null) return this.nil();
    // A UTF-16 code unit takes at most 3 bytes of UTF-8.
    this.ensure(4 + value.length * 3);
    const bytes = this.buffer.write(value, this.offset + 4, "utf8");
    this.view.setInt32(this.offset, bytes);
    this.offset += 4 + bytes;
  }

  /** The whole COPY data, trailer included. */
  finish(): Buffer {
    this.ensure(2);
    this.view.setInt16(this.offset, -1);
    this.offset += 2;
    return this.buffer.subarray(0, this.offset);
  }

  private nil(): void {
    this.ensure(4);
    this.view.setInt32(this.offset, -1);
    this.offset += 4;
  }

  private ensure(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.offset + bytes));
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.length);
  }
}

/** One statement of a batch's writes, its parameters already encoded (the ledger stores'). */
export type WriteStep =
  | { readonly text: string; readonly params: unknown[] }
  | { readonly copyInto: string; readonly columns: readonly string[]; readonly data: Uint8Array };

/** Runs a batch's statements in order, on the client's open transaction. */
export async function writeSteps(client: pg.ClientBase, steps: readonly WriteStep[]): Promise<void> {
  for (const step of steps) {
    if ("copyInto" in step) await copyIn(client, step.copyInto, step.columns, step.data);
    else await client.query(step.text, step.params);
  }
}
