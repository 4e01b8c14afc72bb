// The matching rules (ESCROW.md "Matching"), in order, as a table.
import { test } from "node:test";
import assert from "node:assert/strict";
import { matchEntry, remittanceTokens, type MatchCandidate, type MatchInput } from "../../src/arrivals/matching.ts";

const agreement = (over: Partial<MatchCandidate>): MatchCandidate => ({
  id: "AG-1",
  contractRef: "HT-2023-0042",
  virtualAccount: "95580000000000000001",
  status: "awaiting_funds",
  currency: "CNY",
  amountDue: 1000n,
  amountReceived: 0n,
  payerNameIndex: "idx-wang",
  ...over,
});
const entry = (over: Partial<MatchInput>): MatchInput => ({ account: null, amount: 1000n, currency: "CNY", remittance: null, payerNameIndex: null, ...over });

const cases: Array<[string, MatchInput, MatchCandidate[], string | null, string | null]> = [
  ["the virtual account wins", entry({ account: "95580000000000000001" }), [agreement({})], "AG-1", "virtual_account"],
  ["the virtual account wins over a remittance naming another agreement", entry({ account: "95580000000000000001", remittance: "AG-2" }), [agreement({}), agreement({ id: "AG-2", virtualAccount: "9" })], "AG-1", "virtual_account"],
  ["a virtual account of a canceled agreement is not matched (manual queue)", entry({ account: "95580000000000000001" }), [agreement({ status: "canceled" })], null, null],
  ["a virtual account in another currency is not matched", entry({ account: "95580000000000000001", currency: "USD" }), [agreement({})], null, null],
  ["an expired agreement still receives (held for refund)", entry({ account: "95580000000000000001" }), [agreement({ status: "expired" })], "AG-1", "virtual_account"],
  ["the agreement id as a whole token", entry({ remittance: "定金 AG-1 王小明" }), [agreement({ virtualAccount: null })], "AG-1", "reference_in_remittance"],
  ["the contract reference as a whole token, trailing punctuation ignored", entry({ remittance: "deposit for HT-2023-0042." }), [agreement({ virtualAccount: null })], "AG-1", "reference_in_remittance"],
  ["part of a token is not a match", entry({ remittance: "HT-2023-00421" }), [agreement({ virtualAccount: null })], null, null],
  ["two agreements named: ambiguous, no match", entry({ remittance: "AG-1 AG-2" }), [agreement({}), agreement({ id: "AG-2", contractRef: null })], null, null],
  ["payer name and outstanding amount, exactly one", entry({ payerNameIndex: "idx-wang", amount: 600n }), [agreement({ amountReceived: 400n, virtualAccount: null })], "AG-1", "payer_name_and_amount"],
  ["payer name but another amount", entry({ payerNameIndex: "idx-wang", amount: 999n }), [agreement({})], null, null],
  ["payer name fits two agreements: no match", entry({ payerNameIndex: "idx-wang" }), [agreement({}), agreement({ id: "AG-2", contractRef: null, virtualAccount: null })], null, null],
  ["payer name of a funded agreement: no match", entry({ payerNameIndex: "idx-wang" }), [agreement({ status: "funded" })], null, null],
  ["nothing fits", entry({ account: "1", remittance: "hello", payerNameIndex: "idx-li" }), [agreement({})], null, null],
];

for (const [name, input, candidates, expected, rule] of cases) {
  test(`matching: ${name}`, () => {
    const result = matchEntry(input, candidates);
    assert.equal(result?.agreementId ?? null, expected);
    assert.equal(result?.rule ?? null, rule);
  });
}

test("remittance tokens are runs of id characters", () => {
  assert.deepEqual([...remittanceTokens("定金/HT-2023-0042，AG_7:x. end")].sort(), ["AG_7:x", "AG_7:x.", "HT-2023-0042", "end"].sort());
  assert.equal(remittanceTokens(null).size, 0);
});
