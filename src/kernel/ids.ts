// Sortable identifiers (ULID: 48-bit millisecond time + 80 random bits, Crockford base32) and
// the validation rule for client-supplied ids.
import { randomFillSync } from "node:crypto";

const ENCODING = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

let lastTimeMs = -1;
const lastRandom = new Uint8Array(10);
// Random bytes are drawn from the system in blocks: a call per id (one per millisecond at the
// least) showed in profiles of the ledger's batches.
const pool = new Uint8Array(1280);
let poolAt = pool.length;

/** A ULID; ids made in the same millisecond by this process still sort in creation order. */
export function ulid(nowMs: number = Date.now()): string {
  if (nowMs <= lastTimeMs) {
    // Same (or earlier) millisecond: increment the random part so order is kept.
    nowMs = lastTimeMs;
    for (let i = 9; i >= 0; i--) {
      const byte = lastRandom[i]!;
      if (byte < 255) { lastRandom[i] = byte + 1; break; }
      lastRandom[i] = 0;
    }
  } else {
    lastTimeMs = nowMs;
    if (poolAt + 10 > pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    lastRandom.set(pool.subarray(poolAt, poolAt + 10));
    poolAt += 10;
  }
  let out = "";
  let time = nowMs;
  for (let i = 0; i < 10; i++) {
    out = ENCODING[time % 32]! + out;
    time = Math.floor(time / 32);
  }
  // 80 random bits → 16 base32 characters, as two 40-bit halves (exact in a double).
  return out + base32of40(lastRandom, 0) + base32of40(lastRandom, 5);
}

function base32of40(bytes: Uint8Array, at: number): string {
  let n = 0;
  for (let i = at; i < at + 5; i++) n = n * 256 + bytes[i]!;
  let text = "";
  for (let i = 0; i < 8; i++) {
    text = ENCODING[n % 32]! + text;
    n = Math.floor(n / 32);
  }
  return text;
}

/** Client ids: 1–64 characters of [A-Za-z0-9_.:-] (CONVENTIONS.md). */
export const CLIENT_ID_PATTERN = "^[A-Za-z0-9_.:-]{1,64}$";
const clientIdRegex = new RegExp(CLIENT_ID_PATTERN);

export function isClientId(value: string): boolean {
  return clientIdRegex.test(value);
}
