// Two Tally processes on one PostgreSQL database (LEDGER.md invariants 1, 2, 3 and 6 across
// processes): both hammer one flagged account with payments, holds, posts, voids and top-ups.
// The account's limit must hold at every moment, every acknowledged transfer must count exactly
// once, no request may fail with a 5xx (a deadlock or serialization failure would), and ledger
// timestamps must stay unique and strictly increasing across the two writers.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createTestDatabase, type TestDatabase } from "../support/databases.ts";
import { historyOf, startServerProcess, type ProcessResponse, type ServerProcess } from "../support/server-process.ts";
import { mulberry32 } from "../support/random.ts";

const CURRENCY = "CNY";
const FUNDING_MINOR = 10_000n;
const CLIENTS_PER_PROCESS = 16;
const REQUESTS_PER_CLIENT = 110;
const PAGE_SIZE = 100;
const MONITOR_INTERVAL_MS = 20;
const DUPLICATE_PAIRS = 40;
const SEED = Number(process.env.TALLY_TEST_SEED ?? Date.now() % 1_000_000);

interface Acknowledged {
  readonly id: string;
  readonly kind: "pay" | "hold" | "post" | "void" | "topup";
  readonly amountMinor: bigint;
  /** For post and void: the hold and its amount. */
  readonly holdId?: string;
  readonly holdAmountMinor?: bigint;
  readonly timestamp: string | undefined;
  /** Which process acknowledged it: 0 or 1. */
  readonly process: number;
}

class Hammer {
  readonly acknowledged = new Map<string, Acknowledged>();
  readonly statuses = new Map<string, number>();
  readonly unexpected: string[] = [];
  readonly refusedIds = new Set<string>();
  requests = 0;

  count(label: string): void {
    this.statuses.set(label, (this.statuses.get(label) ?? 0) + 1);
  }

  summary(): string {
    return `seed ${SEED}; statuses ${JSON.stringify(Object.fromEntries(this.statuses))}; acknowledged ${this.acknowledged.size}`;
  }
}


interface OpenHold {
  readonly id: string;
  readonly amountMinor: bigint;
}

async function runClient(server: ServerProcess, processIndex: number, clientIndex: number, hammer: Hammer): Promise<void> {
  const rng = mulberry32(SEED * 131 + processIndex * 1000 + clientIndex);
  const int = (min: number, max: number) => min + Math.floor(rng() * (max - min + 1));
  const openHolds: OpenHold[] = [];
  let serial = 0;
  const nextId = (kind: string) => `p${processIndex}c${clientIndex}-${serial++}-${kind}`;

  const send = async (path: string, body: unknown): Promise<ProcessResponse | null> => {
    hammer.requests++;
    try {
      const res = await server.request("POST", path, body);
      hammer.count(String(res.status));
      if (res.status >= 500) hammer.unexpected.push(`${res.status} from process ${processIndex}: ${res.text}`);
      return res;
    } catch (error) {
      hammer.count("connection error");
      hammer.unexpected.push(`connection error on process ${processIndex}: ${(error as Error).message}`);
      return null;
    }
  };
  /** A single transfer: 201 acknowledges it; `refusals` lists the 422 codes it may meet. */
  const single = async (body: Record<string, unknown>, refusals: readonly string[]): Promise<ProcessResponse | null> => {
    const res = await send("/v1/ledger/transfers", body);
    if (res === null) return null;
    if (res.status === 201) return res;
    if (res.status === 422 && refusals.includes(res.body?.error?.code)) {
      hammer.refusedIds.add(String(body.id));
      return null;
    }
    if (res.status < 500) hammer.unexpected.push(`transfer ${String(body.id)}: ${res.status} ${res.text}`);
    return null;
  };
  const acknowledge = (a: Omit<Acknowledged, "process">) => hammer.acknowledged.set(a.id, { ...a, process: processIndex });

  for (let n = 0; n < REQUESTS_PER_CLIENT; n++) {
    const roll = rng();
    if (roll < 0.13) {
      const id = nextId("topup");
      const amount = int(1, 100);
      const res = await single({ id, debit_account_id: "bank", credit_account_id: "hot", amount, currency: CURRENCY }, []);
      if (res) acknowledge({ id, kind: "topup", amountMinor: BigInt(amount), timestamp: res.body.timestamp });
    } else if (roll < 0.25) {
      const id = nextId("hold");
      const amount = int(1, 50);
      const res = await single(
        { id, debit_account_id: "hot", credit_account_id: "sink", amount, currency: CURRENCY, pending: true },
        ["exceeds_credits"],
      );
      if (res) {
        acknowledge({ id, kind: "hold", amountMinor: BigInt(amount), timestamp: res.body.timestamp });
        openHolds.push({ id, amountMinor: BigInt(amount) });
      }
    } else if (roll < 0.35 && openHolds.length > 0) {
      const hold = openHolds.splice(Math.floor(rng() * openHolds.length), 1)[0]!;
      if (rng() < 0.6) {
        const id = nextId("post");
        const amount = int(1, Number(hold.amountMinor));
        // Posting never fails a limit check: no refusal is acceptable.
        const res = await single({ id, post_pending_id: hold.id, amount }, []);
        if (res) acknowledge({ id, kind: "post", amountMinor: BigInt(amount), holdId: hold.id, holdAmountMinor: hold.amountMinor, timestamp: res.body.timestamp });
      } else {
        const id = nextId("void");
        const res = await single({ id, void_pending_id: hold.id }, []);
        if (res) acknowledge({ id, kind: "void", amountMinor: hold.amountMinor, holdId: hold.id, holdAmountMinor: hold.amountMinor, timestamp: res.body.timestamp });
      }
    } else if (roll < 0.45) {
      const transfers = Array.from({ length: int(2, 5) }, () => ({
        id: nextId("pay"),
        debit_account_id: "hot",
        credit_account_id: "sink",
        amount: int(1, 50),
        currency: CURRENCY,
      }));
      const res = await send("/v1/ledger/transfers/batch", { transfers });
      if (res === null) continue;
      if (res.status !== 200 || !Array.isArray(res.body?.results) || res.body.results.length !== transfers.length) {
        if (res.status < 500) hammer.unexpected.push(`batch: ${res.status} ${res.text.slice(0, 300)}`);
        continue;
      }
      res.body.results.forEach((r: { id: string; result: string }, i: number) => {
        const t = transfers[i]!;
        if (r.id !== t.id) hammer.unexpected.push(`batch result ${i} names ${r.id}, not ${t.id}`);
        if (r.result === "created") acknowledge({ id: t.id, kind: "pay", amountMinor: BigInt(t.amount), timestamp: undefined });
        else if (r.result === "exceeds_credits") hammer.refusedIds.add(t.id);
        else hammer.unexpected.push(`batch item ${t.id}: ${r.result}`);
      });
    } else {
      const id = nextId("pay");
      const amount = int(1, 50);
      const res = await single({ id, debit_account_id: "hot", credit_account_id: "sink", amount, currency: CURRENCY }, ["exceeds_credits"]);
      if (res) acknowledge({ id, kind: "pay", amountMinor: BigInt(amount), timestamp: res.body.timestamp });
    }
  }
}

