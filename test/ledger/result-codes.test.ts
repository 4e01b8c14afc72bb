// Every transfer result code of LEDGER.md through the HTTP API: one table row per code (and per
// pair of rules violated at once, where the earlier code in LEDGER.md's list must win), with the
// single endpoint's HTTP status, and proof that a rejected transfer changed nothing. A second table
// covers every schema validation error of the ledger endpoints (400 validation_failed + param).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createTally } from "../../src/app.ts";
import { ManualClock } from "../../src/kernel/clock.ts";
import { TRANSFER_RESULTS } from "../../src/ledger/model.ts";
import { createLogger } from "../../src/ops/logger.ts";
import { DIALECTS } from "../support/databases.ts";
import { ADMIN_KEY, startTestApp, type TestApp } from "../support/app.ts";

/** LEDGER.md's closed list of result codes, in its order of precedence. */
const RESULT_CODES = [
  "created",
  "exists",
  "exists_with_different_fields",
  "linked_event_failed",
  "linked_event_chain_open",
  "accounts_must_be_different",
  "debit_account_not_found",
  "credit_account_not_found",
  "currency_mismatch",
  "pending_transfer_not_found",
  "pending_transfer_not_pending",
  "pending_transfer_has_different_fields",
  "pending_transfer_already_posted",
  "pending_transfer_already_voided",
  "pending_transfer_expired",
  "exceeds_pending_transfer_amount",
  "exceeds_credits",
  "exceeds_debits",
  "overflow",
] as const;
type ResultCode = (typeof RESULT_CODES)[number];

const TRANSFERS_URL = "/v1/ledger/transfers";
const BATCH_URL = "/v1/ledger/transfers/batch";

/** The ledger's balance maximum (config `balanceMax`), sent as a digit string as the contract allows. */
const BALANCE_MAX_MINOR = 2n ** 53n - 1n;
const MAX = BALANCE_MAX_MINOR.toString();
const HOLD_TIMEOUT_SECONDS = 60;
const PAST_DEADLINE_MS = (HOLD_TIMEOUT_SECONDS + 1) * 1000;

type Body = Record<string, unknown>;

/** Accounts every row starts with (ids are scoped per row). */
const ACCOUNTS = [
  { id: "bank", currency: "CNY", normal_balance: "debit" },
  { id: "clearing", currency: "CNY", normal_balance: "debit" },
  { id: "wallet", currency: "CNY", flags: { debits_must_not_exceed_credits: true } },
  { id: "shop", currency: "CNY" },
  { id: "capped", currency: "CNY", flags: { credits_must_not_exceed_debits: true } },
  { id: "usd", currency: "USD" },
] as const;

function normalOf(localId: string): "debit" | "credit" {
  const account = ACCOUNTS.find((a) => a.id === localId);
  assert.ok(account, `unknown account ${localId}`);
  return "normal_balance" in account ? account.normal_balance : "credit";
}

const pay = (id: string, debit: string, credit: string, amount: number | string = 100, extra: Body = {}): Body => ({
  id, debit_account_id: debit, credit_account_id: credit, amount, currency: "CNY", ...extra,
});
const hold = (id: string, debit: string, credit: string, amount: number | string = 100, extra: Body = {}): Body =>
  pay(id, debit, credit, amount, { pending: true, ...extra });
const post = (id: string, holdId: string, extra: Body = {}): Body => ({ id, post_pending_id: holdId, ...extra });
const voidOf = (id: string, holdId: string, extra: Body = {}): Body => ({ id, void_pending_id: holdId, ...extra });

type Step = Body | readonly Body[];
const isBatch = (step: Step): step is readonly Body[] => Array.isArray(step);

interface Row {
  readonly name: string;
  /** Setup after the accounts: each step must be created (a list is one batch request). */
  readonly prior?: readonly Step[];
  /** Moves the clock after the setup, then runs one engine batch so due holds expire. */
  readonly advanceMs?: number;
  /** One transfer (single endpoint) or a list (batch endpoint). */
  readonly send: Step;
  readonly expect: ResultCode | readonly ResultCode[];
  /**
   * Precedence rows: the same request with the winning violation removed yields the later code,
   * which shows that both rules were violated at once.
   */
  readonly loser?: { readonly code: ResultCode; readonly send: Body };
  /** Statuses the (scoped) transfers read afterwards. */
  readonly statuses?: Readonly<Record<string, string>>;
}

