// Unified failure codes and who caused them. Success rates are judged on failures the platform
// or a channel caused; a payer who typed the wrong password or ran out of balance is not a
// system failure (the weekly report's "effective success rate").
import type { Failure, FailureCode } from "./channel.ts";

export const USER_CAUSED: Readonly<Record<FailureCode, boolean>> = {
  declined: true,
  insufficient_funds: true,
  wrong_password: true,
  canceled_by_payer: true,
  expired: true,
  invalid_account: true,
  limit_exceeded: true,
  identity_check_failed: true,
  channel_error: false,
  timeout: false,
  not_found: false,
  misconfigured: false,
};

/** A unified failure for `code`, keeping the channel's own code and message for operators. */
export function failure(code: FailureCode, channelCode: string, message?: string): Failure {
  return { code, channelCode, userCaused: USER_CAUSED[code], ...(message !== undefined ? { message } : {}) };
}

/**
 * Maps a channel's code through its connector's table; a code the table does not know is a
 * system failure (`channel_error`), so an unmapped code can never inflate the success rate.
 */
export function mapFailure(table: Readonly<Record<string, FailureCode>>, channelCode: string, message?: string): Failure {
  const code = Object.hasOwn(table, channelCode) ? table[channelCode]! : "channel_error";
  return failure(code, channelCode, message);
}
