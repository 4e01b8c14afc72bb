// The machine's own ceilings, measured in the same run as Tally's figures so that each Tally
// figure can be read as a ratio: the bare SQLite transfer (one INSERT and two UPDATEs, batched in
// one transaction), a single-writer PostgreSQL batch with netted account updates, and an HTTP
// JSON echo served by Fastify.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";

const ACCOUNTS = 10_000;

/** Bare SQLite transfers per second at the given batch size, synchronous=FULL, WAL. */
export function sqliteCeiling(batch: number, transfers: number): number {
  const dir = mkdtempSync(join(tmpdir(), "tally-bench-raw-"));
  const db = new BetterSqlite3(join(dir, "raw.db"));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec("create table accounts (id integer primary key, balance integer not null)");
    db.exec("create table transfers (id integer primary key, debit integer not null, credit integer not null, amount integer not null)");
    const insertAccount = db.prepare("insert into accounts values (?, 0)");
    db.transaction(() => { for (let i = 0; i < ACCOUNTS; i++) insertAccount.run(i); })();
    const insert = db.prepare("insert into transfers values (?, ?, ?, ?)");
    const debit = db.prepare("update accounts set balance = balance - ? where id = ?");
    const credit = db.prepare("update accounts set balance = balance + ? where id = ?");
    let id = 0;
    const runBatch = db.transaction((n: number) => {
      for (let i = 0; i < n; i++) {
        const d = (id * 7919) % ACCOUNTS;
        const c = (id * 104729 + 1) % ACCOUNTS;
        insert.run(++id, d, c, 100);
        debit.run(100, d);
        credit.run(100, c);
      }
    });
    const started = performance.now();
    for (let done = 0; done < transfers; done += batch) runBatch(Math.min(batch, transfers - done));
    return transfers / ((performance.now() - started) / 1000);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A single PostgreSQL writer: batches of `batch` transfers, one INSERT (unnest) and one netted UPDATE each. */
export async function postgresCeiling(url: string, batch: number, transfers: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("drop table if exists bench_raw_transfers, bench_raw_accounts");
    await client.query("create table bench_raw_accounts (id bigint primary key, balance bigint not null)");
    await client.query("create table bench_raw_transfers (id bigint primary key, debit bigint not null, credit bigint not null, amount bigint not null)");
    await client.query(`insert into bench_raw_accounts select g, 0 from generate_series(0, ${ACCOUNTS - 1}) g`);
    let id = 0;
    const started = performance.now();
    for (let done = 0; done < transfers; done += batch) {
      const n = Math.min(batch, transfers - done);
      const ids: number[] = [], ds: number[] = [], cs: number[] = [], amounts: number[] = [];
      const net = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        const d = (id * 7919) % ACCOUNTS;
        const c = (id * 104729 + 1) % ACCOUNTS;
        ids.push(++id); ds.push(d); cs.push(c); amounts.push(100);
        net.set(d, (net.get(d) ?? 0) - 100);
        net.set(c, (net.get(c) ?? 0) + 100);
      }
      // Fixed lock order (sorted ids) is what keeps concurrent writers of this shape deadlock-free.
      const keys = [...net.keys()].sort((a, b) => a - b);
      await client.query("begin");
      await client.query("insert into bench_raw_transfers select * from unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])", [ids, ds, cs, amounts]);
      await client.query(
        "update bench_raw_accounts a set balance = a.balance + v.delta from unnest($1::bigint[], $2::bigint[]) v(id, delta) where a.id = v.id",
        [keys, keys.map((k) => net.get(k)!)],
      );
      await client.query("commit");
    }
    const tps = transfers / ((performance.now() - started) / 1000);
    await client.query("drop table if exists bench_raw_transfers, bench_raw_accounts");
    return tps;
  } finally {
    await client.end();
  }
}
