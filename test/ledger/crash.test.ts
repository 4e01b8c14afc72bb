// Crash safety and graceful shutdown of the real server process (LEDGER.md invariant 8,
// CONVENTIONS.md "Running"), on SQLite and on PostgreSQL. Concurrent clients load the server with
// single transfers, batches, holds and their posts and voids; the process is then killed with
// SIGKILL, or stopped with SIGTERM, while requests are in flight. A new process on the same
// database must hold every acknowledged transfer, balanced books and per-account balances that
// equal the sum of the account's transfers.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { DIALECTS, createTestDatabase, type TestDatabase } from "../support/databases.ts";
import { historyOf, startServerProcess, type ProcessResponse, type ServerProcess } from "../support/server-process.ts";
import { mulberry32 } from "../support/random.ts";

const CURRENCY = "CNY";
const WALLET_COUNT = 20;
const WALLETS = Array.from({ length: WALLET_COUNT }, (_, i) => `w${String(i).padStart(2, "0")}`);
/** Even wallets may not be overdrawn. */
const FLAGGED = new Set(WALLETS.filter((_, i) => i % 2 === 0));
const ACCOUNT_IDS = ["bank", ...WALLETS];
const CLIENT_COUNT = 24;
const LOAD_MS_MIN = 1_200;
const ACKNOWLEDGED_BEFORE_SIGNAL_MIN = 200;
const LOAD_MS_MAX = 8_000;
const SHUTDOWN_MS_MAX = 10_000;
const AUDIT_CONCURRENCY = 16;
const PAGE_SIZE = 100;
const SEED = Number(process.env.TALLY_TEST_SEED ?? Date.now() % 1_000_000);

interface TransferBody {
  id: string;
  debit_account_id?: string;
  credit_account_id?: string;
  amount?: number;
  currency?: string;
  pending?: boolean;
  post_pending_id?: string;
  void_pending_id?: string;
  linked?: boolean;
}

interface Sent {
  readonly body: TransferBody;
  readonly endpoint: "single" | "batch";
  acknowledged: boolean;
  /** The timestamp a single transfer's 201 carried. */
  timestamp?: string;
}

/** What the stored transfer must look like, derived from what was sent. */
interface ExpectedTransfer {
  readonly debit: string;
  readonly credit: string;
  readonly amountMinor: bigint;
  readonly pending: boolean;
  readonly postPendingId: string | null;
  readonly voidPendingId: string | null;
}

interface RawRequest {
  readonly endpoint: "single" | "batch";
  readonly bodies: readonly TransferBody[];
}

/** Everything the clients sent and heard, shared by the checks after the restart. */
class Workload {
  readonly sent = new Map<string, Sent>();
  readonly requests: RawRequest[] = [];
  /** Every hold sent, acknowledged or not: posts and voids take their accounts from it. */
  readonly holds = new Map<string, TransferBody>();
  readonly statuses = new Map<string, number>();
  readonly unexpected: string[] = [];
  inFlight = 0;
  connectionErrors = 0;
  acknowledged = 0;
  signalled = false;

  count(label: string): void {
    this.statuses.set(label, (this.statuses.get(label) ?? 0) + 1);
  }

  acknowledge(id: string, timestamp?: string): void {
    const sent = this.sent.get(id)!;
    if (!sent.acknowledged) this.acknowledged++;
    sent.acknowledged = true;
    if (timestamp !== undefined) sent.timestamp = timestamp;
  }

  expected(id: string): ExpectedTransfer {
    const body = this.sent.get(id)!.body;
    const pendingId = body.post_pending_id ?? body.void_pending_id;
    if (pendingId === undefined) {
      return {
        debit: body.debit_account_id!,
        credit: body.credit_account_id!,
        amountMinor: BigInt(body.amount!),
        pending: body.pending === true,
        postPendingId: null,
        voidPendingId: null,
      };
    }
    const hold = this.holds.get(pendingId)!;
    return {
      debit: hold.debit_account_id!,
      credit: hold.credit_account_id!,
      amountMinor: BigInt(body.amount ?? hold.amount!),
      pending: false,
      postPendingId: body.post_pending_id ?? null,
      voidPendingId: body.void_pending_id ?? null,
    };
  }
}