const ROWS: readonly Row[] = [
  // created
  { name: "created: a plain transfer", send: pay("t", "bank", "wallet", 100), expect: "created" },
  { name: "created: an amount sent as a digit string", send: pay("t", "bank", "shop", "250"), expect: "created" },
  {
    name: "created: a flagged account spends exactly what a hold left available",
    prior: [pay("fund", "bank", "wallet", 100), hold("h", "wallet", "shop", 60)],
    send: pay("t", "wallet", "shop", 40),
    expect: "created",
  },

  // exists
  { name: "exists: the same transfer again", prior: [pay("t", "bank", "wallet", 100)], send: pay("t", "bank", "wallet", 100), expect: "exists" },
  {
    name: "exists: a digit string equals the integer, omitted optionals equal their defaults",
    prior: [pay("t", "bank", "wallet", 100, { code: 0, pending: false, linked: false, timeout_seconds: 0, metadata: {}, reference: "r" })],
    send: pay("t", "bank", "wallet", "100", { reference: "r" }),
    expect: "exists",
  },
  {
    name: "exists: the identical post request again, for a hold with a code",
    prior: [hold("h", "bank", "wallet", 100, { code: 5 }), post("p", "h")],
    send: post("p", "h"),
    expect: "exists",
  },
  {
    name: "precedence: exists over pending_transfer_already_posted",
    prior: [hold("h", "bank", "wallet", 100), post("p", "h")],
    send: post("p", "h"),
    expect: "exists",
    loser: { code: "pending_transfer_already_posted", send: post("p2", "h") },
  },
  {
    name: "precedence: exists over linked_event_chain_open",
    prior: [[pay("a", "bank", "wallet", 100, { linked: true }), pay("b", "bank", "shop", 100)]],
    send: pay("a", "bank", "wallet", 100, { linked: true }),
    expect: "exists",
    loser: { code: "linked_event_chain_open", send: pay("a2", "bank", "wallet", 100, { linked: true }) },
  },

  // exists_with_different_fields
  {
    name: "exists_with_different_fields: same id, another amount",
    prior: [pay("t", "bank", "wallet", 100)],
    send: pay("t", "bank", "wallet", 101),
    expect: "exists_with_different_fields",
  },
  {
    name: "exists_with_different_fields: same id, another reference",
    prior: [pay("t", "bank", "wallet", 100, { reference: "a" })],
    send: pay("t", "bank", "wallet", 100, { reference: "b" }),
    expect: "exists_with_different_fields",
  },
  {
    name: "exists_with_different_fields: a post replayed with another amount",
    prior: [hold("h", "bank", "wallet", 100), post("p", "h", { amount: 40 })],
    send: post("p", "h", { amount: 50 }),
    expect: "exists_with_different_fields",
  },
  {
    name: "precedence: exists_with_different_fields over linked_event_chain_open",
    prior: [pay("t", "bank", "wallet", 100)],
    send: pay("t", "bank", "wallet", 100, { linked: true }),
    expect: "exists_with_different_fields",
    loser: { code: "linked_event_chain_open", send: pay("t2", "bank", "wallet", 100, { linked: true }) },
  },
  {
    name: "precedence: exists_with_different_fields over accounts_must_be_different",
    prior: [pay("t", "bank", "wallet", 100)],
    send: pay("t", "wallet", "wallet", 100),
    expect: "exists_with_different_fields",
    loser: { code: "accounts_must_be_different", send: pay("t2", "wallet", "wallet", 100) },
  },

  // linked_event_failed (batch only)
  {
    name: "linked_event_failed: a chain whose 2nd member fails applies nothing",
    send: [
      pay("a", "bank", "wallet", 100, { linked: true }),
      pay("b", "wallet", "shop", 1000, { linked: true }),
      pay("c", "bank", "shop", 5),
    ],
    expect: ["linked_event_failed", "exceeds_credits", "linked_event_failed"],
  },
  {
    name: "linked_event_failed: members after the failing one are not applied, even if invalid",
    send: [
      pay("a", "bank", "wallet", 100, { linked: true }),
      pay("b", "ghost", "wallet", 1, { linked: true }),
      pay("c", "bank", "ghost", 5),
    ],
    expect: ["linked_event_failed", "debit_account_not_found", "linked_event_failed"],
  },
  {
    name: "linked_event_failed: a chain that creates and posts a hold, then fails, leaves nothing",
    send: [
      hold("h", "bank", "wallet", 100, { linked: true }),
      post("p", "h", { linked: true }),
      pay("x", "wallet", "shop", 1000),
    ],
    expect: ["linked_event_failed", "linked_event_failed", "exceeds_credits"],
  },
  {
    name: "linked_event_failed: a failing chain undoes its post of an earlier hold",
    prior: [hold("h", "bank", "wallet", 100)],
    send: [post("p", "h", { linked: true }), pay("x", "ghost", "wallet", 1)],
    expect: ["linked_event_failed", "debit_account_not_found"],
    statuses: { h: "pending" },
  },
  {
    name: "exists_with_different_fields in a chain fails the rest of it",
    prior: [pay("a", "bank", "wallet", 100)],
    send: [pay("a", "bank", "wallet", 999, { linked: true }), pay("c", "bank", "shop", 5)],
    expect: ["exists_with_different_fields", "linked_event_failed"],
  },

  // linked_event_chain_open
  {
    name: "linked_event_chain_open: a single transfer with linked: true",
    send: pay("t", "bank", "wallet", 100, { linked: true }),
    expect: "linked_event_chain_open",
  },
  {
    name: "linked_event_chain_open: a batch ending with linked: true",
    send: [pay("t1", "bank", "wallet", 10), pay("t2", "bank", "wallet", 20, { linked: true }), pay("t3", "bank", "shop", 30, { linked: true })],
    expect: ["created", "linked_event_failed", "linked_event_chain_open"],
  },
  {
    name: "linked_event_chain_open: a one-transfer batch with linked: true",
    send: [pay("t", "bank", "wallet", 100, { linked: true })],
    expect: ["linked_event_chain_open"],
  },
  {
    name: "precedence: linked_event_chain_open over accounts_must_be_different",
    send: pay("t", "wallet", "wallet", 100, { linked: true }),
    expect: "linked_event_chain_open",
    loser: { code: "accounts_must_be_different", send: pay("t2", "wallet", "wallet", 100) },
  },

  // exists in chains
  {
    name: "exists: replaying an entire successful chain gives exists for every member",
    prior: [[pay("a", "bank", "wallet", 100, { linked: true }), hold("h", "bank", "shop", 50, { linked: true }), post("p", "h")]],
    send: [pay("a", "bank", "wallet", 100, { linked: true }), hold("h", "bank", "shop", 50, { linked: true }), post("p", "h")],
    expect: ["exists", "exists", "exists"],
  },
  {
    name: "exists does not fail a chain",
    prior: [[pay("a", "bank", "wallet", 100, { linked: true }), pay("b", "bank", "shop", 10)]],
    send: [pay("a", "bank", "wallet", 100, { linked: true }), pay("c", "bank", "shop", 7)],
    expect: ["exists", "created"],
  },
  {
    name: "exists keeps its result when its chain fails",
    prior: [[pay("a", "bank", "wallet", 100, { linked: true }), pay("b", "bank", "shop", 10)]],
    send: [pay("a", "bank", "wallet", 100, { linked: true }), pay("x", "ghost", "shop", 1, { linked: true }), pay("y", "bank", "shop", 2)],
    expect: ["exists", "debit_account_not_found", "linked_event_failed"],
  },

  // accounts_must_be_different
  { name: "accounts_must_be_different", send: pay("t", "wallet", "wallet", 100), expect: "accounts_must_be_different" },
  {
    name: "precedence: accounts_must_be_different over debit_account_not_found",
    send: pay("t", "ghost", "ghost", 100),
    expect: "accounts_must_be_different",
    loser: { code: "debit_account_not_found", send: pay("t2", "ghost", "ghost2", 100) },
  },

  // debit_account_not_found / credit_account_not_found
  { name: "debit_account_not_found", send: pay("t", "ghost", "wallet", 100), expect: "debit_account_not_found" },
  {
    name: "precedence: debit_account_not_found over credit_account_not_found",
    send: pay("t", "ghost", "ghost2", 100),
    expect: "debit_account_not_found",
    loser: { code: "credit_account_not_found", send: pay("t2", "bank", "ghost2", 100) },
  },
  { name: "credit_account_not_found", send: pay("t", "bank", "ghost", 100), expect: "credit_account_not_found" },
  {
    name: "precedence: credit_account_not_found over currency_mismatch",
    send: pay("t", "bank", "ghost", 100, { currency: "USD" }),
    expect: "credit_account_not_found",
    loser: { code: "currency_mismatch", send: pay("t2", "bank", "wallet", 100, { currency: "USD" }) },
  },

  // currency_mismatch
  { name: "currency_mismatch: the credit account has another currency", send: pay("t", "bank", "usd", 100), expect: "currency_mismatch" },
  {
    name: "currency_mismatch: the transfer's currency is neither account's",
    send: pay("t", "bank", "wallet", 100, { currency: "EUR" }),
    expect: "currency_mismatch",
  },
  {
    name: "precedence: currency_mismatch over exceeds_credits",
    send: pay("t", "wallet", "usd", 1),
    expect: "currency_mismatch",
    loser: { code: "exceeds_credits", send: pay("t2", "wallet", "shop", 1) },
  },
  {
    name: "precedence: currency_mismatch over pending_transfer_already_posted",
    prior: [hold("h", "bank", "wallet", 100), post("p", "h")],
    send: post("p2", "h", { currency: "USD" }),
    expect: "currency_mismatch",
    loser: { code: "pending_transfer_already_posted", send: post("p3", "h") },
  },

  // pending_transfer_not_found: the hold is looked up before anything about the given accounts.
  { name: "pending_transfer_not_found: post", send: post("p", "ghost"), expect: "pending_transfer_not_found" },
  { name: "pending_transfer_not_found: void", send: voidOf("v", "ghost"), expect: "pending_transfer_not_found" },
  {
    name: "pending_transfer_not_found whatever unknown accounts and currency are given",
    send: post("p", "ghost", { debit_account_id: "nobody", credit_account_id: "nobody2", currency: "USD", amount: 5 }),
    expect: "pending_transfer_not_found",
  },
  {
    name: "pending_transfer_not_found even with equal accounts given",
    send: post("p", "ghost", { debit_account_id: "wallet", credit_account_id: "wallet" }),
    expect: "pending_transfer_not_found",
  },

  // pending_transfer_not_pending
  {
    name: "pending_transfer_not_pending: post of a plain transfer",
    prior: [pay("t", "bank", "wallet", 100)],
    send: post("p", "t"),
    expect: "pending_transfer_not_pending",
  },
  {
    name: "pending_transfer_not_pending: post of a plain transfer, its accounts given",
    prior: [pay("t", "bank", "wallet", 100)],
    send: post("p", "t", { debit_account_id: "bank", credit_account_id: "wallet" }),
    expect: "pending_transfer_not_pending",
  },
  {
    name: "pending_transfer_not_pending: void of a post",
    prior: [hold("h", "bank", "wallet", 100), post("p", "h")],
    send: voidOf("v", "p"),
    expect: "pending_transfer_not_pending",
  },
  {
    name: "precedence: pending_transfer_not_pending over pending_transfer_has_different_fields",
    prior: [pay("t", "bank", "wallet", 100), hold("h", "bank", "wallet", 100)],
    send: post("p", "t", { code: 7 }),
    expect: "pending_transfer_not_pending",
    loser: { code: "pending_transfer_has_different_fields", send: post("p2", "h", { code: 7 }) },
  },
  {
    name: "precedence: pending_transfer_not_pending over exceeds_pending_transfer_amount",
    prior: [pay("t", "bank", "wallet", 100), hold("h", "bank", "wallet", 100)],
    send: post("p", "t", { amount: 101 }),
    expect: "pending_transfer_not_pending",
    loser: { code: "exceeds_pending_transfer_amount", send: post("p2", "h", { amount: 101 }) },
  },

  // pending_transfer_has_different_fields
  {
    name: "pending_transfer_has_different_fields: another credit account",
    prior: [hold("h", "bank", "wallet", 100)],
    send: post("p", "h", { credit_account_id: "shop" }),
    expect: "pending_transfer_has_different_fields",
  },
  {
    name: "pending_transfer_has_different_fields: another debit account",
    prior: [hold("h", "bank", "wallet", 100)],
    send: post("p", "h", { debit_account_id: "clearing" }),
    expect: "pending_transfer_has_different_fields",
  },
  {
    name: "pending_transfer_has_different_fields: another code",
    prior: [hold("h", "bank", "wallet", 100, { code: 3 })],
    send: post("p", "h", { code: 7 }),
    expect: "pending_transfer_has_different_fields",
  },
  {
    name: "pending_transfer_has_different_fields: a void with another amount",
    prior: [hold("h", "bank", "wallet", 100)],
    send: voidOf("v", "h", { amount: 50 }),
    expect: "pending_transfer_has_different_fields",
  },
  {
    name: "precedence: pending_transfer_has_different_fields over pending_transfer_already_posted",
    prior: [hold("h", "bank", "wallet", 100), post("p", "h")],
    send: post("p2", "h", { code: 7 }),
    expect: "pending_transfer_has_different_fields",
    loser: { code: "pending_transfer_already_posted", send: post("p3", "h") },
  },
  {
    name: "precedence: pending_transfer_has_different_fields over exceeds_pending_transfer_amount",
    prior: [hold("h", "bank", "wallet", 100)],
    send: post("p", "h", { code: 7, amount: 101 }),
    expect: "pending_transfer_has_different_fields",
    loser: { code: "exceeds_pending_transfer_amount", send: post("p2", "h", { amount: 101 }) },
  },

  // pending_transfer_already_posted / already_voided
  {
    name: "pending_transfer_already_posted: a second post",
    prior: [hold("h", "bank", "wallet", 100), post("p", "h", { amount: 40 })],
    send: post("p2", "h", { amount: 10 }),
    expect: "pending_transfer_already_posted",
    statuses: { h: "posted" },
  },
  {
    name: "pending_transfer_already_posted: a void after a post",
    prior: [hold("h", "bank", "wallet", 100), post("p", "h")],
    send: voidOf("v", "h"),
    expect: "pending_transfer_already_posted",
  },
  {
    name: "precedence: pending_transfer_already_posted over exceeds_pending_transfer_amount",
    prior: [hold("h", "bank", "wallet", 100), post("p", "h"), hold("h2", "bank", "wallet", 100)],
    send: post("p2", "h", { amount: 1000 }),
    expect: "pending_transfer_already_posted",
    loser: { code: "exceeds_pending_transfer_amount", send: post("p3", "h2", { amount: 1000 }) },
  },
  {
    name: "pending_transfer_already_voided: a post after a void",
    prior: [hold("h", "bank", "wallet", 100), voidOf("v", "h")],
    send: post("p", "h"),
    expect: "pending_transfer_already_voided",
    statuses: { h: "voided" },
  },
  {
    name: "pending_transfer_already_voided: a second void",
    prior: [hold("h", "bank", "wallet", 100), voidOf("v", "h")],
    send: voidOf("v2", "h"),
    expect: "pending_transfer_already_voided",
  },
  {
    name: "precedence: pending_transfer_already_voided over pending_transfer_expired",
    prior: [
      hold("h", "bank", "wallet", 100, { timeout_seconds: HOLD_TIMEOUT_SECONDS }),
      voidOf("v", "h"),
      hold("h2", "bank", "wallet", 100, { timeout_seconds: HOLD_TIMEOUT_SECONDS }),
    ],
    advanceMs: PAST_DEADLINE_MS,
    send: post("p", "h"),
    expect: "pending_transfer_already_voided",
    loser: { code: "pending_transfer_expired", send: post("p2", "h2") },
    statuses: { h: "voided", h2: "expired" },
  },

  // pending_transfer_expired
  {
    name: "pending_transfer_expired: posting a hold past its deadline",
    prior: [hold("h", "bank", "wallet", 100, { timeout_seconds: HOLD_TIMEOUT_SECONDS })],
    advanceMs: PAST_DEADLINE_MS,
    send: post("p", "h"),
    expect: "pending_transfer_expired",
    statuses: { h: "expired" },
  },
  {
    name: "pending_transfer_expired: voiding a hold past its deadline",
    prior: [hold("h", "bank", "wallet", 100, { timeout_seconds: HOLD_TIMEOUT_SECONDS })],
    advanceMs: PAST_DEADLINE_MS,
    send: voidOf("v", "h"),
    expect: "pending_transfer_expired",
    statuses: { h: "expired" },
  },
  {
    name: "precedence: pending_transfer_expired over exceeds_pending_transfer_amount",
    prior: [hold("h", "bank", "wallet", 100, { timeout_seconds: HOLD_TIMEOUT_SECONDS }), hold("h2", "bank", "wallet", 100)],
    advanceMs: PAST_DEADLINE_MS,
    send: post("p", "h", { amount: 101 }),
    expect: "pending_transfer_expired",
    loser: { code: "exceeds_pending_transfer_amount", send: post("p2", "h2", { amount: 101 }) },
    statuses: { h: "expired", h2: "pending" },
  },

  // exceeds_pending_transfer_amount
  {
    name: "exceeds_pending_transfer_amount",
    prior: [hold("h", "bank", "wallet", 100)],
    send: post("p", "h", { amount: 101 }),
    expect: "exceeds_pending_transfer_amount",
    statuses: { h: "pending" },
  },

  // exceeds_credits
  { name: "exceeds_credits: an empty flagged account", send: pay("t", "wallet", "shop", 1), expect: "exceeds_credits" },
  {
    name: "exceeds_credits: pending debits count",
    prior: [pay("fund", "bank", "wallet", 100), hold("h", "wallet", "shop", 60)],
    send: pay("t", "wallet", "shop", 41),
    expect: "exceeds_credits",
  },
  {
    name: "exceeds_credits: a hold is checked like a transfer",
    prior: [pay("fund", "bank", "wallet", 100)],
    send: hold("t", "wallet", "shop", 101),
    expect: "exceeds_credits",
  },
  {
    name: "precedence: exceeds_credits over exceeds_debits",
    send: pay("t", "wallet", "capped", 1),
    expect: "exceeds_credits",
    loser: { code: "exceeds_debits", send: pay("t2", "bank", "capped", 1) },
  },
  {
    name: "precedence: exceeds_credits over overflow",
    prior: [pay("fill", "clearing", "shop", MAX)],
    send: pay("t", "wallet", "shop", 1),
    expect: "exceeds_credits",
    loser: { code: "overflow", send: pay("t2", "bank", "shop", 1) },
  },

  // exceeds_debits
  { name: "exceeds_debits: an empty flagged account", send: pay("t", "bank", "capped", 1), expect: "exceeds_debits" },
  {
    name: "precedence: exceeds_debits over overflow",
    prior: [pay("fill", "bank", "shop", MAX)],
    send: pay("t", "bank", "capped", 1),
    expect: "exceeds_debits",
    loser: { code: "overflow", send: pay("t2", "bank", "wallet", 1) },
  },

  // overflow
  {
    name: "overflow: two transfers of 2^53 - 1 into one account",
    prior: [pay("fill", "bank", "shop", MAX)],
    send: pay("t", "clearing", "shop", MAX),
    expect: "overflow",
  },
  {
    name: "overflow: debits of one account beyond 2^53 - 1",
    prior: [pay("fill", "bank", "shop", MAX)],
    send: pay("t", "bank", "wallet", 1),
    expect: "overflow",
  },
  {
    name: "overflow: pending credits count",
    prior: [hold("fill", "clearing", "shop", MAX)],
    send: pay("t", "bank", "shop", 1),
    expect: "overflow",
  },
];

