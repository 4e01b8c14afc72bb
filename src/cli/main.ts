// The `tally` command: serve, migrate, keys, vault, audit.
import "./v8-flags.ts"; // first: before the modules below run (see there)
import { missingNodeFlags } from "./node-flags.ts";
import { parseArgs } from "node:util";
import { createTally } from "../app.ts";
import { openDatabase, redactUrl } from "../db/database.ts";
import { migrate } from "../db/migrations.ts";
import { ApiKeyStore, SCOPES } from "../http/api-keys.ts";
import { loadConfig } from "../kernel/config.ts";
import { seedDemo } from "../payments/demo.ts";
import { sealClearNotificationBodies } from "../payments/index.ts";
import { AuditLog, Reencryptor, coverageReport, formatCoverage, openVault, registeredPurposes, type Vault } from "../vault/index.ts";

const USAGE = `Usage: tally <command>

  serve                         start the API (PORT, TALLY_DATABASE_URL, TALLY_ADMIN_KEY)
  migrate                       create or update the database schema
  keys create --scopes a,b      create an API key (shown once)
      [--merchant ID] [--name TEXT] [--expires-in-days N]
      [--require-signature]     only HMAC-signed requests are accepted (docs/security.md)
  keys revoke KEY_ID            revoke an API key
  keys rotate-data-key          create a new vault data-key version (new values use it;
      [--purpose P]             \`vault reencrypt\` or the server's job moves old rows onto it)
  vault reencrypt               re-encrypt rows still under older data-key versions, in
      [--batch-rows N] [--pause-ms N]   batches; resumes where a killed run stopped
  vault coverage [--min PCT] [--json]   share of sensitive rows held encrypted; exits 1 below --min
  audit verify                  check the reveal audit log's hash chain

Scopes: ${SCOPES.join(", ")}, * (all)`;

