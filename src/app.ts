// Wiring: the one place that picks adapters and builds the object graph of a Tally process.
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { openDatabase, redactUrl, type Database } from "./db/database.ts";
import { IdempotencyStore } from "./db/idempotency.ts";
import { migrate } from "./db/migrations.ts";
import { ApiKeyStore } from "./http/api-keys.ts";
import { buildServer } from "./http/server.ts";
import { MemoryNonceStore, TableNonceStore } from "./http/request-signing.ts";
import { SecurityEventRecorder, recordablePath } from "./http/security-events.ts";
import { HttpSecurity, registerSecurityRoutes } from "./http/security.ts";
import { systemClock, type Clock } from "./kernel/clock.ts";
import type { Config } from "./kernel/config.ts";
import { PostingEngine } from "./ledger/engine.ts";
import { LedgerQueries } from "./ledger/queries.ts";
import { registerLedgerRoutes } from "./ledger/routes.ts";
import { createLedgerStore } from "./ledger/store.ts";
import { SqliteLedgerStore } from "./ledger/store-sqlite.ts";
import { WalMonitor } from "./ledger/wal-monitor.ts";
import { createLogger } from "./ops/logger.ts";
import type { Channel } from "./channels/channel.ts";
import { Router } from "./channels/routing.ts";
import { configuredChannels } from "./channels/configured.ts";
import { SimulatorChannel, defaultSimulatorSettings, type SimulatorSettings } from "./channels/simulator/index.ts";
import { NotificationInbox, PaymentService, PayoutService, RefundService, registerNotifyRoutes, registerPaymentRoutes, sealClearNotificationBodies } from "./payments/index.ts";
import { AuditLog, Reencryptor, openVault, registerVaultRoutes, type Vault } from "./vault/index.ts";
import { WebhookService, registerWebhookRoutes } from "./webhooks/index.ts";
import { registerOpsRoutes } from "./ops/routes.ts";
import { successRates } from "./ops/success-rates.ts";
import { registerCheckoutRoutes } from "./checkout/index.ts";
import { CustodyBanks } from "./escrow/banks.ts";
import { AgreementService } from "./escrow/service.ts";
import { registerEscrowRoutes } from "./escrow/routes.ts";
import { ArrivalInbox, custodyAlerts } from "./arrivals/service.ts";
import { registerCustodyRoutes } from "./arrivals/routes.ts";
import { ReconciliationService } from "./reconciliation/service.ts";
import { MetricsRegistry, coreMetrics } from "./ops/metrics.ts";

