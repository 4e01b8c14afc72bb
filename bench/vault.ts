// The vault's figures: encryptions, decryptions and blind indexes per second for both suites
// (AES-256-GCM + HMAC-SHA256, SM4-GCM + HMAC-SM3), on a payout destination's size of value, and
// blind-index lookups per second through the database (compute the index, find the payout by
// its indexed column among `lookupRows` rows on SQLite). `vaultThroughput()` is for bench/run.ts;
// `npx tsx bench/vault.ts [--quick]` runs it alone.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openDatabase } from "../src/db/database.ts";
import { migrate } from "../src/db/migrations.ts";
import { LocalKeyProvider, MemoryDataKeyStore, SUITE_OF_NAME, Vault, type SuiteName } from "../src/vault/index.ts";

const PURPOSE = "payout.destination";
const INDEX = "bank_account_number";
const SAMPLE = JSON.stringify({ bankAccountNumber: "6222021234567893445", accountName: "张三", bankCode: "ICBC" });

export interface VaultFigures {
  vault_aes_encrypt_per_s: number;
  vault_aes_decrypt_per_s: number;
  vault_aes_blind_index_per_s: number;
  vault_aes_index_lookup_sqlite_per_s: number;
  vault_sm4_encrypt_per_s: number;
  vault_sm4_decrypt_per_s: number;
  vault_sm3_blind_index_per_s: number;
  vault_sm_index_lookup_sqlite_per_s: number;
}

/** Runs `op` for `ms` milliseconds (after a short warm-up); operations per second. */
async function rate(ms: number, op: (i: number) => unknown | Promise<unknown>): Promise<number> {
  for (let i = 0; i < 200; i++) await op(i);
  let n = 0;
  const started = performance.now();
  const deadline = started + ms;
  while (performance.now() < deadline) {
    // Batches of 100 between clock reads, so reading the clock costs nothing measurable.
    for (let k = 0; k < 100; k++) await op(n++);
  }
  return Math.round((n / (performance.now() - started)) * 1000);
}

async function openVault(name: SuiteName): Promise<Vault> {
  return Vault.open({ store: new MemoryDataKeyStore(), provider: new LocalKeyProvider(randomBytes(32)), suite: SUITE_OF_NAME[name], purposes: [PURPOSE], indexes: [INDEX] });
}

const accountOf = (i: number) => `62220200${String(100_000_000 + i)}`;

/** Lookups per second: blind index of a random known account number, then one indexed select. */
async function lookupRate(vault: Vault, rows: number, ms: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "tally-bench-vault-"));
  const db = openDatabase(`sqlite:${join(dir, "bench.db")}`);
  try {
    await migrate(db);
    const sqlite = db.sqlite!;
    const insert = sqlite.prepare(
      "insert into payouts (id, ledger_key, merchant_id, amount, currency, source_account_id, destination, destination_masked, account_number_index, channel, status, request_hash, created_at, updated_at) values (?, ?, null, 100, 'CNY', 'wallet:bench', ?, '{}', ?, 'simulator', 'paid', 'h', 0, 0)",
    );
    sqlite.transaction(() => {
      for (let i = 0; i < rows; i++) insert.run(`po_${i}`, `lk_${i}`, vault.encrypt(PURPOSE, SAMPLE), vault.blindIndex(INDEX, accountOf(i)));
    })();
    const find = sqlite.prepare("select id from payouts where account_number_index = ?");
    return await rate(ms, (i) => {
      const found = find.all(vault.blindIndex(INDEX, accountOf((i * 7919) % rows)));
      if (found.length !== 1) throw new Error("the lookup found no row");
    });
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function vaultThroughput(options: { msPerFigure?: number; lookupRows?: number } = {}): Promise<VaultFigures> {
  const ms = options.msPerFigure ?? 2000;
  const rows = options.lookupRows ?? 100_000;
  const out: Partial<VaultFigures> = {};
  for (const name of ["aes", "sm"] as const) {
    const vault = await openVault(name);
    const sealed = Array.from({ length: 1000 }, () => vault.encrypt(PURPOSE, SAMPLE));
    const encrypt = await rate(ms, () => vault.encrypt(PURPOSE, SAMPLE));
    const decrypt = await rate(ms, (i) => vault.decrypt(PURPOSE, sealed[i % sealed.length]!));
    const index = await rate(ms, (i) => vault.blindIndex(INDEX, accountOf(i)));
    const lookup = await lookupRate(vault, rows, ms);
    if (name === "aes") Object.assign(out, { vault_aes_encrypt_per_s: encrypt, vault_aes_decrypt_per_s: decrypt, vault_aes_blind_index_per_s: index, vault_aes_index_lookup_sqlite_per_s: lookup });
    else Object.assign(out, { vault_sm4_encrypt_per_s: encrypt, vault_sm4_decrypt_per_s: decrypt, vault_sm3_blind_index_per_s: index, vault_sm_index_lookup_sqlite_per_s: lookup });
  }
  return out as VaultFigures;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const quick = process.argv.includes("--quick");
  const figures = await vaultThroughput(quick ? { msPerFigure: 500, lookupRows: 10_000 } : {});
  for (const [name, value] of Object.entries(figures)) console.log(`${name.padEnd(38)} ${value.toLocaleString("en-US").padStart(12)}`);
  console.log(JSON.stringify(figures));
}
