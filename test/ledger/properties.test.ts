// Property tests of the ledger in the spirit of TigerBeetle's VOPR auditor: seeded random
// workloads (accounts, single transfers, batches with linked chains, holds, posts, voids, replays,
// unknown references, time passing) are driven through the HTTP API and, after every step,
// checked against an independent reference model (reference-model.ts) and LEDGER.md's invariants
// 1–7. Invariant 8 (crash) is tested elsewhere.
//
// TALLY_PROPERTY_RUNS (workloads per database), TALLY_PROPERTY_STEPS (steps per workload at most),
// TALLY_PROPERTY_SEED (replay a reported failure), TALLY_PROPERTY_SHRINK_MS (time spent shrinking a
// failure) tune a run; TALLY_PROPERTY_DEBUG=1 prints run times and how often each result came up.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ManualClock } from "../../src/kernel/clock.ts";
import { DIALECTS } from "../support/databases.ts";
import { mulberry32 } from "../support/random.ts";
import { startTestApp, type TestApp, type TestResponse } from "../support/app.ts";
import {
  BALANCE_MAX,
  addAccount,
  applyBatch,
  balancesAt,
  deadlineUs,
  derived,
  emptyModel,
  expireDue,
  transfersOf,
  zeroBalances,
  type Balances,
  type LedgerModel,
  type ModelTransfer,
  type NormalBalance,
  type TransferRequest,
  type TransferResult,
} from "./reference-model.ts";

const RUNS = Number(process.env.TALLY_PROPERTY_RUNS ?? 16);
const STEPS = Number(process.env.TALLY_PROPERTY_STEPS ?? 32);
const SEED = process.env.TALLY_PROPERTY_SEED === undefined ? undefined : Number(process.env.TALLY_PROPERTY_SEED);
/** Once a workload has failed, shrinking it stops after this long (the suite has a time budget). */
const SHRINK_TIME_MAX_MS = Number(process.env.TALLY_PROPERTY_SHRINK_MS ?? 15_000);
const TIMEOUT_SECONDS_CHOICES = [0, 0, 1, 2, 3, 5] as const;
const TIMEOUT_SECONDS_MAX = 5;

// ---------------------------------------------------------------------------------------------
// Workloads: abstract steps whose references (account and transfer indexes) are resolved while
// the workload runs, so any shrunk workload is still a valid one.

type Currency = "CNY" | "USD";
type Flags = "none" | "debits" | "credits" | "both";

interface AccountSpec {
  readonly currency: Currency;
  readonly normalBalance: NormalBalance;
  readonly flags: Flags;
}

interface NewSpec {
  readonly kind: "new";
  readonly debit: number;
  /** The credit account: another account of the debit account's currency, by index. */
  readonly credit: number;
  readonly sameAccount: boolean;
  readonly anyCurrency: boolean;
  readonly amount: bigint;
  /** Instead of `amount`: the most the accounts' limits and 2^53 − 1 allow, or one more. */
  readonly brim: "no" | "exact" | "over";
  readonly hold: boolean;
  readonly timeoutSeconds: number;
  readonly code: number;
  readonly otherCurrency: boolean;
  readonly unknownDebit: boolean;
  readonly unknownCredit: boolean;
  readonly reference: string | null;
  readonly metadata: number | null;
}

interface ResolveSpec {
  readonly kind: "post" | "void";
  /** Which earlier transfer to name: a pending hold, any hold, any transfer, or an id nobody used. */
  readonly pool: "live" | "holds" | "any" | "unknown";
  readonly index: number;
  readonly amount: "omit" | "full" | "part" | "over";
  readonly accounts: "omit" | "same" | "swapped" | "other";
  readonly other: number;
  readonly code: "omit" | "same" | "other";
  readonly currency: "omit" | "same" | "other";
}

interface ReplaySpec {
  readonly kind: "replay";
  /** A request that created a transfer, any earlier request of this run, or of this batch. */
  readonly scope: "stored" | "run" | "batch";
  readonly index: number;
  readonly change: "none" | "amount" | "reference" | "linked" | "code" | "pending";
}

type TransferSpec = NewSpec | ResolveSpec | ReplaySpec;

/** How a request is spelled; spellings of the same request parse to the same fields. */
interface Surface {
  readonly amountAsString: boolean;
  readonly explicitDefaults: boolean;
  readonly reverseMetadata: boolean;
}

interface Item {
  readonly spec: TransferSpec;
  readonly linked: boolean;
  readonly surface: Surface;
}

type Step =
  | { readonly kind: "single"; readonly item: Item }
  | { readonly kind: "batch"; readonly items: readonly Item[] }
  | { readonly kind: "advance"; readonly ms: number }
  /** Moves the clock to (about) a pending hold's deadline: `deltaMs` before, at or after it. */
  | { readonly kind: "deadline"; readonly index: number; readonly deltaMs: number }
  /** Many small transfers from one account in one batch: long histories, checkpoints, paging. */
  | { readonly kind: "burst"; readonly credit: number; readonly count: number; readonly holds: boolean }
  | { readonly kind: "invalid"; readonly items: readonly Item[]; readonly bad: number; readonly badAmount: unknown };

interface Workload {
  readonly accounts: readonly AccountSpec[];
  readonly steps: readonly Step[];
  readonly pageSize: number;
  readonly fundingAmount: number;
  readonly salt: number;
}

// Choices are unbiased: fast-check's bias towards small numbers would make every rare case common.
const percent = (p: number) => fc.noBias(fc.integer({ min: 0, max: 99 })).map((n) => n < p);
const index = (max: number) => fc.noBias(fc.nat(max));

const accountArb: fc.Arbitrary<AccountSpec> = fc.record({
  currency: fc.constantFrom<Currency>("CNY", "CNY", "USD"),
  normalBalance: fc.constantFrom<NormalBalance>("credit", "debit"),
  flags: fc.constantFrom<Flags>("none", "none", "none", "debits", "debits", "credits", "none", "debits", "credits", "both"),
});

