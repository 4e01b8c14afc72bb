// The real server as a child process (`node <NODE_FLAGS> --import tsx src/cli/main.ts serve`), for
// tests that crash it (SIGKILL), stop it (SIGTERM) or run several of them on one database.
// Requests go over a real socket through a keep-alive agent, as a client in production would send
// them.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { NODE_FLAGS } from "../../src/cli/node-flags.ts";

export const SERVER_ADMIN_KEY = "test-process-admin-key-0123456789";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const START_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 30_000;
const OUTPUT_CHARS_MAX = 64 * 1024;
const PORT_ATTEMPTS_MAX = 3;

export interface ProcessResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: any;
  readonly text: string;
}

export interface RequestOptions {
  /** Bearer key; the admin key by default, null sends no Authorization. */
  readonly key?: string | null;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** A JSON request; rejects on a connection error (refused, reset, socket closed mid-response). */
  request(method: string, path: string, body?: unknown, options?: RequestOptions): Promise<ProcessResponse>;
  kill(signal: NodeJS.Signals): void;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** The exit status once the process has exited, else null. */
  exitStatus(): ExitStatus | null;
  /** The last part of what the process wrote to stdout and stderr, for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. Idempotent. */
  stop(graceMs?: number): Promise<ExitStatus>;
}

/** Children still running, killed when the test process exits so none outlives a failed test. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** A port that was free a moment ago: listen on port 0, read it, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

export async function startServerProcess(options: {
  databaseUrl: string;
  adminKey?: string;
  env?: Record<string, string>;
  startTimeoutMs?: number;
}): Promise<ServerProcess> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS_MAX; attempt++) {
    const port = await freePort();
    try {
      return await startOn(port, options);
    } catch (error) {
      lastError = error;
      // Another process may have taken the port between our probe and the child's listen.
      if (!(error instanceof Error && /EADDRINUSE/.test(error.message))) throw error;
    }
  }
  throw lastError;
}

async function startOn(
  port: number,
  options: { databaseUrl: string; adminKey?: string; env?: Record<string, string>; startTimeoutMs?: number },
): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...NODE_FLAGS, "--import", "tsx", "src/cli/main.ts", "serve"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      TALLY_DATABASE_URL: options.databaseUrl,
      TALLY_ADMIN_KEY: options.adminKey ?? SERVER_ADMIN_KEY,
      TALLY_LOG_LEVEL: "warn",
      TALLY_DEMO: "off",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    if (output.length > OUTPUT_CHARS_MAX) output = output.slice(-OUTPUT_CHARS_MAX);
  };
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  let exitStatus: ExitStatus | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once("exit", (code, signal) => {
      live.delete(child);
      exitStatus = { code, signal };
      resolve(exitStatus);
    });
  });

  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  const adminKey = options.adminKey ?? SERVER_ADMIN_KEY;
  const request = (method: string, path: string, body?: unknown, opts: RequestOptions = {}) =>
    sendRequest(agent, port, adminKey, method, path, body, opts);

  const deadline = Date.now() + (options.startTimeoutMs ?? START_TIMEOUT_MS);
  for (;;) {
    if (exitStatus !== null) {
      agent.destroy();
      throw new Error(`the server exited before it was ready (${JSON.stringify(exitStatus)}):\n${output}`);
    }
    try {
      const res = await request("GET", "/healthz", undefined, { key: null, timeoutMs: 2_000 });
      if (res.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await exited;
      agent.destroy();
      throw new Error(`the server did not answer GET /healthz within the deadline:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  let stopping: Promise<ExitStatus> | null = null;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    request,
    kill: (signal) => {
      if (exitStatus === null) child.kill(signal);
    },
    exited: exited.then((status) => {
      agent.destroy();
      return status;
    }),
    exitStatus: () => exitStatus,
    output: () => output,
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        if (exitStatus === null) {
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
          await exited;
          clearTimeout(timer);
        }
        agent.destroy();
        return exitStatus!;
      })();
      return stopping;
    },
  };
}

function sendRequest(
  agent: http.Agent,
  port: number,
  adminKey: string,
  method: string,
  path: string,
  body: unknown,
  opts: RequestOptions,
): Promise<ProcessResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  const key = opts.key === undefined ? adminKey : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (payload !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host: "127.0.0.1", port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("error", reject);
      res.on("aborted", () => reject(new Error(`the response to ${method} ${path} was cut off`)));
      res.on("end", () => {
        if (!res.complete) {
          reject(new Error(`the response to ${method} ${path} was cut off`));
          return;
        }
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed, text });
      });
    });
    req.setTimeout(opts.timeoutMs ?? REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** An account's whole history through the API, newest first, walking every page. */
export async function historyOf(server: ServerProcess, accountId: string, pageSize = 100): Promise<any[]> {
  const all: any[] = [];
  let cursor: string | null = null;
  for (;;) {
    const path: string = `/v1/ledger/accounts/${accountId}/transfers?limit=${pageSize}${cursor ? `&starting_after=${encodeURIComponent(cursor)}` : ""}`;
    const res = await server.request("GET", path);
    assert.equal(res.status, 200, res.text);
    all.push(...res.body.data);
    if (!res.body.has_more) return all;
    assert.ok(res.body.data.length > 0, "has_more with an empty page");
    cursor = res.body.data.at(-1).id;
  }
}