/** One client: sends until told to stop or until the server is gone, one request at a time. */
async function runClient(server: ServerProcess, workload: Workload, clientIndex: number, shouldStop: () => boolean): Promise<void> {
  const rng = mulberry32(SEED * 97 + clientIndex);
  const int = (min: number, max: number) => min + Math.floor(rng() * (max - min + 1));
  const pick = <T>(items: readonly T[]) => items[Math.floor(rng() * items.length)]!;
  const openHolds: TransferBody[] = [];
  let serial = 0;
  const nextId = (kind: string) => `c${clientIndex}-${serial++}-${kind}`;
  const twoWallets = () => {
    const from = pick(WALLETS);
    let to = pick(WALLETS);
    while (to === from) to = pick(WALLETS);
    return [from, to] as const;
  };
  const plain = (): TransferBody => {
    const roll = rng();
    if (roll < 0.35) return { id: nextId("fund"), debit_account_id: "bank", credit_account_id: pick(WALLETS), amount: int(100, 2000), currency: CURRENCY };
    if (roll < 0.8) {
      const [from, to] = twoWallets();
      return { id: nextId("move"), debit_account_id: from, credit_account_id: to, amount: int(1, 300), currency: CURRENCY };
    }
    return { id: nextId("out"), debit_account_id: pick(WALLETS), credit_account_id: "bank", amount: int(1, 300), currency: CURRENCY };
  };
  const hold = (linked: boolean): TransferBody => {
    const [from, to] = twoWallets();
    const body: TransferBody = { id: nextId("hold"), debit_account_id: from, credit_account_id: to, amount: int(1, 300), currency: CURRENCY, pending: true };
    if (linked) body.linked = true;
    workload.holds.set(body.id, body);
    return body;
  };
  const resolve = (of: TransferBody): TransferBody =>
    rng() < 0.6
      ? { id: nextId("post"), post_pending_id: of.id, amount: int(1, of.amount!) }
      : { id: nextId("void"), void_pending_id: of.id };

  while (!shouldStop()) {
    let request: RawRequest;
    if (rng() < 0.7) {
      const roll = rng();
      let body: TransferBody;
      if (roll < 0.2) body = hold(false);
      else if (roll < 0.35 && openHolds.length > 0) body = resolve(openHolds.splice(Math.floor(rng() * openHolds.length), 1)[0]!);
      else body = plain();
      request = { endpoint: "single", bodies: [body] };
    } else {
      const bodies: TransferBody[] = [];
      const size = int(2, 8);
      while (bodies.length < size) {
        const roll = rng();
        if (roll < 0.2) {
          // A hold and its post, succeeding or failing together.
          const h = hold(true);
          bodies.push(h, { id: nextId("post"), post_pending_id: h.id, amount: int(1, h.amount!) });
        } else if (roll < 0.3) {
          // Two moves that stand or fall together (a flagged payer may refuse the second).
          const a = plain();
          bodies.push({ ...a, linked: true }, plain());
        } else {
          bodies.push(plain());
        }
      }
      request = { endpoint: "batch", bodies };
    }
    for (const body of request.bodies) workload.sent.set(body.id, { body, endpoint: request.endpoint, acknowledged: false });
    workload.requests.push(request);

    let res: ProcessResponse;
    workload.inFlight++;
    try {
      res =
        request.endpoint === "single"
          ? await server.request("POST", "/v1/ledger/transfers", request.bodies[0])
          : await server.request("POST", "/v1/ledger/transfers/batch", { transfers: request.bodies });
    } catch (error) {
      workload.connectionErrors++;
      workload.count("connection error");
      if (!workload.signalled) workload.unexpected.push(`connection error before any signal: ${(error as Error).message}`);
      return;
    } finally {
      workload.inFlight--;
    }
    record(workload, request, res, openHolds);
  }
}

