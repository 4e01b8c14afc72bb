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

export interface CamtEntryOptions {
  amount?: string;
  ccy?: string;
  ind?: string;
  sts?: string | null; // v02 plain text
  stsCd?: string; // v08+ <Sts><Cd>
  rvsl?: boolean;
  bookg?: string; // <Dt> or, with a T, <DtTm>
  ref?: string | null;
  txRefs?: string[];
  debtor?: string;
  debtorV8?: string;
  debtorAcct?: string;
  ustrd?: string[];
}

/** One camt <Ntry>. */
export function camtEntry(o: CamtEntryOptions = {}): string {
  const sts = o.stsCd !== undefined ? `<Sts><Cd>${o.stsCd}</Cd></Sts>` : o.sts === null ? "" : `<Sts>${o.sts ?? "BOOK"}</Sts>`;
  const bookg = o.bookg === undefined ? "<BookgDt><Dt>2023-06-15</Dt></BookgDt>" : o.bookg.includes("T") ? `<BookgDt><DtTm>${o.bookg}</DtTm></BookgDt>` : `<BookgDt><Dt>${o.bookg}</Dt></BookgDt>`;
  const txs = (o.txRefs ?? [""]).map(
    (r) =>
      `<TxDtls><Refs>${r ? `<AcctSvcrRef>${r}</AcctSvcrRef>` : ""}<EndToEndId>E2E</EndToEndId></Refs>` +
      `<RltdPties>${o.debtor ? `<Dbtr><Nm>${o.debtor}</Nm></Dbtr>` : ""}${o.debtorV8 ? `<Dbtr><Pty><Nm>${o.debtorV8}</Nm></Pty></Dbtr>` : ""}` +
      `${o.debtorAcct ? `<DbtrAcct><Id><IBAN>${o.debtorAcct}</IBAN></Id></DbtrAcct>` : ""}<Cdtr><Nm>Escrow Co</Nm></Cdtr></RltdPties>` +
      `<RmtInf>${(o.ustrd ?? []).map((u) => `<Ustrd>${u}</Ustrd>`).join("")}</RmtInf></TxDtls>`,
  );
  return (
    `<Ntry>${o.ref === null ? "" : `<NtryRef>1</NtryRef>`}<Amt Ccy="${o.ccy ?? "CNY"}">${o.amount ?? "100.00"}</Amt>` +
    `${o.ind === "" ? "" : `<CdtDbtInd>${o.ind ?? "CRDT"}</CdtDbtInd>`}${o.rvsl ? "<RvslInd>true</RvslInd>" : ""}${sts}${bookg}` +
    `${o.ref === null || o.ref === undefined ? "" : `<AcctSvcrRef>${o.ref}</AcctSvcrRef>`}<NtryDtls>${txs.join("")}</NtryDtls></Ntry>`
  );
}

/** A camt.054 document around some entries. */
export function camt054(entries: string[], options: { version?: string; account?: string; prefix?: string; decl?: string } = {}): string {
  const p = options.prefix ? `${options.prefix}:` : "";
  const ns = `urn:iso:std:iso:20022:tech:xsd:camt.054.001.${options.version ?? "02"}`;
  return (
    `${options.decl ?? '<?xml version="1.0" encoding="UTF-8"?>'}\n<${p}Document xmlns${options.prefix ? `:${options.prefix}` : ""}="${ns}">` +
    `<${p}BkToCstmrDbtCdtNtfctn><${p}GrpHdr><${p}MsgId>M1</${p}MsgId></${p}GrpHdr><${p}Ntfctn><${p}Id>N1</${p}Id>` +
    `<${p}Acct><${p}Id><${p}Othr><${p}Id>${options.account ?? "VA0001"}</${p}Id></${p}Othr></${p}Id></${p}Acct>` +
    (options.prefix ? entries.map((e) => e.replace(/<(\/?)([A-Za-z])/g, `<$1${p}$2`)).join("") : entries.join("")) +
    `</${p}Ntfctn></${p}BkToCstmrDbtCdtNtfctn></${p}Document>`
  );
}