// ---------------------------------------------------------------------------------------------
// The row runner

const ID_FIELDS = ["id", "debit_account_id", "credit_account_id", "post_pending_id", "void_pending_id"] as const;

/** Each row lives in its own id space, so rows share one ledger without touching each other. */
function scoped(prefix: string, body: Body): Body {
  const out: Body = { ...body };
  for (const field of ID_FIELDS) if (typeof out[field] === "string") out[field] = `${prefix}${out[field] as string}`;
  return out;
}

function singleStatus(code: ResultCode): number {
  if (code === "created") return 201;
  if (code === "exists") return 200;
  if (code === "exists_with_different_fields") return 409;
  return 422;
}

const BALANCE_FIELDS = ["debits_pending", "debits_posted", "credits_pending", "credits_posted", "balance", "available"] as const;
type AccountBalances = Record<(typeof BALANCE_FIELDS)[number], bigint>;

interface Snapshot {
  readonly accounts: Record<string, AccountBalances>;
  readonly transfers: Record<string, unknown>;
}

async function readBalances(app: TestApp, id: string): Promise<AccountBalances> {
  const res = await app.request("GET", `/v1/ledger/accounts/${id}`);
  assert.equal(res.status, 200, res.text);
  const out: Partial<AccountBalances> = {};
  for (const field of BALANCE_FIELDS) {
    assert.ok(Number.isSafeInteger(res.body[field]), `${id}.${field} is an integer: ${res.text}`);
    out[field] = BigInt(res.body[field]);
  }
  return out as AccountBalances;
}

