// Matching a bank credit to an agreement (ESCROW.md "Matching"), as a pure function over the
// candidates the caller looked up. Rules in order: the entry's account is an agreement's virtual
// account; else an agreement id or contract reference appears in the remittance text as a whole
// token; else exactly one open agreement whose payer name (blind index) fits and whose
// outstanding amount equals the entry's amount; else unmatched.

export interface MatchCandidate {
  readonly id: string;
  readonly contractRef: string | null;
  readonly virtualAccount: string | null;
  readonly status: string;
  readonly currency: string;
  readonly amountDue: bigint;
  readonly amountReceived: bigint;
  readonly payerNameIndex: string;
}

export interface MatchInput {
  readonly account: string | null;
  readonly amount: bigint;
  readonly currency: string;
  readonly remittance: string | null;
  readonly payerNameIndex: string | null;
}

export type MatchRule = "virtual_account" | "reference_in_remittance" | "payer_name_and_amount";

export interface MatchResult {
  readonly agreementId: string;
  readonly rule: MatchRule;
}

/** Statuses that can still receive money (ESCROW.md: funding states; expired holds for refund). */
const RECEIVING = new Set(["awaiting_funds", "partially_funded", "funded", "expired"]);
const OPEN_FOR_NAME_MATCH = new Set(["awaiting_funds", "partially_funded"]);

/** Whole tokens of a remittance text: runs of id characters, also without trailing punctuation. */
export function remittanceTokens(text: string | null): Set<string> {
  const tokens = new Set<string>();
  if (!text) return tokens;
  for (const raw of text.split(/[^A-Za-z0-9_.:-]+/)) {
    if (raw.length === 0 || raw.length > 64) continue;
    tokens.add(raw);
    const trimmed = raw.replace(/[.:-]+$/, "");
    if (trimmed.length > 0) tokens.add(trimmed);
  }
  return tokens;
}

export function matchEntry(entry: MatchInput, candidates: readonly MatchCandidate[]): MatchResult | null {
  const fits = (c: MatchCandidate) => c.currency === entry.currency && RECEIVING.has(c.status);
  if (entry.account !== null) {
    const byAccount = candidates.find((c) => c.virtualAccount !== null && c.virtualAccount === entry.account);
    if (byAccount) return fits(byAccount) ? { agreementId: byAccount.id, rule: "virtual_account" } : null;
  }
  const tokens = remittanceTokens(entry.remittance);
  if (tokens.size > 0) {
    const named = candidates.filter((c) => fits(c) && (tokens.has(c.id) || (c.contractRef !== null && tokens.has(c.contractRef))));
    const ids = new Set(named.map((c) => c.id));
    if (ids.size === 1) return { agreementId: named[0]!.id, rule: "reference_in_remittance" };
    if (ids.size > 1) return null;
  }
  if (entry.payerNameIndex !== null) {
    const byName = candidates.filter(
      (c) => c.payerNameIndex === entry.payerNameIndex && OPEN_FOR_NAME_MATCH.has(c.status) && c.currency === entry.currency && c.amountDue - c.amountReceived === entry.amount,
    );
    if (byName.length === 1) return { agreementId: byName[0]!.id, rule: "payer_name_and_amount" };
  }
  return null;
}
