// WeChat Pay API v3's cryptography on node:crypto, shared by the client (signing requests, checking
// answers) and notify.ts (checking and decrypting notifications). Requests are signed with the
// merchant's RSA key over `METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`; WeChat signs answers and
// notifications with its platform key over `TIMESTAMP\nNONCE\nBODY\n`; resources are AES-256-GCM
// with the APIv3 key.
import { createDecipheriv, createPublicKey, createSign, createVerify, randomBytes, type KeyObject } from "node:crypto";

export const AUTHORIZATION_SCHEMA = "WECHATPAY2-SHA256-RSA2048";
/** WeChat Pay's rule: a signed answer or notification older (or newer) than 5 minutes is refused. */
export const SIGNATURE_AGE_MS_MAX = 5 * 60_000;
/** The APIv3 key is 32 bytes (AES-256). */
export const APIV3_KEY_BYTES = 32;
const GCM_TAG_BYTES = 16;

/** 32 characters of [0-9A-Z], as WeChat's examples use. */
export function nonce(): string {
  return randomBytes(16).toString("hex").toUpperCase();
}

export function rsaSign(message: string, privateKey: KeyObject | string): string {
  return createSign("RSA-SHA256").update(message, "utf8").sign(privateKey, "base64");
}

export interface AuthorizationInput {
  readonly mchid: string;
  readonly serialNo: string;
  readonly privateKey: KeyObject | string;
  readonly method: string;
  /** Path and query exactly as sent (`/v3/pay/transactions/out-trade-no/x?mchid=1`). */
  readonly pathWithQuery: string;
  /** The exact body text; empty for GET. */
  readonly body: string;
  readonly timestampS: number;
  readonly nonce: string;
}

/** The `Authorization` header of a v3 request. */
export function authorization(input: AuthorizationInput): string {
  const message = `${input.method}\n${input.pathWithQuery}\n${input.timestampS}\n${input.nonce}\n${input.body}\n`;
  const signature = rsaSign(message, input.privateKey);
  return `${AUTHORIZATION_SCHEMA} mchid="${input.mchid}",nonce_str="${input.nonce}",signature="${signature}",timestamp="${input.timestampS}",serial_no="${input.serialNo}"`;
}

/** Header lookup that ignores case (HTTP layers differ in how they keep names). */
export function header(headers: Readonly<Record<string, string>> | Headers, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

export type PlatformKeys = ReadonlyMap<string, KeyObject>;

export function platformKeys(pems: Readonly<Record<string, string>>): PlatformKeys {
  return new Map(Object.entries(pems).map(([serial, pem]) => [serial, createPublicKey(pem)]));
}

/** Why a signed answer or notification is not WeChat's, or null when it is. */
export function signatureProblem(headers: Readonly<Record<string, string>> | Headers, body: string, keys: PlatformKeys, nowMs: number): string | null {
  const timestamp = header(headers, "Wechatpay-Timestamp");
  const nonceText = header(headers, "Wechatpay-Nonce");
  const signature = header(headers, "Wechatpay-Signature");
  const serial = header(headers, "Wechatpay-Serial");
  if (!timestamp || !nonceText || !signature || !serial) return "a Wechatpay-Timestamp, -Nonce, -Signature or -Serial header is missing";
  if (!/^\d{1,12}$/.test(timestamp)) return "Wechatpay-Timestamp is not a number of seconds";
  // Outside the window a captured message could be replayed at will.
  if (Math.abs(nowMs - Number(timestamp) * 1000) > SIGNATURE_AGE_MS_MAX) return `Wechatpay-Timestamp ${timestamp} is more than 5 minutes from now`;
  const key = keys.get(serial);
  if (key === undefined) return `Wechatpay-Serial ${serial} is not a platform key we hold`;
  let ok = false;
  try {
    ok = createVerify("RSA-SHA256").update(`${timestamp}\n${nonceText}\n${body}\n`, "utf8").verify(key, signature, "base64");
  } catch {
    ok = false;
  }
  return ok ? null : "the signature does not verify with the platform key";
}

/** AEAD_AES_256_GCM: ciphertext is base64 of the encrypted bytes followed by the 16-byte tag. Throws when it does not authenticate. */
export function decryptResource(apiV3Key: Buffer, resource: { ciphertext: string; nonce: string; associated_data?: string }): string {
  const data = Buffer.from(resource.ciphertext, "base64");
  if (data.length <= GCM_TAG_BYTES) throw new Error("the ciphertext is too short");
  const decipher = createDecipheriv("aes-256-gcm", apiV3Key, Buffer.from(resource.nonce, "utf8"));
  decipher.setAuthTag(data.subarray(data.length - GCM_TAG_BYTES));
  decipher.setAAD(Buffer.from(resource.associated_data ?? "", "utf8"));
  return Buffer.concat([decipher.update(data.subarray(0, data.length - GCM_TAG_BYTES)), decipher.final()]).toString("utf8");
}
