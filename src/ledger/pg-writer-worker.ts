// The PostgreSQL writer thread. It commits the batches a process prepared without the ledger
// lock, one at a time in the order they were handed over, on a connection of its own: take the
// ledger row lock, check the version the batch was prepared on, run its statements, commit.
//
// A commit is a handful of round trips. On the main thread each reply waited for the event loop,
// which was busy preparing the next batches (tens of milliseconds at a time), and the database sat
// idle in between: the main thread and PostgreSQL together were busy little more than one core.
// Here every reply is taken up at once, and the next batch is already waiting in the queue.
//
// A batch that fails dooms the batches handed over after it (they were prepared on its effects):
// they are refused without touching the database until the main thread, having heard of the
// failure, hands over batches of a later epoch.
import { workerData, type MessagePort } from "node:worker_threads";
import pg from "pg";
import { writeSteps, type WriteStep } from "../db/pg-copy.ts";

export interface WriterJob {
  readonly seq: number;
  /** The main thread's failure count when the batch was prepared. */
  readonly epoch: number;
  /** The ledger version the batch was prepared on (decimal). */
  readonly expectVersion: string;
  /** Empty: nothing to write, only check that the version still holds. */
  readonly steps: readonly WriteStep[];
}

export type WriterReply =
  | { readonly seq: number; readonly ok: true; readonly writeMs: number }
  | {
      readonly seq: number;
      readonly ok: false;
      /** Refused untouched: a batch handed over before it failed. */
      readonly stale: boolean;
      /** Another process wrote since the version the batch was prepared on. */
      readonly conflict: boolean;
      readonly message: string;
      readonly code?: string;
      readonly constraint?: string;
    };

export type WriterMessage = { readonly job: WriterJob } | { readonly close: true };

const { url, port } = workerData as { url: string; port: MessagePort };
let client: pg.Client | null = null;
/** Batches of an earlier epoch were handed over before a failure the main thread has not yet seen. */
let minEpoch = 0;
const queue: WriterJob[] = [];
let running = false;
let closing = false;

class Conflict extends Error {}

async function connection(): Promise<pg.Client> {
  if (client) return client;
  const c = new pg.Client({ connectionString: url });
  // A connection that fails while idle must not end the thread; the next batch opens another.
  c.on("error", () => {});
  await c.connect();
  client = c;
  return c;
}

async function write(job: WriterJob): Promise<number> {
  const c = await connection();
  if (job.steps.length === 0) {
    const { rows } = await c.query("select version::text as version from ledger_state where id = 1");
    if (rows[0].version !== job.expectVersion) throw new Conflict("another process wrote to the ledger meanwhile");
    return 0;
  }
  const started = performance.now();
  // One round trip: the transaction and the ledger lock.
  const results = (await c.query("begin; select version::text as version from ledger_state where id = 1 for update")) as unknown as pg.QueryResult[];
  if (results[1]!.rows[0].version !== job.expectVersion) throw new Conflict("another process wrote to the ledger meanwhile");
  await writeSteps(c, job.steps);
  await c.query("commit");
  return performance.now() - started;
}

async function run(job: WriterJob): Promise<WriterReply> {
  if (job.epoch < minEpoch) {
    return { seq: job.seq, ok: false, stale: true, conflict: false, message: "an earlier batch of this process failed" };
  }
  try {
    return { seq: job.seq, ok: true, writeMs: await write(job) };
  } catch (error) {
    minEpoch = job.epoch + 1;
    const e = error as { code?: string; constraint?: string; message?: string };
    const conflict = error instanceof Conflict;
    if (client) {
      const c = client;
      try {
        await c.query("rollback");
        // A statement the database refused leaves a sound connection; anything else may not.
        if (!conflict && !(error instanceof pg.DatabaseError)) throw error;
      } catch {
        client = null;
        await c.end().catch(() => {});
      }
    }
    return {
      seq: job.seq,
      ok: false,
      stale: false,
      conflict,
      message: String(e.message ?? error),
      ...(typeof e.code === "string" ? { code: e.code } : {}),
      ...(typeof e.constraint === "string" ? { constraint: e.constraint } : {}),
    };
  }
}

async function drain(): Promise<void> {
  if (running) return;
  running = true;
  try {
    for (let job = queue.shift(); job; job = queue.shift()) port.postMessage(await run(job));
  } finally {
    running = false;
  }
  if (closing) await shutdown();
}

async function shutdown(): Promise<void> {
  const c = client;
  client = null;
  await c?.end().catch(() => {});
  port.close();
}

port.on("message", (message: WriterMessage) => {
  if ("close" in message) {
    closing = true;
    if (!running) void shutdown();
    return;
  }
  queue.push(message.job);
  void drain();
});
