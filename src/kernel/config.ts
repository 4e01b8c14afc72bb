// One typed configuration: every limit, size and timeout in one place (units last in names), read
// from the environment once at start-up. Nothing else in Tally reads process.env for settings.

export interface Limits {
  /** Largest request body for ordinary JSON endpoints. */
  readonly bodyBytesMax: number;
  /** Largest body for the ledger's batch endpoint. */
  readonly batchBodyBytesMax: number;
  /** Transfers in one batch request (TigerBeetle's 8190). */
  readonly batchTransfersMax: number;
  /** Transfers the engine applies in one database transaction. */
  readonly engineBatchTransfersMax: number;
  /** Transfers waiting in the engine's queue before requests are refused with 503. */
  readonly engineQueueTransfersMax: number;
  /** Frames of the SQLite WAL not yet copied into the database file from which a warning is logged. */
  readonly sqliteWalBacklogWarnFrames: number;
  readonly pageSizeDefault: number;
  readonly pageSizeMax: number;
  readonly referenceLengthMax: number;
  readonly metadataBytesMax: number;
  /** Largest balance field; keeping every figure ≤ 2^53 − 1 lets every JSON reader hold it exactly. */
  readonly balanceMax: bigint;
  readonly holdTimeoutSecondsMax: number;
  /** How often the hold-expiry sweep runs. */
  readonly expirySweepIntervalMs: number;
  /** An idempotency key left in flight longer than this (a crashed request) may be taken over. */
  readonly idempotencyInFlightTimeoutMs: number;
  readonly idempotencyRetentionHours: number;
  readonly shutdownTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** Largest amount of one payment, refund or payout, in minor units. */
  readonly paymentAmountMax: bigint;
  /** A channel call that takes longer than this has an unknown outcome (never failed over). */
  readonly channelTimeoutMs: number;
  /** How often the payment jobs (re-query, expiry, webhook delivery) look for work. */
  readonly paymentJobIntervalMs: number;
  /** Work items one job run takes at most. */
  readonly paymentJobBatchMax: number;
  /** A webhook endpoint that does not answer 2xx within this counts as failed. */
  readonly webhookTimeoutMs: number;
  /** Deliveries of one event to one endpoint before it is given up (replayable by hand). */
  readonly webhookAttemptsMax: number;
  /** Webhook requests in flight at once, so a slow merchant cannot hold the process. */
  readonly webhookConcurrencyMax: number;
  /** An entry still unmatched after this long raises custody.entry_unmatched. */
  readonly custodyUnmatchedAlertMs: number;
  /** No notice from a bank for this long during business hours (09–18 bank time) raises custody.bank_silent. */
  readonly custodyBankQuietMs: number;
  /** By this hour (bank time) the previous day's statement is due, else custody.statement_missing. */
  readonly custodyStatementDueHour: number;
  /** The first retry of a failed webhook waits this long; each next one twice as long (capped at an hour). */
  readonly webhookRetryBaseMs: number;
  /** Requests per second one API key may sustain (token bucket refill). */
  readonly rateLimitKeyPerSecond: number;
  /** Requests one API key may send at once above the sustained rate (bucket size). */
  readonly rateLimitKeyBurst: number;
  /** Requests per second one client address may sustain. */
  readonly rateLimitAddressPerSecond: number;
  readonly rateLimitAddressBurst: number;
  /** The window in which failed authentications and unknown paths of one address are counted. */
  readonly blockWindowMs: number;
  /** 401 answers to one address within the window before it is blocked. */
  readonly blockAuthFailuresMax: number;
  /** 404 answers on unmatched routes to one address within the window before it is blocked. */
  readonly blockUnknownPathsMax: number;
  /** How long a blocked address is refused. */
  readonly blockDurationMs: number;
  /** Client addresses tracked at once (rate limits and blocking); idle ones are dropped first. */
  readonly clientAddressesTrackedMax: number;
  /** A signed request's Tally-Timestamp may differ from the server's clock by at most this much. */
  readonly signatureWindowMs: number;
  /** Nonces remembered at once (in memory, SQLite); a full store refuses signed requests with 503. */
  readonly nonceEntriesMax: number;
  /** How long a verified API key is trusted without reading the database again (0 = always read). */
  readonly apiKeyCacheTtlMs: number;
  /** Security events waiting to be written; past it new events are counted as dropped. */
  readonly securityEventsBufferMax: number;
  /** How often buffered security events are written, in one batch. */
  readonly securityEventsFlushIntervalMs: number;
  /** Rows the vault's re-encryption job rewrites per batch (one transaction each). */
  readonly vaultReencryptBatchRows: number;
  /** How often the vault job reloads data keys (rotations by other processes) and re-encrypts a few batches. */
  readonly vaultJobIntervalMs: number;
  /** Re-encryption batches one run of the vault job takes at most. */
  readonly vaultJobBatchesMax: number;
}

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string;
  readonly adminKey: string | undefined;
  readonly logLevel: string;
  readonly publicUrl: string | undefined;
  /** The vault's master key file (created with mode 0600 on first start). */
  readonly vaultKeyFile: string;
  /** The vault's algorithms for new keys: `aes` (AES-256-GCM, HMAC-SHA256) or `sm` (SM4-GCM, HMAC-SM3). */
  readonly vaultSuite: "aes" | "sm";
  /** The routing rules file, re-read when it changes; absent = route each method to its channel. */
  readonly routingFile: string | undefined;
  /** The sandbox channel; on by default so a fresh machine can take a payment end to end. */
  readonly simulator: boolean;
  /** On an empty database, `serve` creates a demo merchant and payment and prints its cashier URL. */
  readonly demo: boolean;
  /** Added to each simulator call (a channel's round trip), for demos and crash tests. */
  readonly simulatorLatencyMs: number;
  /** Settings of the real channel connectors (TALLY_ALIPAY_*, TALLY_WECHAT_*): channels/configured.ts reads them. */
  readonly channelSettings: Readonly<Record<string, string>>;
  /** Strict-Transport-Security max-age on API responses; 0 = not sent (set it only behind TLS). */
  readonly hstsMaxAgeSeconds: number;
  /**
   * Which proxies to trust for the client address (X-Forwarded-For): false = none (the socket's
   * peer is the client), true = all, a number = hops, or a comma-separated list of addresses/CIDRs.
   */
  readonly trustProxy: boolean | number | string;
  readonly limits: Limits;
}