async function readTransfer(app: TestApp, id: string): Promise<{ status: number; body: any }> {
  const res = await app.request("GET", `${TRANSFERS_URL}/${id}`);
  return { status: res.status, body: res.body };
}

async function snapshot(app: TestApp, prefix: string, transferIds: readonly string[]): Promise<Snapshot> {
  const accounts: Record<string, AccountBalances> = {};
  for (const a of ACCOUNTS) accounts[a.id] = await readBalances(app, prefix + a.id);
  const transfers: Record<string, unknown> = {};
  for (const id of transferIds) {
    const res = await readTransfer(app, id);
    assert.equal(res.status, 200, `${id} is retrievable`);
    transfers[id] = res.body;
  }
  return { accounts, transfers };
}

/** Balances after plain (posted, non-hold) transfers, computed independently of the ledger. */
function withPlainTransfers(before: Record<string, AccountBalances>, transfers: readonly Body[]): Record<string, AccountBalances> {
  const after: Record<string, AccountBalances> = {};
  for (const [id, b] of Object.entries(before)) after[id] = { ...b };
  for (const t of transfers) {
    assert.ok(!t.pending && t.post_pending_id === undefined && t.void_pending_id === undefined, "expected effects are computed for plain transfers");
    const amount = BigInt(String(t.amount));
    after[t.debit_account_id as string]!.debits_posted += amount;
    after[t.credit_account_id as string]!.credits_posted += amount;
  }
  for (const [id, b] of Object.entries(after)) {
    if (normalOf(id) === "credit") {
      b.balance = b.credits_posted - b.debits_posted;
      b.available = b.balance - b.debits_pending;
    } else {
      b.balance = b.debits_posted - b.credits_posted;
      b.available = b.balance - b.credits_pending;
    }
  }
  return after;
}

