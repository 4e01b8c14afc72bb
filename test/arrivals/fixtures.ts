// Shared test fixtures for the arrivals parsers (not a test file itself).

/** The ESCROW.md example profile. */
export const EXAMPLE = {
  format: "json",
  fields: {
    entries: "$.data.items", account: "acctNo", amount: "amt", currency: "ccy",
    direction: "dcFlag", credit_value: "C", bank_reference: "serialNo",
    payer_name: "payerName", payer_account: "payerAcct", remittance: "memo",
    booked_at: "tranTime",
  },
  amount_unit: "major", date_formats: ["yyyyMMdd HHmmss", "yyyy-MM-dd HH:mm:ss"],
  timezone: "Asia/Shanghai",
} as const;

/** GB18030 encoder for tests, built from Node's decoder (no encoder ships with Node). */
export function encodeGb18030(text: string): Buffer {
  const decoder = new TextDecoder("gb18030", { fatal: true });
  const table = new Map<string, Buffer>();
  const search = (ch: string): Buffer => {
    const cached = table.get(ch);
    if (cached) return cached;
    const code = ch.codePointAt(0)!;
    if (code < 0x80) return Buffer.from([code]);
    // two-byte GBK
    for (let b1 = 0x81; b1 <= 0xfe; b1 += 1) {
      for (let b2 = 0x40; b2 <= 0xfe; b2 += 1) {
        if (b2 === 0x7f) continue;
        const buf = Buffer.from([b1, b2]);
        try {
          if (decoder.decode(buf) === ch) return table.set(ch, buf), buf;
        } catch { /* not a character */ }
      }
    }
    // four-byte: supplementary planes map linearly from 0x90308130
    if (code >= 0x10000) {
      let n = code - 0x10000;
      const b4 = 0x30 + (n % 10); n = Math.floor(n / 10);
      const b3 = 0x81 + (n % 126); n = Math.floor(n / 126);
      const b2 = 0x30 + (n % 10); n = Math.floor(n / 10);
      const buf = Buffer.from([0x90 + n, b2, b3, b4]);
      return table.set(ch, buf), buf;
    }
    throw new Error(`cannot encode ${ch}`);
  };
  return Buffer.concat([...text].map(search));
}
