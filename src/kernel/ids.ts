// Sortable identifiers (ULID: 48-bit millisecond time + 80 random bits, Crockford base32) and
// the validation rule for client-supplied ids.
import { randomBytes } from "node:crypto";

const ENCODING = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

let lastTimeMs = -1;
let lastRandom = new Uint8Array(10);

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
    lastRandom = new Uint8Array(randomBytes(10));
  }
  let out = "";
  let time = nowMs;
  for (let i = 0; i < 10; i++) {
    out = ENCODING[time % 32]! + out;
    time = Math.floor(time / 32);
  }
  // 80 random bits → 16 base32 characters.
  let bits = 0n;
  for (const byte of lastRandom) bits = (bits << 8n) | BigInt(byte);
  let rand = "";
  for (let i = 0; i < 16; i++) {
    rand = ENCODING[Number(bits & 31n)]! + rand;
    bits >>= 5n;
  }
  return out + rand;
}

/** Client ids: 1–64 characters of [A-Za-z0-9_.:-] (CONVENTIONS.md). */
export const CLIENT_ID_PATTERN = "^[A-Za-z0-9_.:-]{1,64}$";
const clientIdRegex = new RegExp(CLIENT_ID_PATTERN);

export function isClientId(value: string): boolean {
  return clientIdRegex.test(value);
}