const amountArb: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 1000 }).map(BigInt) },
  // Two of 2^52 − 1 and 2^52 sum to exactly the largest balance.
  { weight: 1, arbitrary: fc.constantFrom(BALANCE_MAX, BALANCE_MAX - 1n, 2n ** 52n, 2n ** 52n - 1n, 2n ** 52n + 1n) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 1000 }).map((n) => BALANCE_MAX - BigInt(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 1000 }).map((n) => 2n ** 52n + BigInt(n)) },
);

const newArb: fc.Arbitrary<NewSpec> = fc.record({
  kind: fc.constant("new" as const),
  debit: fc.oneof(fc.constant(0), index(7)),
  credit: index(7),
  sameAccount: percent(3),
  anyCurrency: percent(5),
  amount: amountArb,
  brim: fc.constantFrom<NewSpec["brim"]>(...Array<NewSpec["brim"]>(6).fill("no"), "exact", "over"),
  hold: percent(45),
  timeoutSeconds: fc.constantFrom(...TIMEOUT_SECONDS_CHOICES),
  code: fc.constantFrom(0, 0, 0, 7, 9),
  otherCurrency: percent(6),
  unknownDebit: percent(3),
  unknownCredit: percent(3),
  reference: fc.constantFrom<string | null>(null, null, null, "rent-2023-03", "fee"),
  metadata: fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat(99) }),
});

const resolveArb: fc.Arbitrary<ResolveSpec> = fc.record({
  kind: fc.constantFrom<"post" | "void">("post", "post", "void"),
  pool: fc.constantFrom<ResolveSpec["pool"]>("live", "live", "live", "live", "live", "live", "holds", "holds", "any", "unknown"),
  index: index(63),
  amount: fc.constantFrom<ResolveSpec["amount"]>("omit", "omit", "omit", "omit", "omit", "full", "part", "part", "part", "over"),
  accounts: fc.constantFrom<ResolveSpec["accounts"]>("omit", "omit", "omit", "omit", "omit", "omit", "omit", "same", "swapped", "other"),
  other: index(7),
  code: fc.constantFrom<ResolveSpec["code"]>("omit", "omit", "omit", "omit", "omit", "omit", "omit", "omit", "same", "other"),
  currency: fc.constantFrom<ResolveSpec["currency"]>("omit", "omit", "omit", "omit", "omit", "omit", "omit", "omit", "same", "other"),
});

const replayArb: fc.Arbitrary<ReplaySpec> = fc.record({
  kind: fc.constant("replay" as const),
  scope: fc.constantFrom<ReplaySpec["scope"]>("stored", "stored", "stored", "run", "batch", "batch"),
  index: index(63),
  change: fc.constantFrom<ReplaySpec["change"]>("none", "none", "none", "amount", "reference", "linked", "code", "pending"),
});

const specArb: fc.Arbitrary<TransferSpec> = fc.oneof(
  { weight: 6, arbitrary: newArb },
  { weight: 4, arbitrary: resolveArb },
  { weight: 2, arbitrary: replayArb },
);

const surfaceArb: fc.Arbitrary<Surface> = fc.record({
  amountAsString: percent(20),
  explicitDefaults: percent(20),
  reverseMetadata: fc.boolean(),
});

const itemArb = (linkedPercent: number): fc.Arbitrary<Item> =>
  fc.record({ spec: specArb, linked: percent(linkedPercent), surface: surfaceArb });

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("single" as const), item: itemArb(5) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("batch" as const), items: fc.array(itemArb(25), { minLength: 1, maxLength: 8 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.oneof(fc.integer({ min: 1, max: 999 }), fc.integer({ min: 1000, max: 3000 }), fc.constant(TIMEOUT_SECONDS_MAX * 1000 + 1)),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("deadline" as const), index: index(63), deltaMs: fc.constantFrom(-1, 0, 0, 1) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("burst" as const), credit: index(7), count: fc.integer({ min: 20, max: 70 }), holds: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("invalid" as const),
      items: fc.array(itemArb(20), { minLength: 1, maxLength: 4 }),
      bad: index(3),
      badAmount: fc.constantFrom<unknown>(0, -5, 12.5, "12.5", "abc", 9007199254740992, "9007199254740992"),
    }),
  },
);

const workloadArb: fc.Arbitrary<Workload> = fc.record({
  accounts: fc.array(accountArb, { minLength: 2, maxLength: 5 }),
  steps: fc.array(stepArb, { minLength: Math.ceil(STEPS / 2), maxLength: Math.max(1, STEPS), size: "max" }),
  pageSize: fc.constantFrom(3, 100),
  fundingAmount: fc.integer({ min: 1, max: 20_000 }),
  salt: fc.noBias(fc.nat()),
});

// ---------------------------------------------------------------------------------------------
// The harness: one Tally per database, reused by every workload (each gets fresh ids).

interface Harness {
  readonly app: TestApp;
  readonly clock: ManualClock;
  runs: number;
  /** An upper bound on the last ledger timestamp handed out (each request takes at most one per transfer). */
  timestampBoundUs: bigint;
  /** The greatest ledger timestamp seen in a response. */
  lastTimestampUs: bigint;
}

interface Run {
  readonly h: Harness;
  readonly prefix: string;
  readonly model: LedgerModel;
  readonly accountIds: string[];
  /** Every request sent in a step that passed validation, in order. */
  readonly sent: TransferRequest[];
  /** The request that created each transfer. */
  readonly createdRequests: Map<string, TransferRequest>;
  readonly pageSize: number;
  readonly random: () => number;
  /** The server's balances as last read, by account. */
  readonly serverBalances: Map<string, Record<string, bigint>>;
  startUs: bigint;
  nextId: number;
}

/** How often each result came up (printed with TALLY_PROPERTY_DEBUG=1, to see what workloads reach). */
const resultCounts = new Map<string, number>();

const maxBig = (a: bigint, b: bigint) => (a > b ? a : b);