export const defaultLimits: Limits = {
  bodyBytesMax: 1024 * 1024,
  batchBodyBytesMax: 16 * 1024 * 1024,
  batchTransfersMax: 8190,
  engineBatchTransfersMax: 8190,
  engineQueueTransfersMax: 200_000,
  // 100 000 frames of 4 KiB pages: a WAL of ~400 MB that checkpoints could not copy back (the
  // writer checkpoints every 1000 frames, so a healthy WAL stays near 4 MB).
  sqliteWalBacklogWarnFrames: 100_000,
  pageSizeDefault: 20,
  pageSizeMax: 100,
  referenceLengthMax: 128,
  metadataBytesMax: 4096,
  balanceMax: BigInt(Number.MAX_SAFE_INTEGER),
  holdTimeoutSecondsMax: 60 * 60 * 24 * 366,
  expirySweepIntervalMs: 250,
  idempotencyInFlightTimeoutMs: 60_000,
  idempotencyRetentionHours: 24 * 7,
  shutdownTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  paymentAmountMax: 100_000_000_000n,
  channelTimeoutMs: 10_000,
  paymentJobIntervalMs: 500,
  paymentJobBatchMax: 100,
  webhookTimeoutMs: 10_000,
  webhookAttemptsMax: 8,
  webhookConcurrencyMax: 16,
  webhookRetryBaseMs: 10_000,
  custodyUnmatchedAlertMs: 3_600_000,
  custodyBankQuietMs: 4 * 3_600_000,
  custodyStatementDueHour: 10,
  // Sized for production traffic from one busy integration (the benchmark drives 10-20k requests
  // per second from one key and one address and must stay unthrottled): the limits stop a runaway
  // or hostile client from taking the whole process, not ordinary load, which back-pressure handles.
  rateLimitKeyPerSecond: 50_000,
  rateLimitKeyBurst: 100_000,
  rateLimitAddressPerSecond: 50_000,
  rateLimitAddressBurst: 100_000,
  blockWindowMs: 60_000,
  blockAuthFailuresMax: 50,
  blockUnknownPathsMax: 100,
  blockDurationMs: 15 * 60_000,
  clientAddressesTrackedMax: 100_000,
  signatureWindowMs: 5 * 60_000,
  nonceEntriesMax: 1_000_000,
  apiKeyCacheTtlMs: 1_000,
  securityEventsBufferMax: 10_000,
  securityEventsFlushIntervalMs: 1_000,
  vaultReencryptBatchRows: 200,
  vaultJobIntervalMs: 10_000,
  vaultJobBatchesMax: 10,
};

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new Error(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function vaultSuiteFromEnv(raw: string | undefined): "aes" | "sm" {
  if (raw === undefined || raw === "" || raw === "aes") return "aes";
  if (raw === "sm") return "sm";
  throw new Error(`TALLY_VAULT_SUITE must be aes or sm, got "${raw}"`);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const limits: Limits = {
    ...defaultLimits,
    bodyBytesMax: intFromEnv(env, "TALLY_BODY_BYTES_MAX", defaultLimits.bodyBytesMax, 1024, 64 * 1024 * 1024),
    batchBodyBytesMax: intFromEnv(env, "TALLY_BATCH_BODY_BYTES_MAX", defaultLimits.batchBodyBytesMax, 1024, 256 * 1024 * 1024),
    engineQueueTransfersMax: intFromEnv(env, "TALLY_ENGINE_QUEUE_MAX", defaultLimits.engineQueueTransfersMax, 1, 10_000_000),
    sqliteWalBacklogWarnFrames: intFromEnv(env, "TALLY_SQLITE_WAL_BACKLOG_WARN_FRAMES", defaultLimits.sqliteWalBacklogWarnFrames, 1000, 100_000_000),
    channelTimeoutMs: intFromEnv(env, "TALLY_CHANNEL_TIMEOUT_MS", defaultLimits.channelTimeoutMs, 100, 120_000),
    rateLimitKeyPerSecond: intFromEnv(env, "TALLY_RATE_LIMIT_KEY_PER_S", defaultLimits.rateLimitKeyPerSecond, 1, 10_000_000),
    rateLimitKeyBurst: intFromEnv(env, "TALLY_RATE_LIMIT_KEY_BURST", defaultLimits.rateLimitKeyBurst, 1, 100_000_000),
    rateLimitAddressPerSecond: intFromEnv(env, "TALLY_RATE_LIMIT_ADDRESS_PER_S", defaultLimits.rateLimitAddressPerSecond, 1, 10_000_000),
    rateLimitAddressBurst: intFromEnv(env, "TALLY_RATE_LIMIT_ADDRESS_BURST", defaultLimits.rateLimitAddressBurst, 1, 100_000_000),
    blockWindowMs: intFromEnv(env, "TALLY_BLOCK_WINDOW_MS", defaultLimits.blockWindowMs, 1_000, 86_400_000),
    blockAuthFailuresMax: intFromEnv(env, "TALLY_BLOCK_AUTH_FAILURES_MAX", defaultLimits.blockAuthFailuresMax, 1, 10_000_000),
    blockUnknownPathsMax: intFromEnv(env, "TALLY_BLOCK_UNKNOWN_PATHS_MAX", defaultLimits.blockUnknownPathsMax, 1, 10_000_000),
    blockDurationMs: intFromEnv(env, "TALLY_BLOCK_DURATION_MS", defaultLimits.blockDurationMs, 0, 7 * 86_400_000),
    signatureWindowMs: intFromEnv(env, "TALLY_SIGNATURE_WINDOW_MS", defaultLimits.signatureWindowMs, 1_000, 3_600_000),
    apiKeyCacheTtlMs: intFromEnv(env, "TALLY_API_KEY_CACHE_TTL_MS", defaultLimits.apiKeyCacheTtlMs, 0, 60_000),
    vaultReencryptBatchRows: intFromEnv(env, "TALLY_VAULT_REENCRYPT_BATCH_ROWS", defaultLimits.vaultReencryptBatchRows, 1, 10_000),
  };
  return {
    port: intFromEnv(env, "PORT", 8080, 0, 65535),
    host: env.HOST ?? "0.0.0.0",
    databaseUrl: env.TALLY_DATABASE_URL || "sqlite:./data/tally.db",
    adminKey: env.TALLY_ADMIN_KEY || undefined,
    logLevel: env.TALLY_LOG_LEVEL || "info",
    publicUrl: env.TALLY_PUBLIC_URL || undefined,
    vaultKeyFile: env.TALLY_VAULT_KEY_FILE || "./data/vault.key",
    vaultSuite: vaultSuiteFromEnv(env.TALLY_VAULT_SUITE),
    routingFile: env.TALLY_ROUTING_FILE || undefined,
    simulator: (env.TALLY_SIMULATOR ?? "on") !== "off",
    demo: (env.TALLY_DEMO ?? "on") !== "off",
    simulatorLatencyMs: intFromEnv(env, "TALLY_SIMULATOR_LATENCY_MS", 0, 0, 600_000),
    channelSettings: Object.fromEntries(
      Object.entries(env).filter((e): e is [string, string] => /^TALLY_(ALIPAY|WECHAT)_/.test(e[0]) && typeof e[1] === "string"),
    ),
    hstsMaxAgeSeconds: intFromEnv(env, "TALLY_HSTS_MAX_AGE_S", 0, 0, 2 * 365 * 86_400),
    trustProxy: trustProxyFromEnv(env.TALLY_TRUST_PROXY),
    limits,
  };
}

function trustProxyFromEnv(raw: string | undefined): boolean | number | string {
  if (raw === undefined || raw === "" || raw === "off" || raw === "false") return false;
  if (raw === "on" || raw === "true") return true;
  if (/^\d{1,2}$/.test(raw)) return Number(raw);
  if (!/^[0-9a-fA-F.:/, ]+$/.test(raw)) throw new Error(`TALLY_TRUST_PROXY must be off, on, a hop count or addresses/CIDRs, got "${raw}"`);
  return raw;
}