async function setUp(app: TestApp, clock: ManualClock, row: Row, prefix: string): Promise<string[]> {
  const created = await Promise.all(ACCOUNTS.map((a) => app.request("POST", "/v1/ledger/accounts", { ...a, id: prefix + a.id })));
  for (const res of created) assert.equal(res.status, 201, res.text);
  const ids: string[] = [];
  for (const step of row.prior ?? []) {
    if (isBatch(step)) {
      const transfers = step.map((b) => scoped(prefix, b));
      const res = await app.request("POST", BATCH_URL, { transfers });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.results, transfers.map((t) => ({ id: t.id, result: "created" })), "setup batch");
      ids.push(...transfers.map((t) => t.id as string));
    } else {
      const body = scoped(prefix, step);
      const res = await app.request("POST", TRANSFERS_URL, body);
      assert.equal(res.status, 201, `setup ${String(body.id)}: ${res.text}`);
      ids.push(body.id as string);
    }
  }
  if (row.advanceMs !== undefined) {
    clock.advanceMs(row.advanceMs);
    await app.tally.engine.tick(); // expires due holds now, so the snapshot below is stable
  }
  return ids;
}

async function sendSingle(app: TestApp, prefix: string, local: Body, code: ResultCode, priorIds: readonly string[]): Promise<void> {
  const before = await snapshot(app, prefix, priorIds);
  const body = scoped(prefix, local);
  const id = body.id as string;
  const res = await app.request("POST", TRANSFERS_URL, body);
  assert.equal(res.status, singleStatus(code), `expected ${code}: ${res.text}`);
  const after = await snapshot(app, prefix, priorIds);
  if (code === "created") {
    assert.equal(res.body.id, id);
    assert.equal(BigInt(res.body.amount), BigInt(String(local.amount)));
    assert.deepEqual((await readTransfer(app, id)).body, res.body);
    assert.deepEqual(after.accounts, withPlainTransfers(before.accounts, [local]));
    assert.deepEqual(after.transfers, before.transfers);
    return;
  }
  if (code === "exists") {
    assert.deepEqual(res.body, before.transfers[id], "exists answers with the stored transfer");
  } else {
    assert.equal(res.body?.error?.code, code, res.text);
    assert.equal(typeof res.body.error.message, "string");
    assert.equal(typeof res.body.error.request_id, "string");
  }
  assert.deepEqual(after.accounts, before.accounts, "a rejected or replayed transfer changes no balance");
  assert.deepEqual(after.transfers, before.transfers, "nor any stored transfer");
  if (!priorIds.includes(id)) assert.equal((await readTransfer(app, id)).status, 404, "a rejected transfer is not stored");
}

