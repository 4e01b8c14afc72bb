// Boots the SQLite writer thread. On Node 20 a worker thread does not inherit the TypeScript
// loader of its parent, so the thread registers it before loading the worker's module.
import { register } from "tsx/esm/api";

register();
await import("./sqlite-writer-worker.ts");
