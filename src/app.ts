// Wiring: the one place that picks adapters and builds the object graph of a Tally process.
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { openDatabase, redactUrl, type Database } from "./db/database.ts";
import { IdempotencyStore } from "./db/idempotency.ts";
import { migrate } from "./db/migrations.ts";
import { ApiKeyStore } from "./http/api-keys.ts";
import { buildServer } from "./http/server.ts";
import { systemClock, type Clock } from "./kernel/clock.ts";
import type { Config } from "./kernel/config.ts";
import { PostingEngine } from "./ledger/engine.ts";
import { LedgerQueries } from "./ledger/queries.ts";
import { registerLedgerRoutes } from "./ledger/routes.ts";
import { createLedgerStore } from "./ledger/store.ts";
import { createLogger } from "./ops/logger.ts";
import type { Channel } from "./channels/channel.ts";
import { Router } from "./channels/routing.ts";
import { SimulatorChannel, defaultSimulatorSettings, type SimulatorSettings } from "./channels/simulator/index.ts";
import { NotificationInbox, PaymentService, PayoutService, RefundService, registerNotifyRoutes, registerPaymentRoutes } from "./payments/index.ts";
import { Vault, loadOrCreateMasterKey } from "./vault/vault.ts";
import { registerCheckoutRoutes } from "./checkout/index.ts";
import { MetricsRegistry, coreMetrics } from "./ops/metrics.ts";

export interface Tally {
  readonly config: Config;
  readonly db: Database;
  readonly engine: PostingEngine;
  readonly queries: LedgerQueries;
  readonly keys: ApiKeyStore;
  readonly server: FastifyInstance;
  readonly logger: Logger;
  readonly payments: PaymentService;
  readonly refunds: RefundService;
  readonly payouts: PayoutService;
  readonly inbox: NotificationInbox;
  readonly router: Router;
  readonly channels: ReadonlyMap<string, Channel>;
  /** Runs every payment job once (re-query, expiry, refund retries, payout polls); for tests. */
  runPaymentJobs(): Promise<void>;
  /** Starts listening; resolves to the base URL. */
  listen(): Promise<string>;
  /** Graceful stop: no new requests, in-flight ones finish, every queued write commits or is refused. */
  close(): Promise<void>;
}

export interface TallyOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Run the background jobs (hold expiry, pruning). Tests that drive time by hand turn them off. */
  readonly jobs?: boolean;
  /** Channels besides the simulator (connectors built by the caller, or fakes in tests). */
  readonly channels?: readonly Channel[];
  readonly simulator?: Partial<SimulatorSettings>;
}

export async function createTally(config: Config, options: TallyOptions = {}): Promise<Tally> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.logLevel);
  const db = openDatabase(config.databaseUrl);
  try {
    await migrate(db);
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
  const registry = new MetricsRegistry();
  const core = coreMetrics(registry);
  const engine = new PostingEngine(createLedgerStore(db), clock, config.limits, {
    batchCommitted: (b) => {
      core.transfersPosted.inc({}, b.created);
      core.holdsExpired.inc({}, b.expired);
      if (b.transfers > 0) core.batchSize.observe(b.transfers);
      core.batchDuration.observe(b.durationMs / 1000);
    },
  }, db.dialect);
  core.queueDepth.collect(() => engine.queueDepth);
  const queries = new LedgerQueries(db);
  const keys = new ApiKeyStore(db, config.adminKey, () => clock.nowMs());
  const idempotency = new IdempotencyStore(db, config.limits.idempotencyInFlightTimeoutMs, () => clock.nowMs());
  let shuttingDown = false;

  const vault = new Vault(loadOrCreateMasterKey(config.vaultKeyFile));
  const channels = new Map<string, Channel>();
  const simulator = config.simulator ? new SimulatorChannel({ ...defaultSimulatorSettings, ...options.simulator }, () => clock.nowMs()) : null;
  if (simulator) channels.set(simulator.id, simulator);
  for (const channel of options.channels ?? []) channels.set(channel.id, channel);
  const router = new Router(channels, { ...(config.routingFile ? { file: config.routingFile } : {}), logger, nowMs: () => clock.nowMs() });
  let baseUrl = config.publicUrl ?? `http://localhost:${config.port}`;
  const payments = new PaymentService({ db, engine, clock, limits: config.limits, channels, router, logger, baseUrl: () => baseUrl });
  const refunds = new RefundService(payments);
  const payouts = new PayoutService(payments, vault);
  const inbox = new NotificationInbox(payments, refunds, payouts, logger);
  simulator?.connect((notification) => inbox.receive("simulator", notification));

  const server = await buildServer(
    { db, logger, limits: config.limits, keys, idempotency, metrics: registry, core, isShuttingDown: () => shuttingDown },
    (app) => {
      registerLedgerRoutes(app, { engine, queries, clock, limits: config.limits, idempotency });
      registerPaymentRoutes(app, { payments, refunds, payouts, limits: config.limits, idempotency });
      registerCheckoutRoutes(app, { payments, clock });
      registerNotifyRoutes(app, { inbox, db });
    },
  );

  const runPaymentJobs = async () => {
    await payments.requeryDue();
    await payments.expireDue();
    await refunds.retryPending();
    await payouts.pollOpen();
  };

  const timers: NodeJS.Timeout[] = [];
  if (options.jobs ?? true) {
    // Hold expiry: every batch expires due holds; this tick makes sure one runs when idle.
    timers.push(setInterval(() => void engine.tick().catch((err) => logger.warn({ err }, "hold expiry sweep failed")), config.limits.expirySweepIntervalMs));
    timers.push(
      setInterval(
        () => void idempotency.prune(config.limits.idempotencyRetentionHours).catch((err) => logger.warn({ err }, "idempotency pruning failed")),
        3_600_000,
      ),
    );
    let jobRunning = false;
    timers.push(
      setInterval(() => {
        if (jobRunning || shuttingDown) return;
        jobRunning = true;
        runPaymentJobs()
          .catch((err) => logger.warn({ err }, "payment jobs failed; they run again shortly"))
          .finally(() => (jobRunning = false));
      }, config.limits.paymentJobIntervalMs),
    );
    for (const t of timers) t.unref();
  }

  let closing: Promise<void> | null = null;
  return {
    config,
    db,
    engine,
    queries,
    keys,
    server,
    logger,
    payments,
    refunds,
    payouts,
    inbox,
    router,
    channels,
    runPaymentJobs,
    async listen() {
      await server.listen({ port: config.port, host: config.host });
      const address = server.server.address();
      const port = typeof address === "object" && address ? address.port : config.port;
      const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
      const url = config.publicUrl ?? `http://${host}:${port}`;
      baseUrl = url;
      logger.info({ url, docs: `${url}/docs`, database: redactUrl(config.databaseUrl) }, `Tally is ready at ${url} (API docs ${url}/docs)`);
      return url;
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        for (const t of timers) clearInterval(t);
        simulator?.close();
        await server.close();
        await engine.close();
        await db.close();
      })();
      return closing;
    },
  };
}