function record(workload: Workload, request: RawRequest, res: ProcessResponse, openHolds: TransferBody[]): void {
  workload.count(String(res.status));
  const first = request.bodies[0]!;
  if (res.status === 503) {
    // Refused during shutdown: the contract's error shape with code `unavailable`.
    if (res.body?.error?.code !== "unavailable") workload.unexpected.push(`503 without code unavailable: ${res.text}`);
    if (!workload.signalled) workload.unexpected.push(`503 before any signal: ${res.text}`);
    return;
  }
  if (request.endpoint === "single") {
    if (res.status === 201 || res.status === 200) {
      if (res.status === 200) workload.unexpected.push(`a fresh id answered 200 (exists): ${first.id}`);
      workload.acknowledge(first.id, res.body?.timestamp);
      if (first.pending) openHolds.push(first);
      return;
    }
    if (res.status === 422 && typeof res.body?.error?.code === "string") return;
    workload.unexpected.push(`single transfer ${first.id}: ${res.status} ${res.text}`);
    return;
  }
  if (res.status !== 200 || !Array.isArray(res.body?.results) || res.body.results.length !== request.bodies.length) {
    workload.unexpected.push(`batch starting ${first.id}: ${res.status} ${res.text.slice(0, 300)}`);
    return;
  }
  res.body.results.forEach((r: { id: string; result: string }, i: number) => {
    if (r.id !== request.bodies[i]!.id) workload.unexpected.push(`batch result ${i} names ${r.id}, not ${request.bodies[i]!.id}`);
    if (r.result === "created" || r.result === "exists") workload.acknowledge(request.bodies[i]!.id);
  });
}

/** Loads the server, then sends `signal` once enough was acknowledged, with requests in flight. */
async function loadAndSignal(
  server: ServerProcess,
  workload: Workload,
  signal: NodeJS.Signals,
): Promise<{ inFlightAtSignal: number; signalledAtMs: number }> {
  let stop = false;
  const started = Date.now();
  const clients = Array.from({ length: CLIENT_COUNT }, (_, i) => runClient(server, workload, i, () => stop));
  while (
    (Date.now() - started < LOAD_MS_MIN || workload.acknowledged < ACKNOWLEDGED_BEFORE_SIGNAL_MIN || workload.inFlight === 0) &&
    Date.now() - started < LOAD_MS_MAX
  ) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const inFlightAtSignal = workload.inFlight;
  workload.signalled = true;
  server.kill(signal);
  const signalledAtMs = Date.now();
  // Clients go on until the process is gone: under load the kill can take effect only after the
  // requests in flight at the signal were answered, and the requests sent meanwhile are the ones
  // that lose their connection (SIGKILL). SIGTERM: they go on until the server refuses.
  await server.exited;
  stop = true;
  await Promise.all(clients);
  return { inFlightAtSignal, signalledAtMs };
}

