// Growth: does throughput stay flat as the ledger fills, and do point-in-time balance and history
// queries stay logarithmic? The engine fills one SQLite ledger stage by stage; at each size it
// measures a window of transfers and times queries against random accounts and moments.
import { LedgerQueries } from "../src/ledger/queries.ts";
import { BENCH_ACCOUNTS, engineThroughput, openEngine } from "./engine.ts";
import { figure, type Figure } from "./stats.ts";

export interface GrowthPoint {
  readonly size: number;
  readonly tps: number;
  readonly balanceAtUs: Figure;
  readonly historyUs: Figure;
}

const WINDOW = 81_900;

function label(n: number): string {
  return n >= 1_000_000 ? `${n / 1_000_000}m` : `${n / 1000}k`;
}

export async function growth(sizes: number[], onPoint: (p: GrowthPoint, name: string) => void): Promise<void> {
  const bench = await openEngine(null);
  const queries = new LedgerQueries(bench.db);
  const startedUs = BigInt(Date.now()) * 1000n;
  let stored = 0;
  try {
    for (const size of sizes) {
      // Fill to just below the size, then measure a window that ends at it.
      const fill = Math.max(0, size - WINDOW - stored);
      if (fill > 0) {
        await engineThroughput(bench.engine, fill, 8190, false);
        stored += Math.ceil(fill / 8190) * 8190;
      }
      const tps = await engineThroughput(bench.engine, WINDOW, 8190, false);
      stored += WINDOW;
      const nowUs = BigInt(Date.now()) * 1000n;
      const balance: number[] = [];
      const history: number[] = [];
      for (let i = 0; i < 200; i++) {
        const account = await queries.account(`acct-${(i * 7919) % BENCH_ACCOUNTS}`, null);
        if (!account) throw new Error("bench account missing");
        // A random moment between the start of the run and now.
        const atUs = startedUs + ((nowUs - startedUs) * BigInt((i * 104729) % 1000)) / 1000n;
        let t = performance.now();
        await queries.balanceAt(account, atUs);
        balance.push((performance.now() - t) * 1000);
        t = performance.now();
        await queries.history(account, 20, null);
        history.push((performance.now() - t) * 1000);
      }
      onPoint({ size: stored, tps, balanceAtUs: figure(balance), historyUs: figure(history) }, label(size));
    }
  } finally {
    await bench.close();
  }
}
