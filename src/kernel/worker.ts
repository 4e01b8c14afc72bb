// Worker threads running a TypeScript module (the ledger stores' writer threads).
import { Worker, type Transferable } from "node:worker_threads";

/** Starts `entry` (a TypeScript module's URL) on a worker thread with `data` as its workerData. */
export function startTypeScriptWorker(entry: URL, data: Record<string, unknown>, transferList: Transferable[] = []): Worker {
  return new Worker(new URL("./typescript-worker.mjs", import.meta.url), {
    workerData: { ...data, entry: entry.href },
    transferList,
  });
}
