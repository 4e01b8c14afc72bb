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
  /** The first retry of a failed webhook waits this long; each next one twice as long (capped at an hour). */
  readonly webhookRetryBaseMs: number;
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
  readonly limits: Limits;
}

export const defaultLimits: Limits = {
  bodyBytesMax: 1024 * 1024,
  batchBodyBytesMax: 16 * 1024 * 1024,
  batchTransfersMax: 8190,
  engineBatchTransfersMax: 8190,
  engineQueueTransfersMax: 200_000,
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
    channelTimeoutMs: intFromEnv(env, "TALLY_CHANNEL_TIMEOUT_MS", defaultLimits.channelTimeoutMs, 100, 120_000),
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
    limits,
  };
}
