// The rules applied directly (no database): what a batch reports as changed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyTransfers, newEffects, type Account, type Transfer, type TransferInput } from "../../src/ledger/model.ts";

function account(id: string, limited = false): Account {
  return {
    id, merchantId: null, currency: "CNY", code: 0, normalBalance: "debit",
    flags: { debitsMustNotExceedCredits: limited, creditsMustNotExceedDebits: false }, owner: null, metadata: null,
    createdAt: 1n, debitsPending: 0n, debitsPosted: 0n, creditsPending: 0n, creditsPosted: 0n, lastTs: null, transferCount: 0, touchedBy: 0,
  };
}

const input = (id: string, debit: string, credit: string, extra: Partial<TransferInput> = {}): TransferInput => ({
  id, debitAccountId: debit, creditAccountId: credit, amount: 10n, currency: "CNY", pending: false, timeoutSeconds: 0, linked: false, ...extra,
});

function ledger(...accounts: Account[]) {
  const byId = new Map(accounts.map((a) => [a.id, a]));
  let ts = 100n;
  const created = new Map<string, Transfer>();
  return {
    batch(inputs: TransferInput[]) {
      const effects = newEffects();
      created.clear();
      const outcomes = applyTransfers({ account: (id) => byId.get(id), transfer: () => undefined }, created, inputs, null, { nextTimestamp: () => ++ts, balanceMax: 2n ** 62n }, effects);
      return { outcomes: outcomes.map((o) => o.result), touched: effects.touchedAccounts.map((a) => a.id) };
    },
  };
}

test("a batch lists each account it changed once, in the order first changed, and the next batch lists them again", () => {
  const l = ledger(account("a"), account("b"), account("c"));
  const first = l.batch([input("t1", "a", "b"), input("t2", "b", "c"), input("t3", "a", "c"), input("t4", "c", "a")]);
  assert.deepEqual(first.outcomes, ["created", "created", "created", "created"]);
  assert.deepEqual(first.touched, ["a", "b", "c"]);
  const second = l.batch([input("t5", "c", "b"), input("t6", "b", "c")]);
  assert.deepEqual(second.touched, ["c", "b"], "accounts changed by an earlier batch are listed by the next one that changes them");
});

test("a refused transfer lists no account; a linked chain that fails leaves its accounts listed only if something else changed them", () => {
  const l = ledger(account("a"), account("b"), account("limited", true), account("d"));
  const refused = l.batch([input("r1", "limited", "b")]);
  assert.deepEqual(refused.outcomes, ["exceeds_credits"]);
  assert.deepEqual(refused.touched, []);
  // The chain moves a -> d, then fails on the limited account: it is rolled back as a whole. Its
  // accounts may stay listed (their balances are written back unchanged), but never twice.
  const chain = l.batch([input("c1", "a", "d", { linked: true }), input("c2", "limited", "b"), input("after", "a", "b")]);
  assert.deepEqual(chain.outcomes, ["linked_event_failed", "exceeds_credits", "created"]);
  assert.equal(new Set(chain.touched).size, chain.touched.length, "no account listed twice");
  assert.ok(chain.touched.includes("a") && chain.touched.includes("b"));
});