export interface Tally {
  readonly config: Config;
  readonly db: Database;
  readonly engine: PostingEngine;
  readonly queries: LedgerQueries;
  readonly keys: ApiKeyStore;
  /** Rate limits, blocking, signed requests and security events of the HTTP API. */
  readonly security: HttpSecurity;
  readonly server: FastifyInstance;
  readonly logger: Logger;
  readonly payments: PaymentService;
  readonly refunds: RefundService;
  readonly payouts: PayoutService;
  readonly inbox: NotificationInbox;
  readonly router: Router;
  readonly webhooks: WebhookService;
  readonly agreements: AgreementService;
  readonly arrivals: ArrivalInbox;
  readonly reconciliations: ReconciliationService;
  readonly banks: CustodyBanks;
  readonly vault: Vault;
  readonly audit: AuditLog;
  readonly channels: ReadonlyMap<string, Channel>;
  /** Runs every payment job once (re-query, expiry, refund retries, payout polls); for tests. */
  runPaymentJobs(): Promise<void>;
  /** Fans out new events and starts due webhook deliveries once; for tests. */
  runWebhookJobs(): Promise<void>;
  /** Reloads data keys, re-encrypts up to `vaultJobBatchesMax` batches and seals notification bodies kept in clear, once; for tests. */
  runVaultJobs(): Promise<void>;
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
  const store = createLedgerStore(db);
  if (store instanceof SqliteLedgerStore) {
    const wal = new WalMonitor({ logger, registry, backlogWarnFrames: config.limits.sqliteWalBacklogWarnFrames, nowMs: () => clock.nowMs() });
    const restarts = registry.counter("tally_ledger_writer_restarts_total", "Ledger writer threads started again after one ended unasked");
    store.listen({
      wal: (report) => wal.report(report),
      writerDown: (err, restartInMs) => logger.error({ err, restartInMs }, "the ledger writer thread ended: writes are refused (503) until it restarts"),
      writerRestarted: () => {
        restarts.inc();
        logger.warn("the ledger writer thread started again");
      },
    });
  }
  const engine = new PostingEngine(store, clock, config.limits, {
    batchCommitted: (b) => {
      core.transfersPosted.inc({}, b.created);
      core.holdsExpired.inc({}, b.expired);
      if (b.transfers > 0) core.batchSize.observe(b.transfers);
      core.batchDuration.observe(b.durationMs / 1000);
    },
  }, db.dialect);
  core.queueDepth.collect(() => engine.queueDepth);
  registry
    .gauge("tally_ledger_writable", "1 while the ledger takes writes; 0 while they are refused (its writer thread down)")
    .collect(() => (engine.problem() === null ? 1 : 0));
  const queries = new LedgerQueries(db);
  const keys = new ApiKeyStore(db, config.adminKey, () => clock.nowMs(), config.limits.apiKeyCacheTtlMs);
  const securityEvents = new SecurityEventRecorder(db, () => clock.nowMs(), config.limits.securityEventsBufferMax, (err) =>
    logger.warn({ err }, "security events could not be written"),
  );
  // Nonces: in memory on SQLite (one process serves the file); in a table on PostgreSQL, where
  // several processes share the database and each must refuse the others' replays.
  const nonces = db.dialect === "postgres" ? new TableNonceStore(db) : new MemoryNonceStore(config.limits.nonceEntriesMax);
  const security = new HttpSecurity({ limits: config.limits, events: securityEvents, nonces, nowMs: () => clock.nowMs(), hstsMaxAgeSeconds: config.hstsMaxAgeSeconds });
  const idempotency = new IdempotencyStore(db, config.limits.idempotencyInFlightTimeoutMs, () => clock.nowMs());
  let shuttingDown = false;

