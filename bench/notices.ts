// Custody notices: entries parsed and matched per second, and peak memory, through Tally's inbox
// (stored raw, parsed, matched to agreements, applied to the ledger). Two documents: the corpus's
// 268-entry camt.053 statement (parsed and reconciled) and a generated camt.054 notice of many
// credits to agreements' virtual accounts (parsed, matched and applied).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTally } from "../src/app.ts";
import { loadConfig, type Config } from "../src/kernel/config.ts";
import { createLogger } from "../src/ops/logger.ts";
import { writeNotice, type BankCredit } from "../src/escrow/demo-bank/formats.ts";
import { parseStatement } from "../src/arrivals/parsers/index.ts";
import { corpusDir } from "../test/support/corpus.ts";

const CORPUS_STATEMENT = "bank-statements/camt053/be-v02-monthly-268-entries.xml";
const AGREEMENTS = 100;

export interface NoticeFigures {
  readonly statement268ParsePerS: number;
  readonly statement268ReconcilePerS: number;
  readonly noticeEntries: number;
  readonly noticeEntriesPerS: number;
  readonly noticePeakHeapMb: number;
  readonly noticePeakRssMb: number;
}

export async function noticeThroughput(entries: number): Promise<NoticeFigures> {
  const dir = mkdtempSync(join(tmpdir(), "tally-bench-notices-"));
  const config: Config = loadConfig({
    TALLY_DATABASE_URL: `sqlite:${join(dir, "tally.db")}`,
    TALLY_VAULT_KEY_FILE: join(dir, "vault.key"),
    TALLY_PUBLIC_URL: "http://bench",
    TALLY_LOG_LEVEL: "silent",
    TALLY_DEMO: "off",
  });
  const tally = await createTally(config, { jobs: false, logger: createLogger("silent") });
  try {
    // The corpus statement: parse alone, then parse + reconcile through Tally.
    const statement = readFileSync(join(corpusDir(), CORPUS_STATEMENT));
    let parsed = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 1000) parsed += parseStatement(statement).statements.reduce((n, s) => n + s.entries.length, 0);
    const statement268ParsePerS = parsed / ((performance.now() - t0) / 1000);
    // Reconciled as a statement of three banks (the first warms up); entries per second of the last.
    const entriesInStatement = parseStatement(statement).statements.reduce((n, s) => n + s.entries.length, 0);
    let statement268ReconcilePerS = 0;
    for (const bank of ["demo-corpus-a", "demo-corpus-b", "demo-corpus-c"]) {
      const t1 = performance.now();
      await tally.reconciliations.receive(bank, statement, "application/xml");
      statement268ReconcilePerS = entriesInStatement / ((performance.now() - t1) / 1000);
    }

    // Agreements with virtual accounts, then one notice crediting them all.
    const accounts: string[] = [];
    for (let i = 0; i < AGREEMENTS; i++) {
      const { agreement } = await tally.agreements.create(null, {
        id: `AG-B${i}`, amountDue: 100_000_000_000n, currency: "CNY", custodyBank: "demo-bench",
        payer: { name: "王小明" }, payee: { name: "李四", bank_account_number: "6222020200112233445" },
      });
      accounts.push(agreement.virtualAccountNumber!);
    }
    await tally.arrivals.putProfile("demo-bench", { format: "camt054" }, "bench");
    const start = BigInt(Date.now()) * 1000n;
    const credits: BankCredit[] = Array.from({ length: entries }, (_, i) => ({
      bankReference: `BENCH${i.toString().padStart(9, "0")}`,
      accountNumber: accounts[i % AGREEMENTS]!,
      amount: 1234n + BigInt(i % 1000),
      currency: "CNY",
      payerName: "王小明",
      payerAccount: "6217000010001234567",
      remittance: `deposit ${i}`,
      bookedAtUs: start + BigInt(i),
    }));
    const body = Buffer.from(writeNotice(credits, "camt054", "yyyy-MM-dd", "BENCHNOTICE"), "utf8");
    credits.length = 0;
    global.gc?.();
    let peakHeap = process.memoryUsage().heapUsed;
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakRss = Math.max(peakRss, m.rss);
    }, 20);
    const t2 = performance.now();
    await tally.arrivals.receive("demo-bench", body, "application/xml");
    await tally.arrivals.idle();
    const seconds = (performance.now() - t2) / 1000;
    clearInterval(sampler);
    const applied = await tally.db.read.selectFrom("custody_entries").select((eb) => eb.fn.countAll<number>().as("n")).where("bank", "=", "demo-bench").where("status", "=", "matched").executeTakeFirstOrThrow();
    if (Number(applied.n) !== entries) throw new Error(`only ${applied.n} of ${entries} entries were matched`);
    return {
      statement268ParsePerS,
      statement268ReconcilePerS,
      noticeEntries: entries,
      noticeEntriesPerS: entries / seconds,
      noticePeakHeapMb: peakHeap / 1048576,
      noticePeakRssMb: peakRss / 1048576,
    };
  } finally {
    await tally.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 10_000);
  console.log(await noticeThroughput(n));
}