async function serve(): Promise<void> {
  const config = loadConfig();
  const tally = await createTally(config);
  const url = await tally.listen();
  const missing = missingNodeFlags();
  if (missing.length > 0) {
    tally.logger.warn({ missing }, "started without Tally's Node.js flags: large ledger batches run slower (npm start and bin/tally.mjs set them; docs/benchmarks.md)");
  }
  if (config.demo && tally.channels.has("simulator")) {
    const cashier = await seedDemo(tally.payments);
    if (cashier) console.log(`\nDemo: a payment of ¥2,500.00 is waiting. Open the cashier and pay it with the simulator:\n  ${cashier}\n`);
  }
  if (!config.adminKey) {
    const existing = await tally.keys.count();
    console.log(
      [
        "",
        `Tally is running at ${url} on ${redactUrl(config.databaseUrl)}.`,
        existing === 0 ? "No API key exists yet. To get one, either:" : "TALLY_ADMIN_KEY is not set. To call the API, either:",
        "  - restart with an admin key:   TALLY_ADMIN_KEY=$(openssl rand -hex 24) npm start",
        "  - or create a scoped key:      npm run tally -- keys create --scopes ledger:read,ledger:write",
        `Then: curl -H "Authorization: Bearer <key>" ${url}/v1/ledger/accounts/...   (API docs: ${url}/docs)`,
        "",
      ].join("\n"),
    );
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    tally.logger.info({ signal }, "shutting down");
    const force = setTimeout(() => process.exit(1), config.limits.shutdownTimeoutMs);
    force.unref();
    tally.close().then(
      () => process.exit(0),
      (err) => {
        tally.logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

async function withDatabase<T>(work: (db: ReturnType<typeof openDatabase>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = openDatabase(config.databaseUrl);
  try {
    await migrate(db);
    return await work(db);
  } finally {
    await db.close();
  }
}

async function withVault<T>(work: (db: ReturnType<typeof openDatabase>, vault: Vault) => Promise<T>): Promise<T> {
  const config = loadConfig();
  return withDatabase(async (db) => work(db, await openVault(db, { keyFile: config.vaultKeyFile, suite: config.vaultSuite })));
}

const nowUs = () => BigInt(Date.now()) * 1000n;

async function vaultCommand(sub: string | undefined, rest: string[]): Promise<number> {
  if (sub === "reencrypt") {
    const { values } = parseArgs({ args: rest, options: { "batch-rows": { type: "string" }, "pause-ms": { type: "string" } } });
    const batchRows = values["batch-rows"] ?? String(loadConfig().limits.vaultReencryptBatchRows);
    const pauseMs = values["pause-ms"] ?? "0";
    if (!/^[1-9]\d{0,4}$/.test(batchRows) || !/^\d{1,6}$/.test(pauseMs)) {
      console.error("--batch-rows takes 1-99999 and --pause-ms 0-999999");
      return 2;
    }
    const batches = await withVault((db, vault) =>
      new Reencryptor(db, vault, nowUs).run({
        batchRows: Number(batchRows),
        pauseMs: Number(pauseMs),
        onBatch: (b) => console.log(`${b.column} → v${b.targetVersion}: read ${b.rowsRead}, re-encrypted ${b.rowsChanged}, checkpoint ${b.lastKey ?? "-"}${b.finished ? " (done)" : ""}`),
      }),
    );
    console.log(batches === 0 ? "every sensitive column is on its newest data key" : `finished after ${batches} batches`);
    // Notification bodies stored in clear before they were sealed (migration 0011).
    const sealed = await withVault((db, vault) => sealClearNotificationBodies(db, vault, { batchRows: Number(batchRows), pauseMs: Number(pauseMs) }));
    if (sealed > 0) console.log(`sealed ${sealed} notification bodies kept in clear`);
    return 0;
  }
  if (sub === "coverage") {
    const { values } = parseArgs({ args: rest, options: { min: { type: "string" }, json: { type: "boolean" } } });
    if (values.min !== undefined && !/^\d{1,3}(\.\d+)?$/.test(values.min)) {
      console.error("--min takes a percentage, e.g. --min 100");
      return 2;
    }
    const report = await withVault((db, vault) => coverageReport(db, vault));
    console.log(values.json ? JSON.stringify(report, null, 2) : formatCoverage(report));
    if (values.min !== undefined && report.overall.coverage_percent < Number(values.min)) {
      console.error(`coverage ${report.overall.coverage_percent}% is below ${values.min}%`);
      return 1;
    }
    return 0;
  }
  console.error(USAGE);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  switch (command) {
    case "serve":
      await serve();
      return -1; // keep running
    case "migrate": {
      const db = openDatabase(loadConfig().databaseUrl);
      const applied = await migrate(db).finally(() => db.close());
      console.log(applied.length ? `applied: ${applied.join(", ")}` : "the schema is up to date");
      return 0;
    }
    case "keys": {
      if (sub === "create") {
        const { values } = parseArgs({
          args: rest,
          options: {
            scopes: { type: "string" },
            merchant: { type: "string" },
            name: { type: "string" },
            "expires-in-days": { type: "string" },
            "require-signature": { type: "boolean" },
          },
        });
        if (!values.scopes) {
          console.error("keys create needs --scopes, e.g. --scopes ledger:read,ledger:write");
          return 2;
        }
        const expires = values["expires-in-days"];
        if (expires !== undefined && !/^[1-9]\d{0,4}$/.test(expires)) {
          console.error("--expires-in-days takes a whole number of days");
          return 2;
        }
        const created = await withDatabase((db) =>
          new ApiKeyStore(db, undefined, Date.now).create({
            scopes: values.scopes!.split(",").map((s) => s.trim()).filter(Boolean),
            merchantId: values.merchant ?? null,
            name: values.name ?? null,
            expiresInDays: expires ? Number(expires) : undefined,
            requireSignature: values["require-signature"] ?? false,
          }),
        );
        console.log(`key id:  ${created.id}`);
        console.log(`scopes:  ${created.scopes.join(" ")}${created.merchantId ? `  merchant: ${created.merchantId}` : ""}`);
        if (created.expiresAt) console.log(`expires: ${created.expiresAt.toISOString()}`);
        console.log(`api key: ${created.key}`);
        console.log(`signing secret: ${created.signingSecret}${created.requireSignature ? "  (required: every request must be signed)" : "  (optional: sign requests to opt in)"}`);
        console.log("Store both now: they are shown once; the key is kept only as a hash, the secret only encrypted under the key.");
        return 0;
      }
      if (sub === "rotate-data-key") {
        const { values } = parseArgs({ args: rest, options: { purpose: { type: "string" } } });
        const known = registeredPurposes();
        if (values.purpose !== undefined && !known.includes(values.purpose)) {
          console.error(`unknown purpose "${values.purpose}"; known: ${known.join(", ")}`);
          return 2;
        }
        await withVault(async (_db, vault) => {
          for (const purpose of values.purpose ? [values.purpose] : known) {
            const version = await vault.rotate(purpose);
            console.log(`${purpose}: data key version ${version} created; new values use it, run \`tally vault reencrypt\` (or let the server's job) move old rows`);
          }
        });
        return 0;
      }
      if (sub === "revoke" && rest[0]) {
        const ok = await withDatabase((db) => new ApiKeyStore(db, undefined, Date.now).revoke(rest[0]!));
        console.log(ok ? `revoked ${rest[0]}` : `no key ${rest[0]}`);
        return ok ? 0 : 1;
      }
      console.error(USAGE);
      return 2;
    }
    case "vault":
      return vaultCommand(sub, rest);
    case "audit": {
      if (sub !== "verify") {
        console.error(USAGE);
        return 2;
      }
      const result = await withDatabase((db) => new AuditLog(db, nowUs).verify());
      if (result.ok) {
        console.log(`the audit log's chain holds: ${result.rows} entries${result.head ? `, head ${result.head.position} ${result.head.hash}` : ""}`);
        console.log("(keep the head elsewhere: removing the newest entries shows only against it)");
        return 0;
      }
      console.error(`the audit log's chain is broken at position ${result.firstBroken!.position}: ${result.firstBroken!.problem} (${result.rows} entries before it hold)`);
      return 1;
    }
    default:
      console.error(USAGE);
      return command === undefined || command === "help" || command === "--help" ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error) => {
    console.error(error instanceof Error ? error.message : error);
    if (error instanceof Error && error.cause) console.error("cause:", (error.cause as Error).message ?? error.cause);
    process.exit(1);
  },
);
