// `npm run bench` — Tally's throughput beside this machine's own ceilings, measured in the same
// run. Each Tally figure is printed as a ratio of its ceiling (absolute numbers vary between
// machines; ratios travel). `--quick` finishes within about a minute. The last line is one JSON
// object with every figure, for scripts that compare runs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { freshPostgresDatabase, postgresServerUrl } from "../test/support/postgres.ts";
import { postgresCeiling, sqliteCeiling } from "./ceilings.ts";
import { BENCH_ACCOUNTS, engineThroughput, openEngine } from "./engine.ts";
import { growth } from "./growth.ts";
import { multiProcessPostgres } from "./pg-multi.ts";
import { paymentsThroughput, setUpMerchant } from "./payments.ts";
import { noticeThroughput } from "./notices.ts";
import { vaultThroughput } from "./vault.ts";
import { startProcess, type ServerProcess } from "./server.ts";
import { NODE_FLAGS } from "../src/cli/node-flags.ts";
import { closedLoop } from "./closed-loop.ts";
import { load as leanLoad, type LoadResult } from "./load.ts";
import { figure, fmt, repeat, type Figure } from "./stats.ts";
import { cpuSplit, mainThreadSchedule, threadTimes } from "./threads.ts";

const quick = process.argv.includes("--quick");
const skipPostgres = process.argv.includes("--no-postgres");
// `--only=http,growth`: run only these sections (sqlite, postgres, http, payments, notices, vault,
// growth), each with the ceilings it is compared with.
const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",") ?? null;
const wants = (section: string): boolean => only === null || only.includes(section);
const reps = quick ? 1 : 3;
const engineTransfers = quick ? 40_000 : 163_800;
const httpSeconds = quick ? 2 : 10;
// Servers are loaded this long before they are measured: the JIT was still compiling Tally's
// request path after a few seconds (its compiler threads used 15-40 µs per request at 5 s of load
// and 8 µs past 15 s), and the echo server gets the same time.
const httpWarmUpSeconds = quick ? 1 : 5;
const ADMIN_KEY = "bench-admin-key";

const results: Record<string, number | null> = {};
const rows: Array<[string, Figure | null, string | null]> = [];

function record(name: string, f: Figure | null, ceiling: string | null = null): void {
  results[name] = f ? Math.round(f.median * 100) / 100 : null;
  rows.push([name, f, ceiling]);
  const ratio = f && ceiling && results[ceiling] ? ` = ${(f.median / results[ceiling]!).toFixed(2)} × ${ceiling}` : "";
  console.log(`${name.padEnd(36)} ${f ? fmt(f.median).padStart(12) : "n/a".padStart(12)}  ${f ? `(${fmt(f.min)}–${fmt(f.max)})` : ""}${ratio}`);
}

async function pgUrl(): Promise<{ url: string; drop(): Promise<void> } | null> {
  if (skipPostgres) return null;
  try {
    await Promise.race([postgresServerUrl(), new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 60_000))]);
    return await freshPostgresDatabase("bench");
  } catch (error) {
    console.log(`PostgreSQL not reachable (${(error as Error).message}): PostgreSQL figures skipped`);
    return null;
  }
}

let idCounter = 0;
function transferBody(): string {
  const n = idCounter++;
  return `{"id":"h${process.pid}-${String(n).padStart(12, "0")}","debit_account_id":"a${(n * 104729 + 13) % 1000}","credit_account_id":"a${(n * 7919) % 1000}","amount":100,"currency":"CNY"}`;
}

/** autocannon, as the HTTP figures were measured until session 9 (and payments still are). */
async function load(url: string, path: string, connections: number, seconds: number, body: () => string, headers: Record<string, string> = {}) {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [{ method: "POST", path, headers: { "content-type": "application/json", ...headers }, setupRequest: (req: any) => ({ ...req, body: body() }) }],
  });
  return result;
}

/**
 * The echo ceiling and HTTP single are measured with the lean load generator (bench/load.ts, from
 * session 10): autocannon took as much CPU per request as the echo server it loaded, on the same
 * two cores, so its figures measured the two programs together.
 */
