// The custody bank port: what Tally asks of a bank that holds escrow money (存管银行). Opening a
// virtual sub-account per agreement, paying out from it, and asking about a payout. Banks send
// arrival notices and statements to Tally on their own (the arrivals inbox).

export interface OpenAccountRequest {
  readonly agreementId: string;
  readonly currency: string;
  readonly amountDue: bigint;
  readonly payerName: string;
  readonly payerIdNumber?: string;
}

export type OpenAccountResult =
  | { readonly kind: "opened"; readonly accountNumber: string; readonly accountName: string }
  /** The bank refused for a reason the payer must fix (identity check failed): final. */
  | { readonly kind: "refused"; readonly reason: string };

export interface CustodyPayoutRequest {
  readonly transferId: string;
  readonly kind: "release" | "refund";
  readonly fromAccountNumber: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly toAccountNumber: string;
  readonly toAccountName: string;
}

export type CustodyPayoutStatus = "pending" | "paid" | "failed";

export interface CustodyPayoutResult {
  readonly status: CustodyPayoutStatus;
  readonly bankTransferId?: string;
  readonly reason?: string;
}

export interface CustodyBank {
  readonly code: string;
  /** Throws CustodyUnavailableError when the bank cannot be reached or fails for a system reason. */
  openAccount(request: OpenAccountRequest): Promise<OpenAccountResult>;
  payout(request: CustodyPayoutRequest): Promise<CustodyPayoutResult>;
  queryPayout(transferId: string): Promise<CustodyPayoutResult>;
}

/** The bank is down or failed for a system reason (its identity check service, say): retry later. */
export class CustodyUnavailableError extends Error {
  override name = "CustodyUnavailableError";
}