async function sendBatch(app: TestApp, prefix: string, locals: readonly Body[], codes: readonly ResultCode[], priorIds: readonly string[]): Promise<void> {
  assert.equal(locals.length, codes.length);
  const before = await snapshot(app, prefix, priorIds);
  const transfers = locals.map((b) => scoped(prefix, b));
  const res = await app.request("POST", BATCH_URL, { transfers });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.results, transfers.map((t, i) => ({ id: t.id, result: codes[i] })));
  const after = await snapshot(app, prefix, priorIds);
  const createdLocals = locals.filter((_, i) => codes[i] === "created");
  assert.deepEqual(after.accounts, withPlainTransfers(before.accounts, createdLocals), "only the created transfers moved money");
  assert.deepEqual(after.transfers, before.transfers, "earlier transfers (and holds) are unchanged");
  for (const [i, t] of transfers.entries()) {
    const id = t.id as string;
    const stored = await readTransfer(app, id);
    if (codes[i] === "created") {
      assert.equal(stored.status, 200, `${id} was created`);
      assert.equal(BigInt(stored.body.amount), BigInt(String(t.amount)));
    } else if (!priorIds.includes(id)) {
      assert.equal(stored.status, 404, `${id} (${codes[i]}) is not stored`);
    }
  }
}

async function runRow(app: TestApp, clock: ManualClock, row: Row, prefix: string): Promise<void> {
  const priorIds = await setUp(app, clock, row, prefix);
  if (isBatch(row.send)) {
    assert.ok(Array.isArray(row.expect), "a batch row expects one code per transfer");
    await sendBatch(app, prefix, row.send, row.expect as readonly ResultCode[], priorIds);
  } else {
    assert.equal(typeof row.expect, "string", "a single row expects one code");
    await sendSingle(app, prefix, row.send, row.expect as ResultCode, priorIds);
  }
  if (row.loser) await sendSingle(app, prefix, row.loser.send, row.loser.code, priorIds);
  for (const [id, status] of Object.entries(row.statuses ?? {})) {
    const stored = await readTransfer(app, prefix + id);
    assert.equal(stored.status, 200);
    assert.equal(stored.body.status, status, `${id} reads ${status}`);
  }
}

const expectedCodes = (row: Row): readonly ResultCode[] => (typeof row.expect === "string" ? [row.expect] : (row.expect as readonly ResultCode[]));

describe("the result-code table itself", () => {
  test("the implementation's result codes are LEDGER.md's list, in its order", () => {
    assert.deepEqual([...TRANSFER_RESULTS], [...RESULT_CODES]);
  });

  test("every result code of LEDGER.md has a row", () => {
    const covered = new Set(ROWS.flatMap(expectedCodes));
    assert.deepEqual(RESULT_CODES.filter((c) => !covered.has(c)), []);
  });

  test("every precedence row's winner comes before its loser in LEDGER.md's list", () => {
    const pairs = ROWS.filter((r) => r.loser).map((r) => [expectedCodes(r)[0]!, r.loser!.code] as const);
    for (const [winner, loser] of pairs) {
      assert.ok(RESULT_CODES.indexOf(winner) < RESULT_CODES.indexOf(loser), `${winner} before ${loser}`);
    }
    // The pairs the specification calls out explicitly are all present.
    for (const pair of [
      ["accounts_must_be_different", "debit_account_not_found"],
      ["debit_account_not_found", "credit_account_not_found"],
      ["currency_mismatch", "exceeds_credits"],
      ["pending_transfer_already_posted", "exceeds_pending_transfer_amount"],
      ["exceeds_credits", "exceeds_debits"],
      ["exceeds_debits", "overflow"],
    ]) {
      assert.ok(pairs.some(([w, l]) => w === pair[0] && l === pair[1]), `a row for ${pair[0]} over ${pair[1]}`);
    }
  });
});