const HTTP_CONNECTIONS = 64;

async function leanRun(url: string, path: string, seconds: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  const r = await leanLoad({ url, path, connections: HTTP_CONNECTIONS, seconds, body: transferBody, headers });
  if (r.errors > 0 || r.non2xx > 0) throw new Error(`${path}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return r;
}

const echoLoad = (url: string, seconds: number) => leanRun(url, "/echo", seconds);

async function main(): Promise<void> {
  console.log(`Tally benchmark${quick ? " (quick)" : ""} — node ${process.version}, ${new Date().toISOString()}`);
  console.log("figure                                median       (min–max over runs)   ratio\n");

  // Ceilings.
  if (wants("sqlite")) {
    record("ceiling_sqlite_tps", await repeat(reps, async () => sqliteCeiling(8190, engineTransfers)));
    record("ceiling_sqlite_b1_tps", figure([sqliteCeiling(1, quick ? 2_000 : 5_000)]));
  }
  const pg = wants("postgres") ? await pgUrl() : null;
  if (pg) record("ceiling_pg_batch_tps", await repeat(reps, () => postgresCeiling(pg.url, 1000, quick ? 20_000 : 100_000)));
  else if (wants("postgres")) record("ceiling_pg_batch_tps", null);

  if (wants("http") || wants("payments")) {
    const echo = await startProcess("bench/echo-server.ts", [], {}, null);
    try {
      await echoLoad(echo.url, httpWarmUpSeconds); // warm-up
      record("ceiling_http_echo_rps", await repeat(reps, async () => (await echoLoad(echo.url, httpSeconds)).rps));
    } finally {
      await echo.stop();
    }
  }

  if (wants("sqlite")) await sqliteSection();
  if (wants("postgres")) await postgresSection(pg);
  if (wants("http")) await httpSection();
  if (wants("payments")) await paymentsSection();
  if (wants("notices")) await noticesSection();
  if (wants("vault")) await vaultSection();
  if (wants("growth")) await growthSection();

  console.log(`\n(${BENCH_ACCOUNTS.toLocaleString("en-US")} accounts in-process; 1,000 over HTTP; engine requests of 8190 unless named b100/b1)`);
  console.log(JSON.stringify({ bench: "tally", quick, node: process.version, ...results }));
}

/** The engine in-process on SQLite. */
async function sqliteSection(): Promise<void> {
  const sqlite = await openEngine(null);
  try {
    // Warm-up: as many transfers as a measured run (four requests of 8190 until session 14). A
    // process's first run fills the writer's 64 MB page cache and grows both threads' heaps, a
    // page fault at a time; where a fault cost 14 µs (session 14) a first run was 10-20 % slower
    // than the next, and the first of the three measured runs paid for it.
    await engineThroughput(sqlite.engine, engineTransfers, 8190, false);
    // Each run beside a ceiling measured just before it: this machine's speed drifts over minutes
    // (seen here: the engine at 62 k early in a run and 94–108 k in the growth stages at its end),
    // and a ratio of figures taken far apart measures the drift as much as the engine.
    // CPU per transfer of each thread is taken too (Linux): the engine's figure moves less than
    // the bare ceiling's when the machine speeds up, and this shows which thread's time stays.
    const paired = async (hot: boolean) => {
      const tps: number[] = [];
      const ratios: number[] = [];
      const cpu = { ceiling: [] as number[], main: [] as number[], writer: [] as number[], rest: [] as number[] };
      for (let r = 0; r < reps; r++) {
        const t0 = threadTimes();
        const ceiling = sqliteCeiling(8190, engineTransfers);
        const t1 = threadTimes();
        const t = await engineThroughput(sqlite.engine, engineTransfers, 8190, hot);
        const t2 = threadTimes();
        tps.push(t);
        ratios.push(t / ceiling);
        const bare = cpuSplit(t0, t1, engineTransfers);
        const engine = cpuSplit(t1, t2, engineTransfers);
        if (bare && engine) {
          cpu.ceiling.push(bare.main + bare.busiestOther + bare.rest);
          cpu.main.push(engine.main);
          cpu.writer.push(engine.busiestOther);
          cpu.rest.push(engine.rest);
        }
      }
      return { tps: figure(tps), ratio: figure(ratios), cpu };
    };
    const uniform = await paired(false);
    record("engine_sqlite_tps", uniform.tps, "ceiling_sqlite_tps");
    record("engine_sqlite_paired_ratio", uniform.ratio);
    record("ceiling_sqlite_cpu_us", cpuFigure(uniform.cpu.ceiling));
    record("engine_sqlite_cpu_main_us", cpuFigure(uniform.cpu.main));
    record("engine_sqlite_cpu_writer_us", cpuFigure(uniform.cpu.writer));
    record("engine_sqlite_cpu_other_us", cpuFigure(uniform.cpu.rest));
    const hot = await paired(true);
    record("engine_sqlite_hot_tps", hot.tps, "ceiling_sqlite_tps");
    record("engine_sqlite_hot_paired_ratio", hot.ratio);
    record("engine_sqlite_b100_tps", await repeat(reps, () => engineThroughput(sqlite.engine, engineTransfers, 100, false)), "ceiling_sqlite_tps");
    record("engine_sqlite_b1_tps", await repeat(reps, () => engineThroughput(sqlite.engine, engineTransfers / 4, 1, false)), "ceiling_sqlite_tps");
  } finally {
    await sqlite.close();
  }

}

/** The engine in-process on PostgreSQL, in one process and in two. */
async function postgresSection(pg: { url: string; drop(): Promise<void> } | null): Promise<void> {
  if (pg) {
    const postgres = await openEngine(pg.url);
    try {
      await engineThroughput(postgres.engine, 10_000, 1000, false);
      record("engine_pg_tps", await repeat(reps, () => engineThroughput(postgres.engine, quick ? 20_000 : 100_000, 1000, false)), "ceiling_pg_batch_tps");
      record("engine_pg_hot_tps", await repeat(reps, () => engineThroughput(postgres.engine, quick ? 20_000 : 100_000, 1000, true)), "ceiling_pg_batch_tps");
    } finally {
      await postgres.close();
    }
    // Two Tally processes on the same database, at once (one writer at a time per ledger), each
    // as long and as warm as a single-process run (until session 7: 50 000 each, after 5 000).
    const each = quick ? 10_000 : 100_000;
    const warmUp = quick ? 10_000 : 50_000;
    record("engine_pg_2proc_tps", await repeat(reps, () => multiProcessPostgres(pg.url, 2, each, false, warmUp)), "ceiling_pg_batch_tps");
    record("engine_pg_2proc_hot_tps", await repeat(reps, () => multiProcessPostgres(pg.url, 2, each, true, warmUp)), "ceiling_pg_batch_tps");
    await pg.drop();
  } else {
    for (const name of ["engine_pg_tps", "engine_pg_hot_tps", "engine_pg_2proc_tps", "engine_pg_2proc_hot_tps"]) record(name, null);
  }

}

/** A CPU figure over the runs that had one (none where /proc is not there). */
function cpuFigure(runs: number[]): Figure | null {
  return runs.length > 0 ? figure(runs) : null;
}

function pidOf(server: ServerProcess): number {
  if (server.child.pid === undefined) throw new Error("the server process has no pid");
  return server.child.pid;
}

/** A Tally server on a new SQLite file, with the 1,000 accounts HTTP transfers move money between. */
async function startTally(): Promise<{ server: ServerProcess; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "tally-bench-http-"));
  let server: ServerProcess;
  try {
    server = await startProcess(
      "src/cli/main.ts",
      ["serve"],
      { TALLY_DATABASE_URL: `sqlite:${join(dir, "tally.db")}`, TALLY_ADMIN_KEY: ADMIN_KEY, TALLY_LOG_LEVEL: "warn" },
      "/healthz",
      [...NODE_FLAGS],
    );
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const stop = async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 1000; i++) {
      const res = await fetch(`${server.url}/v1/ledger/accounts`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ id: `a${i}`, currency: "CNY" }),
      });
      if (res.status !== 201) throw new Error(`account setup failed: ${res.status} ${await res.text()}`);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { server, stop };
}

/**
 * Over HTTP: one Tally process on SQLite, 64 connections. Each round of HTTP single loads a
 * process of its own (started, given its accounts and warmed up first): two processes of the same
 * code, started one after the other, ran 0.35 × and 0.46 × the echo round after round (session 12).
 * The cause was V8's allocation-site pretenuring, which the tally command turns off since session 13
 * (src/cli/v8-flags.ts); a median over processes still keeps one process from setting the figure.
 */
async function httpSection(): Promise<void> {
  const auth = { authorization: `Bearer ${ADMIN_KEY}` };
  let tally = await startTally();
  try {
    // Each run right after an echo run of its own, as the SQLite engine is paired with its
    // ceiling: this machine's speed drifts over minutes, and the echo ceiling above was measured
    // minutes before.
    const echo = await startProcess("bench/echo-server.ts", [], {}, null);
    const echoPid = pidOf(echo);
    const single: number[] = [];
    const p99: number[] = [];
    const echoP99: number[] = [];
    // The echo runs paired with Tally's: this machine's speed moved within a run, and the echo at
    // the start of the run (the ceiling) can be a different machine from the one the pairs ran on.
    const pairedEcho: number[] = [];
    const ratios: number[] = [];
    // The same pair with autocannon, the load generator of sessions 1-9, for comparison with them.
    const acRatios: number[] = [];
    const acP99: number[] = [];
    // CPU per request of each server's threads and of the load generator (this process, which
    // shares the machine's cores with the server): where the two cores go (from session 9).
    const cpu = { echo: [] as number[], echoClient: [] as number[], main: [] as number[], writer: [] as number[], rest: [] as number[], client: [] as number[] };
    // Each server's main thread: the share of the run it was on a core, and waiting for one
    // (from session 12: Tally's main thread sleeps part of the time, waiting on commits).
    const busy = { echo: [] as number[], main: [] as number[], mainWaiting: [] as number[] };
    const scheduled = async <T>(pid: number, into: number[], waitingInto: number[] | null, run: () => Promise<T>): Promise<T> => {
      const before = mainThreadSchedule(pid);
      const started = performance.now();
      const result = await run();
      const wallNs = (performance.now() - started) * 1e6;
      const after = mainThreadSchedule(pid);
      if (before && after) {
        into.push((100 * (after.runningNs - before.runningNs)) / wallNs);
        waitingInto?.push((100 * (after.waitingNs - before.waitingNs)) / wallNs);
      }
      return result;
    };
    const clientUs = (since: NodeJS.CpuUsage, requests: number) => {
      const used = process.cpuUsage(since);
      return (used.user + used.system) / requests;
    };
    try {
      await echoLoad(echo.url, httpWarmUpSeconds); // warm-up
      for (let r = 0; r < reps; r++) {
        if (r > 0) {
          await tally.stop();
          tally = await startTally();
        }
        await leanRun(tally.server.url, "/v1/ledger/transfers", httpWarmUpSeconds, auth); // warm-up
        const tallyPid = pidOf(tally.server);
        const e0 = threadTimes(echoPid);
        const ec0 = process.cpuUsage();
        const echoRun = await scheduled(echoPid, busy.echo, null, () => echoLoad(echo.url, httpSeconds));
        const echoClient = clientUs(ec0, echoRun.requests);
        const echoSplit = cpuSplit(e0, threadTimes(echoPid), echoRun.requests, echoPid);
        const t0 = threadTimes(tallyPid);
        const c0 = process.cpuUsage();
        const res = await scheduled(tallyPid, busy.main, busy.mainWaiting, () => leanRun(tally.server.url, "/v1/ledger/transfers", httpSeconds, auth));
        const client = clientUs(c0, res.requests);
        const split = cpuSplit(t0, threadTimes(tallyPid), res.requests, tallyPid);
        single.push(res.rps);
        p99.push(res.latencyMs.p99);
        echoP99.push(echoRun.latencyMs.p99);
        pairedEcho.push(echoRun.rps);
        ratios.push(res.rps / echoRun.rps);
        if (echoSplit && split) {
          cpu.echo.push(echoSplit.main + echoSplit.busiestOther + echoSplit.rest);
          cpu.echoClient.push(echoClient);
          cpu.main.push(split.main);
          cpu.writer.push(split.busiestOther);
          cpu.rest.push(split.rest);
          cpu.client.push(client);
        }
        if (quick) continue; // the comparison with earlier sessions is for full runs
        const acEcho = await load(echo.url, "/echo", HTTP_CONNECTIONS, httpSeconds, transferBody);
        const acTally = await load(tally.server.url, "/v1/ledger/transfers", HTTP_CONNECTIONS, httpSeconds, transferBody, auth);
        if (acTally.non2xx > 0 || acTally.errors > 0) throw new Error(`HTTP single (autocannon): ${acTally.non2xx} non-2xx, ${acTally.errors} errors`);
        acRatios.push(acTally.requests.average / acEcho.requests.average);
        acP99.push(acTally.latency.p99);
      }
    } finally {
      await echo.stop();
    }
    record("http_single_tps", figure(single), "ceiling_http_echo_rps");
    record("http_single_paired_ratio", figure(ratios));
    record("http_single_p99_ms", figure(p99));
    record("ceiling_http_echo_p99_ms", figure(echoP99));
    record("http_single_paired_echo_rps", figure(pairedEcho));
    if (!quick) {
      record("http_single_autocannon_paired_ratio", figure(acRatios));
      record("http_single_autocannon_p99_ms", figure(acP99));
    }
    record("ceiling_http_echo_cpu_us", cpuFigure(cpu.echo));
    record("ceiling_http_echo_client_cpu_us", cpuFigure(cpu.echoClient));
    record("http_single_cpu_main_us", cpuFigure(cpu.main));
    record("http_single_cpu_writer_us", cpuFigure(cpu.writer));
    record("http_single_cpu_other_us", cpuFigure(cpu.rest));
    record("http_single_client_cpu_us", cpuFigure(cpu.client));
    record("ceiling_http_echo_main_busy_pct", cpuFigure(busy.echo));
    record("http_single_main_busy_pct", cpuFigure(busy.main));
    record("http_single_main_waiting_pct", cpuFigure(busy.mainWaiting));
    // The batch endpoint at its limit (8190 transfers per request, as the engine's own figures
    // and TigerBeetle's batches), and at 2000, the size earlier runs used.
    const batchUrl = `${tally.server.url}/v1/ledger/transfers/batch`;
    const batchRate = async (batchSize: number): Promise<Figure> => {
      // The body is made once with a mark where each id's request part goes, and each request
      // fills it in with one replaceAll: the load generator shares the machine's two cores with
      // the server, and writing 8190 transfers one by one took it about 2 µs per transfer.
      const template = `{"transfers":[${Array.from({ length: batchSize }, (_, i) => transferBody().replace(/"id":"[^"]*"/, `"id":"\u0001-${i}"`)).join(",")}]}`;
      let request = 0;
      const batchBody = () => template.replaceAll("\u0001", `b${process.pid}-${batchSize}-${request++}`);
      await closedLoop(batchUrl, 4, httpWarmUpSeconds, batchBody, auth); // warm-up
      const rates: number[] = [];
      for (let r = 0; r < reps; r++) {
        const res = await closedLoop(batchUrl, 4, httpSeconds, batchBody, auth);
        if (res.non2xx > 0) throw new Error(`HTTP batch: ${res.non2xx} non-2xx`);
        rates.push((res.requests * batchSize) / res.seconds);
      }
      return figure(rates);
    };
    record("http_batch_tps", await batchRate(8190));
    // A secondary figure, for full runs: `--quick` keeps within about a minute.
    if (!quick) record("http_batch_2000_tps", await batchRate(2000));
  } finally {
    await tally.stop();
  }

}

/** Payments over HTTP with the simulator channel: create + pay, 32 clients at once. */
async function paymentsSection(): Promise<void> {
  const payDir = mkdtempSync(join(tmpdir(), "tally-bench-pay-"));
  const payServer = await startProcess(
    "src/cli/main.ts",
    ["serve"],
    { TALLY_DATABASE_URL: `sqlite:${join(payDir, "tally.db")}`, TALLY_ADMIN_KEY: ADMIN_KEY, TALLY_LOG_LEVEL: "warn", TALLY_DEMO: "off", TALLY_VAULT_KEY_FILE: join(payDir, "vault.key") },
    "/healthz",
    [...NODE_FLAGS],
  );
  try {
    const auth = { authorization: `Bearer ${ADMIN_KEY}` };
    await setUpMerchant(payServer.url, auth);
    await paymentsThroughput(payServer.url, auth, 1, 32); // warm-up
    const rates: number[] = [];
    const p99s: number[] = [];
    for (let r = 0; r < reps; r++) {
      const res = await paymentsThroughput(payServer.url, auth, httpSeconds, 32);
      rates.push(res.paymentsPerSecond);
      p99s.push(res.p99Ms);
    }
    record("http_payments_per_s", figure(rates), "ceiling_http_echo_rps");
    record("http_payments_p99_ms", figure(p99s));
  } finally {
    await payServer.stop();
    rmSync(payDir, { recursive: true, force: true });
  }

}

/** Custody notices: parsed and matched per second, and the peak memory of the large notice. */
async function noticesSection(): Promise<void> {
  const notices = await noticeThroughput(quick ? 10_000 : 100_000);
  record("notices_camt053_268_parse_entries_per_s", figure([notices.statement268ParsePerS]));
  record("notices_camt053_268_reconcile_entries_per_s", figure([notices.statement268ReconcilePerS]));
  record(`notices_camt054_${notices.noticeEntries / 1000}k_entries_per_s`, figure([notices.noticeEntriesPerS]));
  record(`notices_camt054_${notices.noticeEntries / 1000}k_peak_heap_mb`, figure([notices.noticePeakHeapMb]));
  record(`notices_camt054_${notices.noticeEntries / 1000}k_peak_rss_mb`, figure([notices.noticePeakRssMb]));

}

/** The vault: encrypt, decrypt and blind indexes per second, both suites, and lookups by index. */
async function vaultSection(): Promise<void> {
  const vault = await vaultThroughput({ msPerFigure: quick ? 500 : 2000, lookupRows: quick ? 20_000 : 100_000 });
  for (const [name, value] of Object.entries(vault)) record(name, figure([value as number]));

}

/** Growth: throughput and query latency as the ledger fills (SQLite, 10 000 accounts). */
async function growthSection(): Promise<void> {
  const growthMax = Number(process.env.TALLY_BENCH_GROWTH_MAX ?? (quick ? 100_000 : 1_000_000));
  const sizes = [10_000, 100_000, 1_000_000, 10_000_000].filter((n) => n <= growthMax);
  console.log(`\ngrowth (stored transfers → engine tps over the last 81,900; median query µs):`);
  await growth(sizes, (p, name) => {
    results[`growth_tps_${name}`] = Math.round(p.tps);
    results[`balance_at_us_${name}`] = Math.round(p.balanceAtUs.median);
    results[`history_page_us_${name}`] = Math.round(p.historyUs.median);
    console.log(
      `  ${p.size.toLocaleString("en-US").padStart(11)} stored: ${fmt(p.tps).padStart(8)} tps   balance?at= ${fmt(p.balanceAtUs.median)} µs (max ${fmt(p.balanceAtUs.max)})   history page ${fmt(p.historyUs.median)} µs (max ${fmt(p.historyUs.max)})`,
    );
  });
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