function formatUs(us: bigint, offsetMinutes = 0): string {
  const shifted = us + BigInt(offsetMinutes) * 60_000_000n;
  const seconds = shifted / 1_000_000n;
  const micros = shifted % 1_000_000n;
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  const abs = Math.abs(offsetMinutes);
  const hhmm = `${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  const suffix = offsetMinutes === 0 ? "Z" : `${offsetMinutes > 0 ? "+" : "-"}${hhmm}`;
  return `${base}.${micros.toString().padStart(6, "0")}${suffix}`;
}

function parseUtcUs(text: unknown): bigint {
  const m = typeof text === "string" ? /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{6})Z$/.exec(text) : null;
  assert.ok(m, `${String(text)} is an RFC 3339 timestamp in UTC with microseconds`);
  return BigInt(Date.parse(`${m[1]}Z`)) * 1000n + BigInt(m[2]!);
}

function big(value: unknown, what: string): bigint {
  assert.ok(typeof value === "number" && Number.isSafeInteger(value), `${what} is a JSON integer (got ${JSON.stringify(value)})`);
  return BigInt(value);
}

function balanceFields(json: any, what: string): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const f of ["debits_pending", "debits_posted", "credits_pending", "credits_posted", "balance", "available"]) {
    out[f] = big(json?.[f], `${what}.${f}`);
  }
  return out;
}

function expectedFields(normal: NormalBalance, b: Balances): Record<string, bigint> {
  const { balance, available } = derived(normal, b);
  return {
    debits_pending: b.debitsPending,
    debits_posted: b.debitsPosted,
    credits_pending: b.creditsPending,
    credits_posted: b.creditsPosted,
    balance,
    available,
  };
}

function canonicalMetadata(order: number): string {
  return JSON.stringify({ note: "m", order });
}

// ---------------------------------------------------------------------------------------------
// From abstract items to requests.

function nextTransferId(run: Run): string {
  return `${run.prefix}.t${run.nextId++}`;
}

function otherCurrency(c: string | undefined): Currency {
  return c === "CNY" ? "USD" : "CNY";
}

function accountAt(run: Run, index: number): string {
  return run.accountIds[index % run.accountIds.length]!;
}

/** What is known of a transfer id: the model's transfer, else the latest request with that id. */
function knownFields(run: Run, id: string, earlier: readonly TransferRequest[], fallback: number) {
  const t = run.model.transfers.get(id);
  if (t) return { debit: t.debitAccountId, credit: t.creditAccountId, currency: t.currency, amount: t.amount, code: t.code };
  const r = [...run.sent, ...earlier].reverse().find((x) => x.id === id);
  return {
    debit: r?.debitAccountId ?? accountAt(run, fallback),
    credit: r?.creditAccountId ?? accountAt(run, fallback + 1),
    currency: r?.currency ?? "CNY",
    amount: r?.amount ?? 100n,
    code: r?.code ?? 0,
  };
}

function buildNew(run: Run, spec: NewSpec): TransferRequest {
  const debitAccount = accountAt(run, spec.debit);
  const currency = run.model.accounts.get(debitAccount)!.currency;
  const candidates = run.accountIds.filter((id) => id !== debitAccount && (spec.anyCurrency || run.model.accounts.get(id)!.currency === currency));
  const creditAccount = spec.sameAccount || candidates.length === 0 ? debitAccount : candidates[spec.credit % candidates.length]!;
  const debitId = spec.unknownDebit ? `${run.prefix}.nobody` : debitAccount;
  const creditId = spec.unknownCredit ? `${run.prefix}.nobody` : creditAccount;
  const own = (run.model.accounts.get(debitId) ?? run.model.accounts.get(creditId))?.currency ?? "CNY";
  let amount = spec.amount;
  if (spec.brim !== "no") {
    const debit = run.model.accounts.get(debitAccount)!;
    const credit = run.model.accounts.get(creditAccount)!;
    const d = debit.balances;
    const c = credit.balances;
    const rooms = [BALANCE_MAX - d.debitsPending - d.debitsPosted, BALANCE_MAX - c.creditsPending - c.creditsPosted];
    if (debit.debitsMustNotExceedCredits) rooms.push(d.creditsPosted - d.debitsPending - d.debitsPosted);
    if (credit.creditsMustNotExceedDebits) rooms.push(c.debitsPosted - c.creditsPending - c.creditsPosted);
    const room = rooms.reduce((a, b) => (a < b ? a : b));
    amount = room + (spec.brim === "over" ? 1n : 0n);
    if (amount < 1n || amount > BALANCE_MAX) amount = spec.amount;
  }
  return {
    id: nextTransferId(run),
    debitAccountId: debitId,
    creditAccountId: creditId,
    amount,
    currency: spec.otherCurrency ? otherCurrency(own) : own,
    code: spec.code === 0 ? undefined : spec.code,
    pending: spec.hold ? true : undefined,
    timeoutSeconds: spec.hold && spec.timeoutSeconds > 0 ? spec.timeoutSeconds : undefined,
    reference: spec.reference ?? undefined,
    metadata: spec.metadata === null ? undefined : canonicalMetadata(spec.metadata),
  };
}

function buildResolve(run: Run, spec: ResolveSpec, earlier: readonly TransferRequest[]): TransferRequest {
  const all = [...run.sent, ...earlier];
  const live = [...[...run.model.transfers.values()].filter((t) => t.holdState === "pending"), ...earlier.filter((r) => r.pending)];
  const holds = all.filter((r) => r.pending);
  // Fall back from the pool asked for to wider ones, so that unknown ids stay a deliberate case.
  const pool =
    spec.pool === "live" && live.length > 0 ? live
    : spec.pool !== "unknown" && spec.pool !== "any" && holds.length > 0 ? holds
    : spec.pool !== "unknown" ? all
    : [];
  const targetId = pool.length === 0 ? `${run.prefix}.ghost${spec.index % 3}` : pool[spec.index % pool.length]!.id;
  const hold = knownFields(run, targetId, earlier, spec.other);
  const amount =
    spec.amount === "omit" ? undefined
    : spec.amount === "full" ? hold.amount
    : spec.amount === "part" ? (hold.amount > 1n ? hold.amount / 2n : 1n)
    : hold.amount < BALANCE_MAX ? hold.amount + 1n : BALANCE_MAX;
  const [debit, credit] =
    spec.accounts === "omit" ? [undefined, undefined]
    : spec.accounts === "same" ? [hold.debit, hold.credit]
    : spec.accounts === "swapped" ? [hold.credit, hold.debit]
    : [accountAt(run, spec.other), hold.credit];
  return {
    id: nextTransferId(run),
    ...(spec.kind === "post" ? { postPendingId: targetId } : { voidPendingId: targetId }),
    debitAccountId: debit,
    creditAccountId: credit,
    amount,
    currency: spec.currency === "omit" ? undefined : spec.currency === "same" ? hold.currency : otherCurrency(hold.currency),
    code: spec.code === "omit" ? undefined : spec.code === "same" ? hold.code : hold.code + 1,
  };
}

function changed(original: TransferRequest, change: ReplaySpec["change"]): TransferRequest {
  const isResolve = original.postPendingId !== undefined || original.voidPendingId !== undefined;
  switch (change) {
    case "none":
      return original;
    case "amount": {
      const amount = original.amount === undefined ? 1n : original.amount === BALANCE_MAX ? original.amount - 1n : original.amount + 1n;
      return { ...original, amount };
    }
    case "linked":
      return { ...original, linked: original.linked ? undefined : true };
    case "code":
      return { ...original, code: (original.code ?? 0) + 1 };
    case "pending":
      if (!isResolve) {
        return original.pending ? { ...original, pending: undefined, timeoutSeconds: undefined } : { ...original, pending: true };
      }
      return { ...original, reference: original.reference === "x" ? "y" : "x" };
    case "reference":
      return { ...original, reference: original.reference === "x" ? "y" : "x" };
  }
}

function build(run: Run, item: Item, earlier: readonly TransferRequest[]): TransferRequest {
  const linked = item.linked ? true : undefined;
  const spec = item.spec;
  if (spec.kind === "new") return { ...buildNew(run, spec), linked };
  if (spec.kind !== "replay") return { ...buildResolve(run, spec, earlier), linked };
  const stored = [...run.createdRequests.values()];
  const pool =
    spec.scope === "batch" && earlier.length > 0 ? earlier
    : spec.scope === "stored" && stored.length > 0 ? stored
    : run.sent.length > 0 ? run.sent
    : earlier;
  if (pool.length === 0) return { id: nextTransferId(run), voidPendingId: `${run.prefix}.ghost0`, linked };
  // A replay keeps the original's `linked` unless that is the change.
  return changed(pool[spec.index % pool.length]!, spec.change);
}

/** The JSON body of a request, spelled as the surface says (all spellings mean the same). */
function bodyOf(r: TransferRequest, s: Surface): Record<string, unknown> {
  const isResolve = r.postPendingId !== undefined || r.voidPendingId !== undefined;
  const body: Record<string, unknown> = { id: r.id };
  if (r.debitAccountId !== undefined) body.debit_account_id = r.debitAccountId;
  if (r.creditAccountId !== undefined) body.credit_account_id = r.creditAccountId;
  if (r.amount !== undefined) body.amount = s.amountAsString ? r.amount.toString() : Number(r.amount);
  if (r.currency !== undefined) body.currency = r.currency;
  if (r.code !== undefined) body.code = r.code;
  else if (s.explicitDefaults && !isResolve) body.code = 0;
  if (r.pending !== undefined) body.pending = r.pending;
  else if (s.explicitDefaults) body.pending = false;
  if (r.timeoutSeconds !== undefined) body.timeout_seconds = r.timeoutSeconds;
  else if (s.explicitDefaults) body.timeout_seconds = 0;
  if (r.postPendingId !== undefined) body.post_pending_id = r.postPendingId;
  if (r.voidPendingId !== undefined) body.void_pending_id = r.voidPendingId;
  if (r.linked !== undefined) body.linked = r.linked;
  else if (s.explicitDefaults) body.linked = false;
  if (r.reference !== undefined) body.reference = r.reference;
  if (r.metadata !== undefined) {
    const entries = Object.entries(JSON.parse(r.metadata) as Record<string, unknown>);
    body.metadata = Object.fromEntries(s.reverseMetadata ? entries.reverse() : entries);
  } else if (s.explicitDefaults) {
    body.metadata = {};
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// Checks.

async function get(run: Run, url: string): Promise<TestResponse> {
  return run.h.app.request("GET", url);
}

/** GET of a transfer agrees with the model; returns the transfer's timestamp. */
async function checkTransfer(run: Run, t: ModelTransfer): Promise<bigint> {
  const res = await get(run, `/v1/ledger/transfers/${t.id}`);
  assert.equal(res.status, 200, `GET transfer ${t.id}: ${res.text}`);
  const b = res.body;
  const what = `transfer ${t.id}`;
  assert.equal(b.id, t.id);
  assert.equal(b.debit_account_id, t.debitAccountId, `${what} debit_account_id`);
  assert.equal(b.credit_account_id, t.creditAccountId, `${what} credit_account_id`);
  assert.equal(b.currency, t.currency, `${what} currency`);
  // A void's `amount` is not defined by LEDGER.md; a post's is the posted part (invariant 4: ≤ held).
  if (t.kind !== "void") assert.equal(big(b.amount, `${what}.amount`), t.amount, `${what} amount`);
  if (t.kind === "plain" || t.kind === "hold") assert.equal(b.code, t.code, `${what} code`);
  assert.equal(b.pending, t.kind === "hold", `${what} pending`);
  assert.equal(b.post_pending_id ?? null, t.kind === "post" ? t.pendingId : null, `${what} post_pending_id`);
  assert.equal(b.void_pending_id ?? null, t.kind === "void" ? t.pendingId : null, `${what} void_pending_id`);
  assert.equal(b.linked, t.linked, `${what} linked`);
  assert.equal(b.timeout_seconds, t.timeoutSeconds, `${what} timeout_seconds`);
  assert.equal(b.reference ?? null, t.reference, `${what} reference`);
  if (t.kind === "hold") assert.equal(b.status, t.holdState, `${what} status (invariant 4)`);
  if (t.kind === "plain") assert.equal(b.status, "posted", `${what} status`);
  const ts = parseUtcUs(b.timestamp);
  if (t.ts !== null) assert.equal(ts, t.ts, `${what} timestamp`);
  if (t.kind === "hold" && t.timeoutSeconds > 0) {
    assert.equal(parseUtcUs(b.expires_at), ts + BigInt(t.timeoutSeconds) * 1_000_000n, `${what} expires_at`);
  }
  return ts;
}

/** Invariants 1 and 2 on what the server says, then each account against the model. */
async function checkAccounts(run: Run): Promise<void> {
  const sums = new Map<string, Record<string, bigint>>();
  const read: Array<{ id: string; body: any; fields: Record<string, bigint> }> = [];
  for (const id of run.accountIds) {
    const res = await get(run, `/v1/ledger/accounts/${id}`);
    assert.equal(res.status, 200, res.text);
    const fields = balanceFields(res.body, `account ${id}`);
    read.push({ id, body: res.body, fields });
    run.serverBalances.set(id, fields);
    const sum = sums.get(res.body.currency) ?? { debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n };
    for (const f of Object.keys(sum)) sum[f]! += fields[f]!;
    sums.set(res.body.currency, sum);
  }
  for (const [currency, s] of sums) {
    assert.equal(s.debits_posted, s.credits_posted, `invariant 1: Σ debits_posted = Σ credits_posted in ${currency}`);
    assert.equal(s.debits_pending, s.credits_pending, `invariant 1: Σ debits_pending = Σ credits_pending in ${currency}`);
  }
  for (const { id, body, fields } of read) {
    if (body.flags.debits_must_not_exceed_credits) {
      assert.ok(fields.debits_pending! + fields.debits_posted! <= fields.credits_posted!, `invariant 2: ${id} debits within credits`);
    }
    if (body.flags.credits_must_not_exceed_debits) {
      assert.ok(fields.credits_pending! + fields.credits_posted! <= fields.debits_posted!, `invariant 2: ${id} credits within debits`);
    }
  }
  for (const { id, fields } of read) {
    const a = run.model.accounts.get(id)!;
    assert.deepEqual(fields, expectedFields(a.normalBalance, a.balances), `invariant 3: balances of ${id} agree with the model`);
  }
}

/** The account's history, newest first, with `balance_after` (invariant 3). */
async function checkHistory(run: Run, id: string): Promise<void> {
  const account = run.model.accounts.get(id)!;
  const expected = transfersOf(run.model, id).reverse();
  const entries: any[] = [];
  let cursor: string | undefined;
  for (let page = 0; ; page++) {
    assert.ok(page <= expected.length, `the history of ${id} ends`);
    const res = await get(run, `/v1/ledger/accounts/${id}/transfers?limit=${run.pageSize}${cursor ? `&starting_after=${cursor}` : ""}`);
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.data.length <= run.pageSize, "a page holds at most `limit` transfers");
    entries.push(...res.body.data);
    if (!res.body.has_more) break;
    assert.ok(res.body.data.length > 0, "has_more comes with data");
    cursor = res.body.data.at(-1).id;
  }
  assert.deepEqual(entries.map((e) => e.id), expected.map((t) => t.id), `the history of ${id}, newest first`);
  entries.forEach((e, i) => {
    const t = expected[i]!;
    const after = t.debitAccountId === id ? t.debitAfter : t.creditAfter;
    assert.deepEqual(
      balanceFields(e.balance_after, `balance_after of ${t.id}`),
      expectedFields(account.normalBalance, after),
      `invariant 3: balance_after of ${t.id} in the history of ${id}`,
    );
    assert.equal(parseUtcUs(e.timestamp), t.ts, `timestamp of ${t.id} in the history of ${id}`);
  });
  // With no expiry since its newest transfer, an account stands as that transfer left it.
  const newest = expected[0];
  const current = run.serverBalances.get(id)!;
  if (!newest) {
    assert.deepEqual(current, expectedFields(account.normalBalance, zeroBalances()), `${id} has no transfers and no balance`);
    return;
  }
  const expiredSince = run.model.order.some(
    (h) => h.holdState === "expired" && h.expiredAfterSeq! > newest.seq && (h.debitAccountId === id || h.creditAccountId === id),
  );
  if (!expiredSince) {
    assert.deepEqual(balanceFields(entries[0].balance_after, "newest balance_after"), current, `invariant 3: ${id} stands as its newest transfer left it`);
  }
}

interface Moment {
  readonly accountId: string;
  readonly atUs: bigint;
}

/** Invariant 7: `balance?at=T` equals the model's sum of transfers up to T, less holds expired by T. */
async function checkMoments(run: Run, moments: readonly Moment[]): Promise<void> {
  const nowUs = run.h.clock.nowUs();
  const seen = new Set<string>();
  for (const { accountId, atUs } of moments) {
    const key = `${accountId}@${atUs}`;
    if (atUs > nowUs || atUs < 0n || seen.has(key)) continue;
    seen.add(key);
    const at = formatUs(atUs, atUs % 3n === 0n ? 480 : 0);
    const res = await get(run, `/v1/ledger/accounts/${accountId}/balance?at=${encodeURIComponent(at)}`);
    assert.equal(res.status, 200, res.text);
    const a = run.model.accounts.get(accountId)!;
    assert.deepEqual(
      balanceFields(res.body, `balance of ${accountId} at ${at}`),
      expectedFields(a.normalBalance, balancesAt(run.model, accountId, atUs)),
      `invariant 7: balance of ${accountId} at ${at}`,
    );
  }
}

/** The model's running balances and its sum of transfers must agree (a check of the model itself). */
function checkModelItself(run: Run): void {
  // Timestamps may run a little ahead of the clock (last + 1 µs).
  const latestUs = maxBig(run.h.clock.nowUs(), run.h.lastTimestampUs);
  for (const [id, a] of run.model.accounts) {
    assert.deepEqual(balancesAt(run.model, id, latestUs), a.balances, `reference model self-check for ${id}`);
  }
}

function randomMoments(run: Run, count: number): Moment[] {
  const order = run.model.order;
  const out: Moment[] = [];
  for (let i = 0; i < count && order.length > 0; i++) {
    const t = order[Math.floor(run.random() * order.length)]!;
    const accountId = run.accountIds[Math.floor(run.random() * run.accountIds.length)]!;
    out.push({ accountId, atUs: t.ts! + BigInt(Math.floor(run.random() * 3)) - 1n });
  }
  return out;
}

function deadlineMoments(hold: ModelTransfer): Moment[] {
  const deadline = deadlineUs(hold)!;
  return [-1n, 0n, 1n].flatMap((d) => [
    { accountId: hold.debitAccountId, atUs: deadline + d },
    { accountId: hold.creditAccountId, atUs: deadline + d },
  ]);
}

// ---------------------------------------------------------------------------------------------
// Steps.

/** Moves the clock, runs the expiry sweep and checks what expired. */
async function advance(run: Run, ms: number): Promise<void> {
  const { clock, app } = run.h;
  clock.advanceMs(ms);
  const nowUs = clock.nowUs();
  const expiredCount = await app.tally.engine.tick();
  run.h.timestampBoundUs = maxBig(run.h.timestampBoundUs, nowUs) + BigInt(expiredCount);
  const expired = expireDue(run.model, nowUs);
  assert.equal(expiredCount, expired.length, "the sweep expires exactly the holds whose deadline has come");
  for (const hold of expired) await checkTransfer(run, hold);
  await checkAccounts(run);
  const touched = new Set(expired.flatMap((h) => [h.debitAccountId, h.creditAccountId]));
  for (const id of touched) await checkHistory(run, id);
  await checkMoments(run, [...expired.flatMap(deadlineMoments), ...randomMoments(run, 2)]);
}

/** Moves the clock to a pending hold's deadline (rounded up to a millisecond), give or take. */
async function toDeadline(run: Run, step: Extract<Step, { kind: "deadline" }>): Promise<void> {
  const all = run.model.order.filter((t) => t.holdState === "pending").map(deadlineUs).filter((d): d is bigint => d !== null);
  // The clock moves by whole milliseconds: prefer deadlines it can meet exactly.
  const exact = all.filter((d) => d % 1000n === run.h.clock.nowUs() % 1000n);
  const deadlines = exact.length > 0 && step.index % 2 === 0 ? exact : all;
  const nowUs = run.h.clock.nowUs();
  if (deadlines.length === 0) return advance(run, 1);
  const deadline = deadlines[step.index % deadlines.length]!;
  const ms = Number((deadline - nowUs + 999n) / 1000n) + step.deltaMs;
  await advance(run, Math.max(1, ms));
}

/**
 * A post or void at the deadline of its hold or later gets `pending_transfer_expired`; the ledger
 * timestamp it would get is the clock or a little later (last + 1 µs), which the test does not
 * know to the microsecond. Before a step, move the clock past any deadline that falls into that
 * small window, so every outcome is certain.
 */
async function avoidUncertainDeadlines(run: Run, transfers: number): Promise<void> {
  for (;;) {
    const nowUs = run.h.clock.nowUs();
    const latestPossibleUs = maxBig(run.h.timestampBoundUs, nowUs) + BigInt(transfers) + 1n;
    let uncertain: bigint | null = null;
    for (const t of run.model.order) {
      if (t.kind !== "hold" || t.holdState !== "pending") continue;
      const deadline = deadlineUs(t);
      if (deadline !== null && deadline > nowUs && deadline <= latestPossibleUs && (uncertain === null || deadline > uncertain)) {
        uncertain = deadline;
      }
    }
    if (uncertain === null) return;
    await advance(run, Number((uncertain - nowUs + 999n) / 1000n));
  }
}

function expectedOutcome(result: TransferResult): string {
  if (result === "created" || result === "exists") return result;
  return `${result === "exists_with_different_fields" ? 409 : 422} ${result}`;
}

function actualOutcome(res: TestResponse): string {
  if (res.status === 201) return "created";
  if (res.status === 200) return "exists";
  return `${res.status} ${res.body?.error?.code}`;
}

async function transfersStep(run: Run, items: readonly Item[], single: boolean): Promise<void> {
  const requests: TransferRequest[] = [];
  for (const item of items) requests.push(build(run, item, requests));
  await sendTransfers(run, requests, requests.map((r, i) => bodyOf(r, items[i]!.surface)), single);
}

/** Sends the requests (one, or a batch), predicts every outcome with the model and checks it. */
async function sendTransfers(run: Run, requests: readonly TransferRequest[], bodies: readonly unknown[], single: boolean): Promise<void> {
  await avoidUncertainDeadlines(run, requests.length);

  const { clock, app } = run.h;
  const nowUs = clock.nowUs();
  const firstSeq = run.model.order.length;
  const swept = expireDue(run.model, nowUs);
  run.h.timestampBoundUs = maxBig(run.h.timestampBoundUs, nowUs) + BigInt(requests.length + swept.length);
  const expected = applyBatch(run.model, requests, nowUs);
  run.sent.push(...requests);
  for (const [i, r] of expected.entries()) {
    resultCounts.set(r, (resultCounts.get(r) ?? 0) + 1);
    if (r === "created") run.createdRequests.set(requests[i]!.id, requests[i]!);
  }

  let singleTimestamp: bigint | null = null;
  if (single) {
    const res = await app.request("POST", "/v1/ledger/transfers", bodies[0]);
    assert.equal(actualOutcome(res), expectedOutcome(expected[0]!), `POST /v1/ledger/transfers ${JSON.stringify(bodies[0])}: ${res.text}`);
    if (res.status === 201 || res.status === 200) {
      assert.equal(res.body.id, requests[0]!.id);
      singleTimestamp = parseUtcUs(res.body.timestamp);
    }
    if (res.status === 200) assert.equal(singleTimestamp, run.model.transfers.get(requests[0]!.id)!.ts, "`exists` answers with the stored transfer");
  } else {
    const res = await app.request("POST", "/v1/ledger/transfers/batch", { transfers: bodies });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(
      res.body.results.map((r: any) => `${r.id} ${r.result}`),
      requests.map((r, i) => `${r.id} ${expected[i]}`),
      `batch results for ${JSON.stringify(bodies)}`,
    );
  }

  // Learn the timestamps of the created transfers: unique, strictly increasing in order of
  // application, and (with a manual clock) the clock time or just after it.
  const created = run.model.order.slice(firstSeq);
  let previous = run.h.lastTimestampUs;
  for (const t of created) {
    const ts = await checkTransfer(run, t);
    assert.ok(ts > previous, `timestamps strictly increase (${t.id})`);
    assert.ok(ts >= nowUs && ts <= run.h.timestampBoundUs, `${t.id}: the timestamp is the clock time or just after it`);
    t.ts = ts;
    previous = ts;
  }
  run.h.lastTimestampUs = previous;
  if (singleTimestamp !== null && expected[0] === "created") assert.equal(singleTimestamp, created[0]!.ts);

  const checked = new Set(created.map((t) => t.id));
  for (const [i, r] of requests.entries()) {
    if (checked.has(r.id)) continue;
    checked.add(r.id);
    const stored = run.model.transfers.get(r.id);
    if (stored) {
      await checkTransfer(run, stored); // a replay or a clash left the stored transfer as it was
    } else {
      const res = await get(run, `/v1/ledger/transfers/${r.id}`);
      assert.equal(res.status, 404, `invariant 5: rejected ${r.id} (${expected[i]}) does not exist`);
    }
  }
  for (const t of created) {
    if (t.pendingId !== null) await checkTransfer(run, run.model.transfers.get(t.pendingId)!);
  }
  checkModelItself(run);

  await checkAccounts(run);
  const touched = new Set(created.flatMap((t) => [t.debitAccountId, t.creditAccountId]));
  for (const id of touched) await checkHistory(run, id);
  // A long batch is sampled here; the end of the workload reads every moment back.
  const sample = created.length <= 8 ? created : created.filter((_, i) => i === 0 || i === created.length - 1 || run.random() < 0.1);
  const moments: Moment[] = sample.flatMap((t) => [
    { accountId: t.debitAccountId, atUs: t.ts! },
    { accountId: t.creditAccountId, atUs: t.ts! },
    { accountId: t.debitAccountId, atUs: t.ts! - 1n },
  ]);
  await checkMoments(run, [...moments, ...randomMoments(run, 2)]);
}

function burstItems(step: Extract<Step, { kind: "burst" }>): Item[] {
  const surface: Surface = { amountAsString: false, explicitDefaults: false, reverseMetadata: false };
  return Array.from({ length: step.count }, (_, i): Item => ({
    linked: false,
    surface,
    spec: {
      kind: "new",
      debit: 0,
      credit: step.credit + i,
      sameAccount: false,
      anyCurrency: false,
      amount: BigInt(1 + (i % 5)),
      brim: "no",
      hold: step.holds && i % 4 === 0,
      timeoutSeconds: i % 8 === 0 ? 2 : 0,
      code: 0,
      otherCurrency: false,
      unknownDebit: false,
      unknownCredit: false,
      reference: null,
      metadata: null,
    },
  }));
}

/** A batch with one item that fails schema validation is rejected whole and changes nothing. */
async function invalidStep(run: Run, step: Extract<Step, { kind: "invalid" }>): Promise<void> {
  const requests: TransferRequest[] = [];
  for (const item of step.items) requests.push(build(run, item, requests));
  const bodies = requests.map((r, i) => bodyOf(r, step.items[i]!.surface));
  const bad = step.bad % bodies.length;
  bodies[bad] = { ...bodies[bad], amount: step.badAmount };
  const res = await run.h.app.request("POST", "/v1/ledger/transfers/batch", { transfers: bodies });
  assert.equal(res.status, 400, res.text);
  assert.equal(res.body.error.code, "validation_failed");
  assert.match(String(res.body.error.param), new RegExp(`${bad}\\D*amount$`), "param names the bad amount");
  for (const r of requests) {
    const stored = run.model.transfers.get(r.id);
    if (stored) await checkTransfer(run, stored);
    else assert.equal((await get(run, `/v1/ledger/transfers/${r.id}`)).status, 404, `${r.id} of a rejected batch does not exist`);
  }
  await checkAccounts(run);
}

async function runWorkload(h: Harness, w: Workload): Promise<void> {
  h.runs++;
  const startedMs = Date.now();
  try {
    await runWorkloadSteps(h, w);
  } finally {
    if (process.env.TALLY_PROPERTY_DEBUG) console.error(`run ${h.runs}: ${w.steps.length} steps in ${Date.now() - startedMs} ms`);
  }
}

async function runWorkloadSteps(h: Harness, w: Workload): Promise<void> {
  const run: Run = {
    h,
    prefix: `r${h.runs}`,
    model: emptyModel(),
    accountIds: [],
    sent: [],
    createdRequests: new Map(),
    pageSize: w.pageSize,
    random: mulberry32(w.salt),
    serverBalances: new Map(),
    startUs: 0n,
    nextId: 0,
  };
  // Whatever an earlier (perhaps failed) workload left pending expires now.
  h.clock.advanceMs((TIMEOUT_SECONDS_MAX + 1) * 1000);
  const leftovers = await h.app.tally.engine.tick();
  h.timestampBoundUs = maxBig(h.timestampBoundUs, h.clock.nowUs()) + BigInt(leftovers);

  // Funding accounts in both currencies and a wallet that cannot overdraw, then the generated ones.
  const specs: AccountSpec[] = [
    { currency: "CNY", normalBalance: "debit", flags: "none" },
    { currency: "CNY", normalBalance: "credit", flags: "debits" },
    { currency: "USD", normalBalance: "debit", flags: "none" },
    ...w.accounts,
  ];
  for (const [i, spec] of specs.entries()) {
    const id = `${run.prefix}.a${i}`;
    const flags = {
      debits_must_not_exceed_credits: spec.flags === "debits" || spec.flags === "both",
      credits_must_not_exceed_debits: spec.flags === "credits" || spec.flags === "both",
    };
    const res = await h.app.request("POST", "/v1/ledger/accounts", { id, currency: spec.currency, normal_balance: spec.normalBalance, flags });
    assert.equal(res.status, 201, res.text);
    addAccount(run.model, {
      id,
      currency: spec.currency,
      normalBalance: spec.normalBalance,
      debitsMustNotExceedCredits: flags.debits_must_not_exceed_credits,
      creditsMustNotExceedDebits: flags.credits_must_not_exceed_debits,
    });
    run.accountIds.push(id);
  }
  run.startUs = h.clock.nowUs();

  // Give every account with a limit some room: credits for `debits_must_not_exceed_credits`,
  // debits for `credits_must_not_exceed_debits`.
  const funding: TransferRequest[] = [];
  for (const [i, spec] of specs.entries()) {
    const id = run.accountIds[i]!;
    const bank = spec.currency === "CNY" ? run.accountIds[0]! : run.accountIds[2]!;
    const amount = BigInt(w.fundingAmount);
    if (spec.flags === "debits") funding.push({ id: nextTransferId(run), debitAccountId: bank, creditAccountId: id, amount, currency: spec.currency });
    if (spec.flags === "credits") funding.push({ id: nextTransferId(run), debitAccountId: id, creditAccountId: bank, amount, currency: spec.currency });
  }
  const plain: Surface = { amountAsString: false, explicitDefaults: false, reverseMetadata: false };
  if (funding.length > 0) await sendTransfers(run, funding, funding.map((r) => bodyOf(r, plain)), false);

  for (const [i, step] of w.steps.entries()) {
    try {
      if (step.kind === "advance") await advance(run, step.ms);
      else if (step.kind === "deadline") await toDeadline(run, step);
      else if (step.kind === "single") await transfersStep(run, [step.item], true);
      else if (step.kind === "batch") await transfersStep(run, step.items, false);
      else if (step.kind === "burst") await transfersStep(run, burstItems(step), false);
      else await invalidStep(run, step);
    } catch (error) {
      if (error instanceof Error) error.message = `[${run.prefix} step ${i}: ${step.kind}] ${error.message}`;
      throw error;
    }
  }

  // The end: every hold's deadline passes, then the whole history is read back.
  await advance(run, (TIMEOUT_SECONDS_MAX + 1) * 1000);
  for (const t of run.model.order) {
    if (t.kind === "hold" && t.timeoutSeconds > 0) assert.notEqual(t.holdState, "pending", "every hold with a deadline resolves");
    await checkTransfer(run, t);
  }
  for (const id of run.accountIds) {
    await checkHistory(run, id);
    const now = await get(run, `/v1/ledger/accounts/${id}/balance`);
    assert.deepEqual(balanceFields(now.body, `balance of ${id}`), run.serverBalances.get(id), `balance of ${id} without at is the account's`);
  }
  const moments: Moment[] = run.accountIds.map((accountId) => ({ accountId, atUs: run.startUs - 1n }));
  let previous: ModelTransfer | undefined;
  for (const t of run.model.order) {
    moments.push({ accountId: t.debitAccountId, atUs: t.ts! }, { accountId: t.creditAccountId, atUs: t.ts! });
    if (previous) moments.push({ accountId: t.debitAccountId, atUs: (previous.ts! + t.ts!) / 2n });
    if (t.holdState === "expired") moments.push(...deadlineMoments(t));
    previous = t;
  }
  await checkMoments(run, moments);
}