async function createAccounts(server: ServerProcess): Promise<void> {
  for (const id of ACCOUNT_IDS) {
    const res = await server.request("POST", "/v1/ledger/accounts", {
      id,
      currency: CURRENCY,
      normal_balance: id === "bank" ? "debit" : "credit",
      flags: { debits_must_not_exceed_credits: FLAGGED.has(id) },
    });
    assert.equal(res.status, 201, `${res.text}\nserver output:\n${server.output()}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the ledger back after a restart.

interface AccountView {
  readonly id: string;
  readonly debitsPending: bigint;
  readonly debitsPosted: bigint;
  readonly creditsPending: bigint;
  readonly creditsPosted: bigint;
  readonly available: bigint;
}

function accountView(id: string, json: any): AccountView {
  return {
    id,
    debitsPending: BigInt(json.debits_pending),
    debitsPosted: BigInt(json.debits_posted),
    creditsPending: BigInt(json.credits_pending),
    creditsPosted: BigInt(json.credits_posted),
    available: BigInt(json.available),
  };
}

interface LedgerSnapshot {
  readonly accounts: Map<string, AccountView>;
  /** Each account's history, newest first. */
  readonly histories: Map<string, any[]>;
  /** Every transfer seen in any history, by id. */
  readonly transfers: Map<string, any>;
}


async function readLedger(server: ServerProcess): Promise<LedgerSnapshot> {
  const accounts = new Map<string, AccountView>();
  const histories = new Map<string, any[]>();
  const transfers = new Map<string, any>();
  for (const id of ACCOUNT_IDS) {
    const res = await server.request("GET", `/v1/ledger/accounts/${id}`);
    assert.equal(res.status, 200, res.text);
    accounts.set(id, accountView(id, res.body));
    const history = await historyOf(server, id, PAGE_SIZE);
    histories.set(id, history);
    for (const t of history) {
      const { balance_after: _ignored, ...transfer } = t;
      const seen = transfers.get(t.id);
      if (seen) assert.deepEqual(transfer, seen, `transfer ${t.id} reads the same from both of its accounts`);
      else transfers.set(t.id, transfer);
    }
  }
  return { accounts, histories, transfers };
}

async function inPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

function assertStoredAsSent(workload: Workload, stored: any, context: string): void {
  const expected = workload.expected(stored.id);
  assert.deepEqual(
    {
      debit: stored.debit_account_id,
      credit: stored.credit_account_id,
      amountMinor: BigInt(stored.amount),
      pending: stored.pending,
      postPendingId: stored.post_pending_id,
      voidPendingId: stored.void_pending_id,
    },
    expected,
    `${context}: transfer ${stored.id} is stored as it was sent`,
  );
  assert.equal(stored.currency, CURRENCY);
}

async function assertAcknowledgedPresent(server: ServerProcess, workload: Workload): Promise<number> {
  const acknowledged = [...workload.sent.values()].filter((s) => s.acknowledged);
  const missing: string[] = [];
  await inPool(acknowledged, AUDIT_CONCURRENCY, async (sent) => {
    const res = await server.request("GET", `/v1/ledger/transfers/${sent.body.id}`);
    if (res.status !== 200) {
      missing.push(`${sent.body.id} (${res.status})`);
      return;
    }
    assertStoredAsSent(workload, res.body, "acknowledged");
    if (sent.timestamp !== undefined) assert.equal(res.body.timestamp, sent.timestamp, `${sent.body.id} keeps its acknowledged timestamp`);
  });
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} of ${acknowledged.length} acknowledged transfers are missing after the restart`);
  return acknowledged.length;
}

/** Books balance, each account equals the sum of its transfers, holds resolve at most once. */
function assertLedgerConsistent(workload: Workload, ledger: LedgerSnapshot): void {
  let debitsPosted = 0n, creditsPosted = 0n, debitsPending = 0n, creditsPending = 0n;
  for (const a of ledger.accounts.values()) {
    debitsPosted += a.debitsPosted;
    creditsPosted += a.creditsPosted;
    debitsPending += a.debitsPending;
    creditsPending += a.creditsPending;
  }
  assert.equal(debitsPosted, creditsPosted, "Σ debits_posted = Σ credits_posted");
  assert.equal(debitsPending, creditsPending, "Σ debits_pending = Σ credits_pending");

  for (const t of ledger.transfers.values()) {
    assert.ok(workload.sent.has(t.id), `transfer ${t.id} in the ledger was sent by a client`);
    assertStoredAsSent(workload, t, "in history");
  }

  // Each hold resolves at most once, by a transfer that references it, never above its amount.
  const resolutions = new Map<string, any[]>();
  for (const t of ledger.transfers.values()) {
    const pendingId = t.post_pending_id ?? t.void_pending_id;
    if (pendingId !== null) resolutions.set(pendingId, [...(resolutions.get(pendingId) ?? []), t]);
  }
  for (const t of ledger.transfers.values()) {
    if (!t.pending) continue;
    const by = resolutions.get(t.id) ?? [];
    assert.ok(by.length <= 1, `hold ${t.id} is resolved ${by.length} times`);
    if (t.status === "pending") assert.equal(by.length, 0, `hold ${t.id} is pending yet resolved by ${by[0]?.id}`);
    if (t.status === "posted") {
      assert.equal(by[0]?.post_pending_id, t.id, `posted hold ${t.id} has its post`);
      assert.ok(BigInt(by[0].amount) <= BigInt(t.amount), `post of ${t.id} is within the held amount`);
    }
    if (t.status === "voided") assert.equal(by[0]?.void_pending_id, t.id, `voided hold ${t.id} has its void`);
    assert.notEqual(t.status, "expired", `hold ${t.id} had no timeout and cannot expire`);
  }
  for (const [pendingId] of resolutions) assert.ok(ledger.transfers.has(pendingId), `resolved hold ${pendingId} exists`);

  // Each account's stored balances, recomputed from the transfers themselves.
  for (const [id, history] of ledger.histories) {
    const computed = { debitsPending: 0n, debitsPosted: 0n, creditsPending: 0n, creditsPosted: 0n };
    let newer: bigint | null = null;
    for (const t of history) {
      const ts = timestampUs(t.timestamp);
      if (newer !== null) assert.ok(ts < newer, `${id}'s history is strictly ordered by timestamp, newest first`);
      newer = ts;
      const amount = BigInt(t.amount);
      let posted = 0n, pending = 0n;
      if (t.post_pending_id !== null) posted = amount;
      else if (t.void_pending_id !== null) posted = 0n;
      else if (t.pending) pending = t.status === "pending" ? amount : 0n;
      else posted = amount;
      if (t.debit_account_id === id) {
        computed.debitsPosted += posted;
        computed.debitsPending += pending;
      } else {
        assert.equal(t.credit_account_id, id);
        computed.creditsPosted += posted;
        computed.creditsPending += pending;
      }
    }
    const a = ledger.accounts.get(id)!;
    assert.deepEqual(
      computed,
      { debitsPending: a.debitsPending, debitsPosted: a.debitsPosted, creditsPending: a.creditsPending, creditsPosted: a.creditsPosted },
      `${id}'s balances equal the sum of its ${history.length} transfers`,
    );
    if (history.length > 0) {
      const last = history[0].balance_after;
      assert.deepEqual(
        [last.debits_pending, last.debits_posted, last.credits_pending, last.credits_posted].map((v: number) => BigInt(v)),
        [a.debitsPending, a.debitsPosted, a.creditsPending, a.creditsPosted],
        `${id}'s newest balance_after equals its balances`,
      );
    }
  }
}

function assertNoFlaggedOverdraft(ledger: LedgerSnapshot): void {
  for (const id of FLAGGED) {
    const a = ledger.accounts.get(id)!;
    assert.ok(a.debitsPending + a.debitsPosted <= a.creditsPosted, `${id} is within its limit now`);
    assert.ok(a.available >= 0n, `${id}'s available is not negative`);
    for (const t of ledger.histories.get(id)!) {
      const b = t.balance_after;
      assert.ok(
        BigInt(b.debits_pending) + BigInt(b.debits_posted) <= BigInt(b.credits_posted),
        `${id} was within its limit right after ${t.id}`,
      );
    }
  }
}

function timestampUs(text: string): bigint {
  const m = /^(.*T\d{2}:\d{2}:\d{2})\.(\d{6})Z$/.exec(text);
  assert.ok(m, `timestamp ${text} has microseconds`);
  return BigInt(Date.parse(`${m[1]}Z`)) * 1000n + BigInt(m[2]!);
}

function describeWorkload(workload: Workload): string {
  return `seed ${SEED}; statuses ${JSON.stringify(Object.fromEntries(workload.statuses))}; sent ${workload.sent.size}, acknowledged ${workload.acknowledged}`;
}

// ---------------------------------------------------------------------------------------------

for (const dialect of DIALECTS) {
  describe(`kill -9 under load on ${dialect} (LEDGER.md invariant 8)`, () => {
    let database: TestDatabase;
    let first: ServerProcess;
    let second: ServerProcess;
    let ledger: LedgerSnapshot;
    const workload = new Workload();

    before(async () => {
      database = await createTestDatabase(dialect, "crash");
      first = await startServerProcess({ databaseUrl: database.url });
      await createAccounts(first);
    });
    after(async () => {
      await first?.stop();
      await second?.stop();
      await database?.dispose();
    });

    test("the process dies by SIGKILL while requests are in flight, after answering only well-formed responses", async () => {
      const { inFlightAtSignal } = await loadAndSignal(first, workload, "SIGKILL");
      const status = await first.exited;
      assert.equal(status.signal, "SIGKILL", first.output());
      assert.ok(inFlightAtSignal > 0, "requests were in flight at the kill");
      assert.ok(workload.acknowledged >= ACKNOWLEDGED_BEFORE_SIGNAL_MIN, describeWorkload(workload));
      assert.ok(workload.connectionErrors > 0, `in-flight requests lost their connection: ${describeWorkload(workload)}`);
      assert.deepEqual(workload.unexpected.slice(0, 10), [], describeWorkload(workload));
    });

    test("a new process starts on the same database", async () => {
      second = await startServerProcess({ databaseUrl: database.url });
      const ready = await second.request("GET", "/readyz", undefined, { key: null });
      assert.equal(ready.status, 200, ready.text);
      ledger = await readLedger(second);
      assert.ok(ledger.transfers.size > 0, "the ledger has transfers after the restart");
    });

    test("every acknowledged transfer is there, as it was acknowledged", async () => {
      const checked = await assertAcknowledgedPresent(second, workload);
      assert.ok(checked >= ACKNOWLEDGED_BEFORE_SIGNAL_MIN);
    });

    test("each transfer that was not acknowledged is either absent or exactly as sent", async () => {
      const unacknowledged = [...workload.sent.values()].filter((s) => !s.acknowledged);
      await inPool(unacknowledged, AUDIT_CONCURRENCY, async (sent) => {
        const res = await second.request("GET", `/v1/ledger/transfers/${sent.body.id}`);
        assert.ok(res.status === 404 || res.status === 200, `${sent.body.id}: ${res.status} ${res.text}`);
        if (res.status === 200) assertStoredAsSent(workload, res.body, "unacknowledged");
        else assert.equal(res.body.error.code, "not_found");
      });
      // What the history walk found and the per-id reads agree on which transfers exist.
      for (const sent of workload.sent.values()) {
        if (sent.acknowledged) assert.ok(ledger.transfers.has(sent.body.id), `acknowledged ${sent.body.id} is in its accounts' history`);
      }
    });

    test("the books balance and each account's balances equal the sum of its transfers", () => {
      assertLedgerConsistent(workload, ledger);
    });

    test("no flagged account is overdrawn, now or right after any of its transfers", () => {
      assertNoFlaggedOverdraft(ledger);
    });

    test("a transfer after the restart is timestamped after every transfer from before the crash", async () => {
      const res = await second.request("POST", "/v1/ledger/transfers", {
        id: "after-restart", debit_account_id: "bank", credit_account_id: "w01", amount: 1, currency: CURRENCY,
      });
      assert.equal(res.status, 201, res.text);
      const latest = [...ledger.transfers.values()].reduce((max, t) => {
        const ts = timestampUs(t.timestamp);
        return ts > max ? ts : max;
      }, 0n);
      assert.ok(timestampUs(res.body.timestamp) > latest, `${res.body.timestamp} is after every earlier timestamp`);
      // The two accounts it touched are read again, so the replay check below starts from now.
      const bank = await second.request("GET", "/v1/ledger/accounts/bank");
      const w01 = await second.request("GET", "/v1/ledger/accounts/w01");
      ledger.accounts.set("bank", accountView("bank", bank.body));
      ledger.accounts.set("w01", accountView("w01", w01.body));
    });

    test("resending acknowledged transfers answers exists and has no second effect", async () => {
      // Each original request again, keeping only its acknowledged transfers: a linked chain
      // was acknowledged whole or not at all, so the chains stay intact.
      const replays = workload.requests
        .map((r) => ({ endpoint: r.endpoint, bodies: r.bodies.filter((b) => workload.sent.get(b.id)!.acknowledged) }))
        .filter((r) => r.bodies.length > 0);
      const singles = replays.filter((r) => r.endpoint === "single").slice(0, 100);
      await inPool(singles, AUDIT_CONCURRENCY, async (r) => {
        const body = r.bodies[0]!;
        const res = await second.request("POST", "/v1/ledger/transfers", body);
        assert.equal(res.status, 200, `${body.id}: ${res.text}`);
        assert.equal(res.body.id, body.id);
        const original = workload.sent.get(body.id)!.timestamp;
        if (original !== undefined) assert.equal(res.body.timestamp, original, `${body.id} replays the stored transfer`);
      });
      const batched = replays.filter((r) => r.endpoint === "batch");
      await inPool(batched, AUDIT_CONCURRENCY, async (r) => {
        const res = await second.request("POST", "/v1/ledger/transfers/batch", { transfers: r.bodies });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body.results, r.bodies.map((b) => ({ id: b.id, result: "exists" })));
      });
      for (const id of ACCOUNT_IDS) {
        const res = await second.request("GET", `/v1/ledger/accounts/${id}`);
        assert.deepEqual(accountView(id, res.body), ledger.accounts.get(id), `${id} is unchanged by the replays`);
      }
    });
  });

  describe(`SIGTERM under load on ${dialect} (CONVENTIONS.md: stops cleanly)`, () => {
    let database: TestDatabase;
    let first: ServerProcess;
    let second: ServerProcess;
    const workload = new Workload();

    before(async () => {
      database = await createTestDatabase(dialect, "shutdown");
      first = await startServerProcess({ databaseUrl: database.url });
      await createAccounts(first);
    });
    after(async () => {
      await first?.stop();
      await second?.stop();
      await database?.dispose();
    });

    test("with requests in flight, the process exits with code 0 within 10 s", async () => {
      const { inFlightAtSignal, signalledAtMs } = await loadAndSignal(first, workload, "SIGTERM");
      const status = await first.exited;
      const shutdownMs = Date.now() - signalledAtMs;
      assert.ok(inFlightAtSignal > 0, "requests were in flight at SIGTERM");
      assert.deepEqual(status, { code: 0, signal: null }, `exit status; output:\n${first.output()}`);
      assert.ok(shutdownMs <= SHUTDOWN_MS_MAX, `the process took ${shutdownMs} ms to stop`);
      assert.ok(workload.acknowledged >= ACKNOWLEDGED_BEFORE_SIGNAL_MIN, describeWorkload(workload));
    });

    test("every request got a proper answer (2xx, 4xx, or 503 with code unavailable) or a connection error", () => {
      assert.ok(workload.sent.size > 0);
      assert.deepEqual(workload.unexpected.slice(0, 10), [], `${workload.unexpected.length} improper answers; ${describeWorkload(workload)}`);
    });

    test("after a restart every acknowledged transfer is there and the books balance", async () => {
      second = await startServerProcess({ databaseUrl: database.url });
      await assertAcknowledgedPresent(second, workload);
      const ledger = await readLedger(second);
      assertLedgerConsistent(workload, ledger);
      assertNoFlaggedOverdraft(ledger);
    });
  });
}