for (const dialect of DIALECTS) {
  describe(`transfer result codes on ${dialect}`, () => {
    const clock = new ManualClock();
    let app: TestApp;
    before(async () => {
      app = await startTestApp({ dialect, clock, label: "resultcodes" });
    });
    after(async () => app.close());

    for (const [index, row] of ROWS.entries()) {
      test(row.name, async () => runRow(app, clock, row, `r${index}-`));
    }

    test("a hold past its deadline reads expired and cannot be posted, before any sweep ran", async () => {
      const prefix = "unswept-";
      const row: Row = {
        name: "unswept",
        prior: [pay("fund", "bank", "wallet", 100), hold("h", "wallet", "shop", 100, { timeout_seconds: HOLD_TIMEOUT_SECONDS })],
        send: post("p", "h"),
        expect: "pending_transfer_expired",
      };
      await setUp(app, clock, row, prefix);
      assert.equal((await readBalances(app, `${prefix}wallet`)).available, 0n);
      clock.advanceMs(PAST_DEADLINE_MS);
      assert.equal((await readTransfer(app, `${prefix}h`)).body.status, "expired");
      const res = await app.request("POST", TRANSFERS_URL, scoped(prefix, post("p", "h")));
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.error.code, "pending_transfer_expired");
      assert.equal((await readTransfer(app, `${prefix}p`)).status, 404);
      assert.equal((await readTransfer(app, `${prefix}h`)).body.status, "expired");
      const wallet = await readBalances(app, `${prefix}wallet`);
      assert.deepEqual([wallet.debits_pending, wallet.debits_posted, wallet.credits_posted, wallet.available], [0n, 0n, 100n, 100n]);
      const shop = await readBalances(app, `${prefix}shop`);
      assert.deepEqual([shop.credits_pending, shop.credits_posted], [0n, 0n]);
    });

    test("pending_transfer_not_pending from a freshly started process (nothing cached yet)", async () => {
      const prefix = "cold-";
      const row: Row = {
        name: "cold",
        prior: [pay("t", "bank", "wallet", 100), hold("h", "bank", "shop", 100), post("p", "h")],
        send: post("x", "t"),
        expect: "pending_transfer_not_pending",
      };
      const priorIds = await setUp(app, clock, row, prefix);
      const before = await snapshot(app, prefix, priorIds);
      // A second process on the same database starts with no state in memory, as after a restart.
      const restarted = await createTally(app.tally.config, { clock, jobs: false, logger: createLogger("silent") });
      try {
        await restarted.server.ready();
        for (const body of [post("x", "t"), voidOf("y", "p")]) {
          const res = await restarted.server.inject({
            method: "POST",
            url: TRANSFERS_URL,
            headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
            payload: JSON.stringify(scoped(prefix, body)),
          });
          assert.equal(res.statusCode, 422, res.body);
          assert.equal(JSON.parse(res.body).error.code, "pending_transfer_not_pending", res.body);
        }
      } finally {
        await restarted.close();
      }
      assert.deepEqual(await snapshot(app, prefix, priorIds), before);
      for (const id of ["x", "y"]) assert.equal((await readTransfer(app, prefix + id)).status, 404);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Validation errors: 400 validation_failed naming the field in `param`, and no effect.

interface ValidationRow {
  readonly name: string;
  readonly method?: "POST" | "GET";
  readonly url: string;
  readonly body?: unknown;
  readonly rawBody?: string;
  /** The param the error must name (any of these, where the contract leaves the choice open). */
  readonly param: string | readonly string[];
  readonly absentTransfers?: readonly string[];
  readonly absentAccount?: string;
}

function without(body: Body, ...fields: string[]): Body {
  const out: Body = { ...body };
  for (const f of fields) delete out[f];
  return out;
}

/** A valid transfer from bank to wallet, with `changes` applied. */
function transferWith(id: string, changes: Body = {}): Body {
  return { ...pay(id, "bank", "wallet", 100), ...changes };
}

function invalidTransfer(name: string, id: string, body: Body, param: string | readonly string[]): ValidationRow {
  return { name, url: TRANSFERS_URL, body, param, absentTransfers: [id] };
}

const VALIDATION_ROWS: readonly ValidationRow[] = [
  // POST /v1/ledger/transfers
  { name: "transfer: missing id", url: TRANSFERS_URL, body: without(transferWith("x"), "id"), param: "id" },
  { name: "transfer: id longer than 64", url: TRANSFERS_URL, body: transferWith("x".repeat(65)), param: "id" },
  { name: "transfer: id with bad characters", url: TRANSFERS_URL, body: transferWith("bad id!"), param: "id" },
  invalidTransfer("transfer: amount 0", "v-zero", transferWith("v-zero", { amount: 0 }), "amount"),
  invalidTransfer("transfer: negative amount", "v-neg", transferWith("v-neg", { amount: -5 }), "amount"),
  invalidTransfer("transfer: fractional amount 12.5", "v-frac", transferWith("v-frac", { amount: 12.5 }), "amount"),
  {
    name: "transfer: amount 9007199254740993 (above 2^53 - 1) as a JSON number",
    url: TRANSFERS_URL,
    rawBody: '{"id":"v-big-number","debit_account_id":"bank","credit_account_id":"wallet","amount":9007199254740993,"currency":"CNY"}',
    param: "amount",
    absentTransfers: ["v-big-number"],
  },
  invalidTransfer("transfer: amount \"9007199254740992\" as a string", "v-big-string", transferWith("v-big-string", { amount: "9007199254740992" }), "amount"),
  invalidTransfer("transfer: amount as a 20-digit string", "v-huge-string", transferWith("v-huge-string", { amount: "99999999999999999999" }), "amount"),
  invalidTransfer("transfer: amount \"12.50\"", "v-decimal-string", transferWith("v-decimal-string", { amount: "12.50" }), "amount"),
  invalidTransfer("transfer: amount boolean", "v-bool", transferWith("v-bool", { amount: true }), "amount"),
  invalidTransfer("transfer: unknown field", "v-unknown", transferWith("v-unknown", { colour: "red" }), "colour"),
  invalidTransfer("transfer: lowercase currency", "v-cny", transferWith("v-cny", { currency: "cny" }), "currency"),
  invalidTransfer("transfer: unknown currency XXX", "v-xxx", transferWith("v-xxx", { currency: "XXX" }), "currency"),
  invalidTransfer(
    "transfer: both post_pending_id and void_pending_id",
    "v-both",
    { id: "v-both", post_pending_id: "h", void_pending_id: "h" },
    ["post_pending_id", "void_pending_id"],
  ),
  invalidTransfer("transfer: pending with post_pending_id", "v-pending-post", { id: "v-pending-post", post_pending_id: "h", pending: true }, ["pending", "post_pending_id"]),
  invalidTransfer("transfer: timeout_seconds without pending", "v-timeout", transferWith("v-timeout", { timeout_seconds: 30 }), ["timeout_seconds"]),
  invalidTransfer("transfer: missing debit_account_id", "v-no-debit", without(transferWith("v-no-debit"), "debit_account_id"), "debit_account_id"),
  invalidTransfer("transfer: missing credit_account_id", "v-no-credit", without(transferWith("v-no-credit"), "credit_account_id"), "credit_account_id"),
  invalidTransfer("transfer: missing amount", "v-no-amount", without(transferWith("v-no-amount"), "amount"), "amount"),
  invalidTransfer("transfer: missing currency", "v-no-currency", without(transferWith("v-no-currency"), "currency"), "currency"),
  invalidTransfer("transfer: reference longer than 128", "v-reference", transferWith("v-reference", { reference: "r".repeat(129) }), "reference"),
  invalidTransfer("transfer: metadata over 4 KiB", "v-metadata-big", transferWith("v-metadata-big", { metadata: { note: "m".repeat(4100) } }), "metadata"),
  invalidTransfer("transfer: metadata a string", "v-metadata-string", transferWith("v-metadata-string", { metadata: "note" }), "metadata"),
  invalidTransfer("transfer: metadata an array", "v-metadata-array", transferWith("v-metadata-array", { metadata: ["note"] }), "metadata"),

  // POST /v1/ledger/transfers/batch
  { name: "batch: empty list", url: BATCH_URL, body: { transfers: [] }, param: "transfers" },
  {
    name: "batch: 8191 transfers",
    url: BATCH_URL,
    body: { transfers: Array.from({ length: 8191 }, (_, i) => pay(`v-many-${i}`, "bank", "wallet", 1)) },
    param: "transfers",
    absentTransfers: ["v-many-0", "v-many-8190"],
  },
  {
    name: "batch: one bad amount among good transfers rejects the whole batch",
    url: BATCH_URL,
    body: { transfers: [transferWith("v-b1"), transferWith("v-b2", { amount: 0 }), transferWith("v-b3")] },
    param: "transfers[1].amount",
    absentTransfers: ["v-b1", "v-b2", "v-b3"],
  },
  {
    name: "batch: one unknown currency among good transfers rejects the whole batch",
    url: BATCH_URL,
    body: { transfers: [transferWith("v-c1"), transferWith("v-c2", { currency: "XXX" })] },
    param: "transfers[1].currency",
    absentTransfers: ["v-c1", "v-c2"],
  },
  {
    name: "batch: an oversized digit-string amount in the last item rejects the whole batch",
    url: BATCH_URL,
    body: { transfers: [transferWith("v-d1"), transferWith("v-d2"), transferWith("v-d3", { amount: "9007199254740992" })] },
    param: "transfers[2].amount",
    absentTransfers: ["v-d1", "v-d2", "v-d3"],
  },
  {
    name: "batch: an unknown field in an item",
    url: BATCH_URL,
    body: { transfers: [transferWith("v-e1"), transferWith("v-e2", { colour: "red" })] },
    param: "transfers[1].colour",
    absentTransfers: ["v-e1", "v-e2"],
  },

  // POST /v1/ledger/accounts
  { name: "account: missing currency", url: "/v1/ledger/accounts", body: { id: "v-acct-1" }, param: "currency", absentAccount: "v-acct-1" },
  { name: "account: unknown currency", url: "/v1/ledger/accounts", body: { id: "v-acct-2", currency: "XXX" }, param: "currency", absentAccount: "v-acct-2" },
  {
    name: "account: bad normal_balance",
    url: "/v1/ledger/accounts",
    body: { id: "v-acct-3", currency: "CNY", normal_balance: "asset" },
    param: "normal_balance",
    absentAccount: "v-acct-3",
  },
  {
    name: "account: unknown flag",
    url: "/v1/ledger/accounts",
    body: { id: "v-acct-4", currency: "CNY", flags: { frozen: true } },
    param: "flags.frozen",
    absentAccount: "v-acct-4",
  },
  { name: "account: unknown field", url: "/v1/ledger/accounts", body: { id: "v-acct-5", currency: "CNY", colour: "red" }, param: "colour", absentAccount: "v-acct-5" },
  { name: "account: id with bad characters", url: "/v1/ledger/accounts", body: { id: "bad id!", currency: "CNY" }, param: "id" },
  { name: "account: id longer than 64", url: "/v1/ledger/accounts", body: { id: "a".repeat(65), currency: "CNY" }, param: "id" },

  // Reads
  { name: "balance: at that is not a timestamp", method: "GET", url: "/v1/ledger/accounts/wallet/balance?at=yesterday", param: "at" },
  { name: "balance: at without an offset", method: "GET", url: "/v1/ledger/accounts/wallet/balance?at=2023-03-24T16:42:00", param: "at" },
  { name: "balance: at on a day that does not exist", method: "GET", url: "/v1/ledger/accounts/wallet/balance?at=2023-02-30T00:00:00Z", param: "at" },
  { name: "history: limit=0", method: "GET", url: "/v1/ledger/accounts/wallet/transfers?limit=0", param: "limit" },
  { name: "history: limit=101", method: "GET", url: "/v1/ledger/accounts/wallet/transfers?limit=101", param: "limit" },
  { name: "history: limit=abc", method: "GET", url: "/v1/ledger/accounts/wallet/transfers?limit=abc", param: "limit" },
];

describe("ledger validation errors on sqlite", () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ dialect: "sqlite", label: "validation" });
    for (const account of [
      { id: "bank", currency: "CNY", normal_balance: "debit" },
      { id: "wallet", currency: "CNY" },
    ]) {
      const res = await app.request("POST", "/v1/ledger/accounts", account);
      assert.equal(res.status, 201, res.text);
    }
  });
  after(async () => app.close());

  for (const row of VALIDATION_ROWS) {
    test(row.name, async () => {
      const res = await app.request(row.method ?? "POST", row.url, row.body, row.rawBody === undefined ? {} : { rawBody: row.rawBody });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body?.error?.code, "validation_failed", res.text);
      const accepted = typeof row.param === "string" ? [row.param] : row.param;
      assert.ok(accepted.includes(res.body.error.param), `param ${String(res.body.error.param)} is one of ${accepted.join(", ")}`);
      assert.equal(typeof res.body.error.message, "string");
      for (const id of row.absentTransfers ?? []) {
        assert.equal((await app.request("GET", `${TRANSFERS_URL}/${id}`)).status, 404, `${id} was not created`);
      }
      if (row.absentAccount !== undefined) {
        assert.equal((await app.request("GET", `/v1/ledger/accounts/${row.absentAccount}`)).status, 404, `${row.absentAccount} was not created`);
      }
    });
  }

  test("none of the rejected requests moved money", async () => {
    for (const id of ["bank", "wallet"]) {
      const balances = await readBalances(app, id);
      for (const field of BALANCE_FIELDS) assert.equal(balances[field], 0n, `${id}.${field}`);
    }
    const history = await app.request("GET", "/v1/ledger/accounts/wallet/transfers");
    assert.equal(history.status, 200);
    assert.deepEqual(history.body.data, []);
  });
});
