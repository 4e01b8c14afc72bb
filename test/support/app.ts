// A Tally instance for tests, on a fresh database, driven through its HTTP API as a client would
// (Fastify's inject: the full request path, no socket).
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Tally, TallyOptions } from "../../src/app.ts";
import { createTally } from "../../src/app.ts";
import { ManualClock, type Clock } from "../../src/kernel/clock.ts";
import { defaultLimits, type Config, type Limits } from "../../src/kernel/config.ts";
import { createLogger } from "../../src/ops/logger.ts";
import { createTestDatabase, type TestDatabase } from "./databases.ts";

export const ADMIN_KEY = "test-admin-key-0123456789";

export interface TestApp {
  readonly tally: Tally;
  readonly database: TestDatabase;
  readonly clock: Clock;
  /** JSON request with the admin key unless `key` says otherwise (null = no Authorization). */
  request(
    method: string,
    url: string,
    body?: unknown,
    options?: { key?: string | null; headers?: Record<string, string>; rawBody?: string; remoteAddress?: string },
  ): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface TestResponse {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly body: any;
  readonly text: string;
}

export async function startTestApp(options: {
  dialect?: "sqlite" | "postgres";
  clock?: ManualClock;
  limits?: Partial<Limits>;
  jobs?: boolean;
  label?: string;
  config?: Partial<Config>;
  options?: Omit<TallyOptions, "clock" | "jobs" | "logger">;
  /** The process logger; silent unless a test captures the logs. */
  logger?: Logger;
} = {}): Promise<TestApp> {
  const database = await createTestDatabase(options.dialect ?? "sqlite", options.label);
  const config: Config = {
    port: 0,
    host: "127.0.0.1",
    databaseUrl: database.url,
    adminKey: ADMIN_KEY,
    logLevel: "silent",
    publicUrl: "http://tally.test",
    vaultKeyFile: join(tmpdir(), `tally-test-vault-${process.pid}.key`),
    vaultSuite: "aes",
    routingFile: undefined,
    simulator: true,
    simulatorLatencyMs: 0,
    demo: false,
    channelSettings: {},
    hstsMaxAgeSeconds: 0,
    trustProxy: false,
    ...options.config,
    limits: { ...defaultLimits, ...options.limits },
  };
  const tally = await createTally(config, { ...options.options, clock: options.clock, jobs: options.jobs ?? false, logger: options.logger ?? createLogger("silent") });
  await tally.server.ready();
  return {
    tally,
    database,
    clock: options.clock ?? (undefined as unknown as Clock),
    async request(method, url, body, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      const key = opts.key === undefined ? ADMIN_KEY : opts.key;
      if (key !== null) headers.authorization = `Bearer ${key}`;
      let payload: string | undefined;
      if (opts.rawBody !== undefined) payload = opts.rawBody;
      else if (body !== undefined) payload = JSON.stringify(body);
      if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) {
        headers["content-type"] = "application/json";
      }
      const res = await tally.server.inject({ method: method as any, url, headers, payload, ...(opts.remoteAddress ? { remoteAddress: opts.remoteAddress } : {}) });
      let parsed: unknown = undefined;
      try {
        parsed = res.body ? JSON.parse(res.body) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.statusCode, headers: res.headers, body: parsed, text: res.body };
    },
    async close() {
      await tally.close();
      await database.dispose();
    },
  };
}