for (const dialect of DIALECTS) {
  describe(`ledger properties on ${dialect}`, () => {
    let harness: Harness;
    before(async () => {
      const clock = new ManualClock();
      const app = await startTestApp({ dialect, clock, label: "properties" });
      harness = { app, clock, runs: 0, timestampBoundUs: 0n, lastTimestampUs: 0n };
    });
    after(async () => {
      if (process.env.TALLY_PROPERTY_DEBUG) console.error(JSON.stringify(Object.fromEntries([...resultCounts].sort())));
      await harness.app.close();
    });

    test("random workloads agree with the reference model and keep invariants 1-7", async () => {
      let firstFailureAtMs: number | null = null;
      await fc.assert(
        fc.asyncProperty(workloadArb, async (workload) => {
          // Past the shrinking budget every candidate passes, so fast-check reports the smallest
          // failing workload found so far.
          if (firstFailureAtMs !== null && Date.now() - firstFailureAtMs > SHRINK_TIME_MAX_MS) return;
          try {
            await runWorkload(harness, workload);
          } catch (error) {
            firstFailureAtMs ??= Date.now();
            throw error;
          }
        }),
        { numRuns: RUNS, seed: SEED, includeErrorInReport: true },
      );
    });

    // The smallest workload the property found for a chain that replays its own transfer.
    test("a replay inside a failed linked chain of a transfer the chain created is linked_event_failed", async () => {
      const { app, clock } = harness;
      const p = `chain-replay`;
      for (const id of [`${p}.bank`, `${p}.wallet`]) {
        assert.equal((await app.request("POST", "/v1/ledger/accounts", { id, currency: "CNY" })).status, 201);
      }
      harness.timestampBoundUs = maxBig(harness.timestampBoundUs, clock.nowUs()) + 3n;
      const a = { id: `${p}.a`, debit_account_id: `${p}.bank`, credit_account_id: `${p}.wallet`, amount: 100, currency: "CNY", linked: true };
      const res = await app.request("POST", "/v1/ledger/transfers/batch", {
        transfers: [a, a, { id: `${p}.b`, debit_account_id: `${p}.bank`, credit_account_id: `${p}.nobody`, amount: 1, currency: "CNY" }],
      });
      assert.equal(res.status, 200, res.text);
      // The chain changed nothing, so no transfer `a` exists: the second `a` cannot be `exists`.
      assert.equal((await app.request("GET", `/v1/ledger/transfers/${p}.a`)).status, 404);
      assert.equal((await app.request("GET", `/v1/ledger/accounts/${p}.wallet`)).body.credits_posted, 0);
      assert.deepEqual(
        res.body.results.map((r: any) => r.result),
        ["linked_event_failed", "linked_event_failed", "credit_account_not_found"],
      );
    });
  });
}