  let vault: Vault;
  try {
    vault = await openVault(db, { keyFile: config.vaultKeyFile, suite: config.vaultSuite });
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
  const audit = new AuditLog(db, () => clock.nowUs());
  const reencryptor = new Reencryptor(db, vault, () => clock.nowUs());
  const channels = new Map<string, Channel>();
  const simulator = config.simulator ? new SimulatorChannel({ ...defaultSimulatorSettings, latencyMs: config.simulatorLatencyMs, ...options.simulator }, () => clock.nowMs()) : null;
  if (simulator) channels.set(simulator.id, simulator);
  for (const channel of configuredChannels(config.channelSettings, () => clock.nowMs())) channels.set(channel.id, channel);
  for (const channel of options.channels ?? []) channels.set(channel.id, channel);
  const router = new Router(channels, { ...(config.routingFile ? { file: config.routingFile } : {}), logger, nowMs: () => clock.nowMs() });
  let baseUrl = config.publicUrl ?? `http://localhost:${config.port}`;
  const payments = new PaymentService({ db, engine, clock, limits: config.limits, channels, router, logger, baseUrl: () => baseUrl });
  const refunds = new RefundService(payments);
  const payouts = new PayoutService(payments, vault);
  const inbox = new NotificationInbox(payments, refunds, payouts, logger, vault);
  simulator?.connect((notification) => inbox.receive("simulator", notification));
  const webhooks = new WebhookService({ db, engine, clock, limits: config.limits, logger });
  const banks = new CustodyBanks(clock);
  const agreements = new AgreementService({ db, engine, clock, limits: config.limits, logger, vault, banks, lock: payments.lock });
  const arrivals = new ArrivalInbox(agreements, logger);
  const reconciliations = new ReconciliationService(agreements, arrivals, logger);
  banks.connect(async (bank, kind, body, type) =>
    kind === "notice" ? arrivals.receive(bank, body, type) : (await reconciliations.receive(bank, body, type)).reconciliation.id,
  );
  const custodyNotices = registry.gauge("tally_custody_notices_total", "Custody notices processed by this process, by bank and status");
  custodyNotices.collect(() => [...arrivals.counts].map(([key, n]) => {
    const [bank, status] = key.split(":");
    return [{ bank: bank!, status: status! }, n];
  }));
  const quarantinedGauge = registry.gauge("tally_custody_entries_quarantined", "Entries waiting in quarantine, by bank");
  const unmatchedGauge = registry.gauge("tally_custody_entries_unmatched", "Entries waiting in the manual queue, by bank");
  const oldestGauge = registry.gauge("tally_custody_unmatched_oldest_seconds", "Age of the oldest unmatched entry, by bank");
  const matchRateGauge = registry.gauge("tally_custody_match_rate", "Share of applied credit entries matched automatically, by bank");
  const refreshCustody = async () => {
    const rows = await db.read
      .selectFrom("custody_entries")
      .select((eb) => ["bank", "status", eb.fn.countAll<number>().as("n"), eb.fn.min<bigint>("created_at").as("oldest")])
      .groupBy(["bank", "status"])
      .execute();
    const byBank = new Map<string, Record<string, { n: number; oldest: bigint }>>();
    for (const r of rows) byBank.set(r.bank, { ...byBank.get(r.bank), [r.status]: { n: Number(r.n), oldest: BigInt(r.oldest) } });
    for (const [bank, s] of byBank) {
      quarantinedGauge.set(s.quarantined?.n ?? 0, { bank });
      unmatchedGauge.set(s.unmatched?.n ?? 0, { bank });
      oldestGauge.set(s.unmatched ? Number(clock.nowUs() - s.unmatched.oldest) / 1e6 : 0, { bank });
      const matched = s.matched?.n ?? 0;
      const unmatched = s.unmatched?.n ?? 0;
      if (matched + unmatched > 0) matchRateGauge.set(matched / (matched + unmatched), { bank });
    }
  };

  // Success rates of the last 24 hours for /metrics, refreshed by the jobs (a scrape never
  // waits on a query).
  const rates = registry.gauge("tally_channel_attempts_24h", "Settled channel attempts of the last 24 hours by flow, channel and outcome");
  const effective = registry.gauge("tally_effective_success_rate_24h", "Effective success rate of the last 24 hours by flow and channel");
  const refreshRates = async () => {
    const now = clock.nowUs();
    const r = await successRates(db, now - 86_400_000_000n, now + 1n, "channel");
    for (const [flow, list] of [["pay_in", r.pay_in], ["payout", r.payout]] as const) {
      for (const row of list) {
        rates.set(row.succeeded, { flow, channel: row.key, outcome: "succeeded" });
        rates.set(row.user_caused_failures, { flow, channel: row.key, outcome: "user_caused_failure" });
        rates.set(row.system_failures, { flow, channel: row.key, outcome: "system_failure" });
        if (row.effective_success_rate !== null) effective.set(row.effective_success_rate, { flow, channel: row.key });
      }
    }
  };
  const notifications = registry.gauge("tally_channel_notifications_total", "Channel notifications processed by this process, by channel and status");
  notifications.collect(() => [...inbox.counts].map(([key, n]) => {
    const [channel, status] = key.split(":");
    return [{ channel: channel!, status: status! }, n];
  }));

  const server = await buildServer(
    { db, logger, limits: config.limits, keys, idempotency, metrics: registry, core, isShuttingDown: () => shuttingDown, ledgerProblem: () => engine.problem(), security, trustProxy: config.trustProxy },
    (app) => {
      registerLedgerRoutes(app, { engine, queries, clock, limits: config.limits, idempotency });
      registerPaymentRoutes(app, { payments, refunds, payouts, limits: config.limits, idempotency });
      registerCheckoutRoutes(app, { payments, clock });
      registerEscrowRoutes(app, { agreements, inbox: arrivals, reconciliations, banks, limits: config.limits, idempotency });
      registerCustodyRoutes(app, {
        db,
        inbox: arrivals,
        reconciliations,
        limits: config.limits,
        securityEvent: (request, kind) =>
          securityEvents.record({ type: "custody_scope_refused", clientAddress: request.ip, keyId: request.principal?.keyId ?? null, detail: { reason: kind, path: recordablePath(request.url) } }),
      });
      registerNotifyRoutes(app, { inbox, db });
      registerWebhookRoutes(app, { webhooks, idempotency });
      registerOpsRoutes(app, { db, clock });
      registerSecurityRoutes(app, { events: securityEvents, limits: config.limits });
      registerVaultRoutes(app, { db, vault, audit, revealers: [payouts.destinationRevealer()] });
    },
  );

  const runPaymentJobs = async () => {
    await payments.requeryDue();
    await payments.expireDue();
    await refunds.retryPending();
    await payouts.pollOpen();
    await refreshRates();
    await agreements.retryBanks();
    await agreements.expireDue();
    await agreements.pollPayouts();
    await arrivals.processPending();
    await custodyAlerts(arrivals, arrivals.context);
    await refreshCustody();
  };
  const runWebhookJobs = async () => {
    await webhooks.fanOut();
    await webhooks.deliverDue();
  };

  // Two jobs, each on its own: one that keeps failing (a value that does not decrypt) must not
  // keep the other from running.
  const runVaultJobs = async () => {
    const reencrypt = reencryptor.run({ batchRows: config.limits.vaultReencryptBatchRows, batchesMax: config.limits.vaultJobBatchesMax });
    // Notification bodies received in clear before they were sealed (migration 0011).
    const seal = sealClearNotificationBodies(db, vault, { batchRows: config.limits.vaultReencryptBatchRows, batchesMax: config.limits.vaultJobBatchesMax });
    const failed = (await Promise.allSettled([reencrypt, seal])).filter((r) => r.status === "rejected");
    if (failed.length > 0) throw failed.length === 1 ? failed[0]!.reason : new AggregateError(failed.map((r) => r.reason), "vault jobs failed");
  };

  const timers: NodeJS.Timeout[] = [];
  // Security events are written in batches whether or not the other jobs run: recording one must
  // never wait on the database, and none may stay unwritten for long.
  const securityTimers = [
    setInterval(() => void securityEvents.flush(), config.limits.securityEventsFlushIntervalMs),
    setInterval(() => void nonces.prune(clock.nowMs()).catch((err) => logger.warn({ err }, "nonce pruning failed")), 60_000),
  ];
  for (const t of securityTimers) t.unref();
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
    // Webhooks run on their own timer: a slow merchant endpoint never delays payment jobs.
    let webhooksRunning = false;
    timers.push(
      setInterval(() => {
        if (webhooksRunning || shuttingDown) return;
        webhooksRunning = true;
        runWebhookJobs()
          .catch((err) => logger.warn({ err }, "webhook jobs failed; they run again shortly"))
          .finally(() => (webhooksRunning = false));
      }, config.limits.paymentJobIntervalMs),
    );
    // The vault job: picks up key versions rotated by other processes and moves rows onto the
    // newest key a few bounded batches at a time.
    let vaultRunning = false;
    timers.push(
      setInterval(() => {
        if (vaultRunning || shuttingDown) return;
        vaultRunning = true;
        runVaultJobs()
          .catch((err) => logger.warn({ err }, "vault job failed; it runs again shortly"))
          .finally(() => (vaultRunning = false));
      }, config.limits.vaultJobIntervalMs),
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
    security,
    server,
    logger,
    payments,
    refunds,
    payouts,
    inbox,
    router,
    channels,
    runPaymentJobs,
    vault,
    audit,
    runVaultJobs,
    webhooks,
    runWebhookJobs,
    agreements,
    arrivals,
    reconciliations,
    banks,
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
        for (const t of [...timers, ...securityTimers]) clearInterval(t);
        simulator?.close();
        await webhooks.idle();
        banks.close();
        await arrivals.idle();
        await server.close();
        await securityEvents.flush();
        await engine.close();
        await payments.close();
        await db.close();
      })();
      return closing;
    },
  };
}
