// Boots a worker thread whose module is TypeScript. On Node 20 a worker thread does not inherit
// the TypeScript loader of its parent, so the thread registers it before loading the module
// named by workerData.entry (kernel/worker.ts starts such threads).
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.entry);