interface Balances {
  debitsPending: bigint;
  debitsPosted: bigint;
  creditsPending: bigint;
  creditsPosted: bigint;
}

function balancesOf(json: any): Balances {
  return {
    debitsPending: BigInt(json.debits_pending),
    debitsPosted: BigInt(json.debits_posted),
    creditsPending: BigInt(json.credits_pending),
    creditsPosted: BigInt(json.credits_posted),
  };
}


function timestampUs(text: string): bigint {
  const m = /^(.*T\d{2}:\d{2}:\d{2})\.(\d{6})Z$/.exec(text);
  assert.ok(m, `timestamp ${text} has microseconds`);
  return BigInt(Date.parse(`${m[1]}Z`)) * 1000n + BigInt(m[2]!);
}

async function account(server: ServerProcess, id: string): Promise<any> {
  const res = await server.request("GET", `/v1/ledger/accounts/${id}`);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

describe("two server processes start at once on a fresh PostgreSQL database", () => {
  let database: TestDatabase;
  const servers: ServerProcess[] = [];
  before(async () => {
    database = await createTestDatabase("postgres", "twostart");
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await database?.dispose();
  });

  test("both migrate the same empty database without error and serve it", async () => {
    const started = await Promise.allSettled([0, 1].map(() => startServerProcess({ databaseUrl: database.url })));
    for (const s of started) if (s.status === "fulfilled") servers.push(s.value);
    assert.deepEqual(started.map((s) => (s.status === "rejected" ? String(s.reason) : "ok")), ["ok", "ok"]);
    const created = await servers[0]!.request("POST", "/v1/ledger/accounts", { id: "a", currency: CURRENCY });
    assert.equal(created.status, 201, created.text);
    const seen = await servers[1]!.request("GET", "/v1/ledger/accounts/a");
    assert.equal(seen.status, 200, seen.text);
  });
});

describe("two server processes hammer one flagged account on PostgreSQL", () => {
  let database: TestDatabase;
  let servers: ServerProcess[] = [];
  const hammer = new Hammer();
  const observedHot: Array<{ available: bigint; debits: bigint; credits: bigint }> = [];

  before(async () => {
    database = await createTestDatabase("postgres", "multiproc");
    // One after the other: the first migrates, the second finds the schema (concurrent start is
    // the suite above).
    servers.push(await startServerProcess({ databaseUrl: database.url }));
    servers.push(await startServerProcess({ databaseUrl: database.url }));
    const [a, b] = servers as [ServerProcess, ServerProcess];
    for (const [server, body] of [
      [a, { id: "bank", currency: CURRENCY, normal_balance: "debit" }],
      [b, { id: "hot", currency: CURRENCY, flags: { debits_must_not_exceed_credits: true } }],
      [a, { id: "sink", currency: CURRENCY }],
    ] as const) {
      const res = await server.request("POST", "/v1/ledger/accounts", body);
      assert.equal(res.status, 201, res.text);
    }
    const funded = await b.request("POST", "/v1/ledger/transfers", {
      id: "fund", debit_account_id: "bank", credit_account_id: "hot", amount: Number(FUNDING_MINOR), currency: CURRENCY,
    });
    assert.equal(funded.status, 201, funded.text);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await database?.dispose();
  });

  test("thousands of concurrent requests through both processes all get a non-5xx answer", async () => {
    let running = true;
    const monitor = (async () => {
      for (let i = 0; running; i++) {
        const body = await account(servers[i % 2]!, "hot");
        observedHot.push({
          available: BigInt(body.available),
          debits: BigInt(body.debits_pending) + BigInt(body.debits_posted),
          credits: BigInt(body.credits_posted),
        });
        await new Promise((resolve) => setTimeout(resolve, MONITOR_INTERVAL_MS));
      }
    })();
    const clients = servers.flatMap((server, p) =>
      Array.from({ length: CLIENTS_PER_PROCESS }, (_, c) => runClient(server, p, c, hammer)),
    );
    await Promise.all(clients);
    running = false;
    await monitor;
    assert.equal(hammer.requests, 2 * CLIENTS_PER_PROCESS * REQUESTS_PER_CLIENT);
    assert.deepEqual(hammer.unexpected.slice(0, 10), [], hammer.summary());
    for (const p of [0, 1]) {
      assert.ok([...hammer.acknowledged.values()].some((a) => a.process === p), `process ${p} acknowledged transfers: ${hammer.summary()}`);
    }
    assert.ok(hammer.refusedIds.size > 0, `the hot account ran dry at some point (exceeds_credits seen): ${hammer.summary()}`);
  });

  test("hot was never overdrawn: not in any observation, not after any transfer, not now", async () => {
    assert.ok(observedHot.length > 0);
    for (const o of observedHot) {
      assert.ok(o.available >= 0n && o.debits <= o.credits, `an observation of hot: ${JSON.stringify(o, (_, v) => (typeof v === "bigint" ? String(v) : v))}`);
    }
    const hot = await account(servers[0]!, "hot");
    assert.ok(BigInt(hot.balance) >= 0n, `balance ${hot.balance}`);
    assert.ok(BigInt(hot.available) >= 0n, `available ${hot.available}`);
    for (const t of await historyOf(servers[1]!, "hot", PAGE_SIZE)) {
      const b = balancesOf(t.balance_after);
      assert.ok(b.debitsPending + b.debitsPosted <= b.creditsPosted, `hot within its limit right after ${t.id}`);
    }
    // The same from the client's side: what was acknowledged as leaving hot never exceeds what came in.
    let debits = 0n;
    let credits = FUNDING_MINOR;
    for (const a of hammer.acknowledged.values()) {
      if (a.kind === "topup") credits += a.amountMinor;
      if (a.kind === "pay" || a.kind === "post") debits += a.amountMinor;
    }
    assert.ok(debits <= credits, `acknowledged debits ${debits} ≤ credits ${credits}`);
  });

  test("every acknowledged transfer counts exactly once in the final balances", async () => {
    const model = {
      hot: { debitsPending: 0n, debitsPosted: 0n, creditsPending: 0n, creditsPosted: FUNDING_MINOR },
      sink: { debitsPending: 0n, debitsPosted: 0n, creditsPending: 0n, creditsPosted: 0n },
      bank: { debitsPending: 0n, debitsPosted: FUNDING_MINOR, creditsPending: 0n, creditsPosted: 0n },
    };
    for (const a of hammer.acknowledged.values()) {
      switch (a.kind) {
        case "topup":
          model.bank.debitsPosted += a.amountMinor;
          model.hot.creditsPosted += a.amountMinor;
          break;
        case "pay":
          model.hot.debitsPosted += a.amountMinor;
          model.sink.creditsPosted += a.amountMinor;
          break;
        case "hold":
          model.hot.debitsPending += a.amountMinor;
          model.sink.creditsPending += a.amountMinor;
          break;
        case "post":
          model.hot.debitsPosted += a.amountMinor;
          model.sink.creditsPosted += a.amountMinor;
          model.hot.debitsPending -= a.holdAmountMinor!;
          model.sink.creditsPending -= a.holdAmountMinor!;
          break;
        case "void":
          model.hot.debitsPending -= a.holdAmountMinor!;
          model.sink.creditsPending -= a.holdAmountMinor!;
          break;
      }
    }
    for (const id of ["hot", "sink", "bank"] as const) {
      for (const server of servers) {
        assert.deepEqual(balancesOf(await account(server, id)), model[id], `${id}'s balances equal the acknowledged transfers`);
      }
    }
  });

  test("the ledger holds exactly the acknowledged transfers, each with the timestamp it was acknowledged with", async () => {
    const stored = new Map<string, any>();
    for (const id of ["hot", "sink", "bank"]) {
      for (const t of await historyOf(servers[0]!, id, PAGE_SIZE)) stored.set(t.id, t);
    }
    const expected = new Set([...hammer.acknowledged.keys(), "fund"]);
    const unexpected = [...stored.keys()].filter((id) => !expected.has(id));
    const missing = [...expected].filter((id) => !stored.has(id));
    assert.deepEqual({ unexpected: unexpected.slice(0, 10), missing: missing.slice(0, 10) }, { unexpected: [], missing: [] });
    for (const a of hammer.acknowledged.values()) {
      const t = stored.get(a.id);
      assert.equal(BigInt(t.amount), a.amountMinor, `${a.id}'s amount`);
      if (a.timestamp !== undefined) assert.equal(t.timestamp, a.timestamp, `${a.id}'s timestamp`);
    }
    for (const id of hammer.refusedIds) assert.ok(!stored.has(id), `refused ${id} left no transfer`);
  });

  test("timestamps are unique across both processes and each account's history is strictly ordered", async () => {
    const byId = new Map<string, string>();
    for (const id of ["hot", "sink", "bank"]) {
      const history = await historyOf(servers[1]!, id, PAGE_SIZE);
      let newer: bigint | null = null;
      for (const t of history) {
        const ts = timestampUs(t.timestamp);
        if (newer !== null) assert.ok(ts < newer, `${id}'s history strictly decreases in timestamp at ${t.id}`);
        newer = ts;
        byId.set(t.id, t.timestamp);
      }
    }
    const timestamps = [...byId.values()];
    assert.equal(new Set(timestamps).size, timestamps.length, "no two transfers share a timestamp");
    // The two writers really interleaved: in timestamp order the acknowledging process changes often.
    const ordered = [...hammer.acknowledged.values()]
      .map((a) => ({ process: a.process, ts: timestampUs(byId.get(a.id)!) }))
      .sort((x, y) => (x.ts < y.ts ? -1 : x.ts > y.ts ? 1 : 0));
    let switches = 0;
    for (let i = 1; i < ordered.length; i++) if (ordered[i]!.process !== ordered[i - 1]!.process) switches++;
    assert.ok(switches >= 10, `the processes' transfers interleave (${switches} switches)`);
  });

  test("the same transfer sent to both processes at once takes effect once", async () => {
    const before = balancesOf(await account(servers[0]!, "hot"));
    let expectedCredits = 0n;
    const pairs = await Promise.all(
      Array.from({ length: DUPLICATE_PAIRS }, async (_, i) => {
        const amount = 1 + (i % 7);
        expectedCredits += BigInt(amount);
        const body = { id: `dup-${i}`, debit_account_id: "bank", credit_account_id: "hot", amount, currency: CURRENCY };
        return Promise.all(servers.map((s) => s.request("POST", "/v1/ledger/transfers", body)));
      }),
    );
    for (const [i, pair] of pairs.entries()) {
      assert.deepEqual(pair.map((r) => r.status).sort(), [200, 201], `dup-${i}: ${pair.map((r) => r.text).join(" | ")}`);
      assert.equal(pair[0]!.body.timestamp, pair[1]!.body.timestamp, `dup-${i} answers the one stored transfer`);
    }
    const afterwards = balancesOf(await account(servers[1]!, "hot"));
    assert.equal(afterwards.creditsPosted - before.creditsPosted, expectedCredits);
  });

  test("the same account created through both processes at once is created once", async () => {
    const pairs = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        Promise.all(servers.map((s) => s.request("POST", "/v1/ledger/accounts", { id: `twin-${i}`, currency: CURRENCY, owner: "twins" }))),
      ),
    );
    for (const [i, pair] of pairs.entries()) {
      assert.deepEqual(pair.map((r) => r.status).sort(), [200, 201], `twin-${i}: ${pair.map((r) => r.text).join(" | ")}`);
      assert.equal(pair[0]!.body.created_at, pair[1]!.body.created_at);
    }
  });
});
