import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDocument, parseStatement, type BankProfile, type ParsedDocument, type ParsedEntry } from "../../src/arrivals/parsers/index.ts";
import { camt054, camtEntry, encodeGb18030 } from "./fixtures.ts";

const us = (iso: string) => BigInt(Date.parse(iso)) * 1000n;
const entries = (doc: ParsedDocument): ParsedEntry[] => doc.statements.flatMap((s) => s.entries);
const CAMT: BankProfile = { format: "camt054", timezone: "Asia/Shanghai" };
const one = (entry: string, options = {}) => {
  const doc = parseDocument(Buffer.from(camt054([entry], options)), CAMT);
  assert.deepEqual(doc.errors, []);
  return entries(doc)[0]!;
};

// ---------------------------------------------------------------- camt

test("camt.054 v02: a booked credit with everything", () => {
  const e = one(camtEntry({ amount: "300000.00", ref: "BANKREF1", debtor: "王小明", debtorAcct: "CN6222020200112233445", ustrd: ["AG-2023-0042", "首付"] }));
  assert.deepEqual(e, {
    position: 0, account: "VA0001", amount: 30000000n, currency: "CNY", direction: "credit", status: "booked", statusCode: "BOOK",
    reversal: false, bankReference: "BANKREF1", payerName: "王小明", payerAccount: "CN6222020200112233445",
    remittance: "AG-2023-0042 首付", bookedAtUs: us("2023-06-14T16:00:00Z"), bookingDate: "2023-06-15", quarantine: null,
  });
});

const statusTable: [string, Parameters<typeof camtEntry>[0], string, string | null][] = [
  ["02", { sts: "BOOK" }, "booked", "BOOK"],
  ["02", { sts: "PDNG" }, "pending", "PDNG"],
  ["02", { sts: "INFO" }, "info", "INFO"],
  ["02", { sts: null }, "booked", null],
  ["04", { sts: "BOOK" }, "booked", "BOOK"],
  ["08", { stsCd: "BOOK" }, "booked", "BOOK"],
  ["08", { stsCd: "PDNG" }, "pending", "PDNG"],
  ["10", { stsCd: "INFO" }, "info", "INFO"],
  ["10", { sts: "INFO" }, "info", "INFO"], // v02 style in a v10 namespace (seen in the wild)
];
for (const [version, options, status, code] of statusTable) {
  test(`camt.054 v${version}: status ${JSON.stringify(options)}`, () => {
    const doc = parseDocument(Buffer.from(camt054([camtEntry({ ref: "R", ...options })], { version })), CAMT);
    assert.equal(doc.messageType, `camt.054.001.${version}`);
    const e = entries(doc)[0]!;
    assert.equal(e.status, status);
    assert.equal(e.statusCode, code);
    assert.equal(e.quarantine, null);
  });
}

test("camt: an unknown status quarantines (never funds)", () => {
  const e = one(camtEntry({ ref: "R", stsCd: "WHAT" }), { version: "08" });
  assert.equal(e.status, "info");
  assert.deepEqual(e.quarantine, { code: "malformed", field: "Sts", value: "WHAT" });
});

test("camt: reversal keeps its own direction", () => {
  const e = one(camtEntry({ ref: "R", ind: "DBIT", rvsl: true }));
  assert.equal(e.direction, "debit");
  assert.equal(e.reversal, true);
});

test("camt: bank reference from Ntry, else the single TxDtls, else quarantined", () => {
  assert.equal(one(camtEntry({ ref: "NTRY", txRefs: ["TX"] })).bankReference, "NTRY");
  assert.equal(one(camtEntry({ txRefs: ["TX"] })).bankReference, "TX");
  const batch = one(camtEntry({ txRefs: ["TX1", "TX2"], debtor: "A" }));
  assert.equal(batch.bankReference, null);
  assert.equal(batch.payerName, null); // a batch has no single payer
  assert.deepEqual(batch.quarantine, { code: "missing_bank_reference", field: "AcctSvcrRef" });
  assert.deepEqual(one(camtEntry({})).quarantine, { code: "missing_bank_reference", field: "AcctSvcrRef" });
});

test("camt v08+: Dbtr/Pty/Nm", () => {
  assert.equal(one(camtEntry({ ref: "R", stsCd: "BOOK", debtorV8: "Müller GmbH" }), { version: "08" }).payerName, "Müller GmbH");
});

test("camt: dates with and without offsets", () => {
  assert.equal(one(camtEntry({ ref: "R", bookg: "2023-06-15T10:00:00" })).bookedAtUs, us("2023-06-15T02:00:00Z")); // local Shanghai
  const withOffset = one(camtEntry({ ref: "R", bookg: "2023-06-15T23:30:00-02:00" }));
  assert.equal(withOffset.bookedAtUs, us("2023-06-16T01:30:00Z"));
  assert.equal(withOffset.bookingDate, "2023-06-15"); // as written
  assert.deepEqual(one(camtEntry({ ref: "R", bookg: "2023-02-30" })).quarantine, { code: "unparseable_date", field: "BookgDt/Dt", value: "2023-02-30" });
  assert.deepEqual(one(camtEntry({ ref: "R", bookg: "15.06.2023" })).quarantine, { code: "unparseable_date", field: "BookgDt/Dt", value: "15.06.2023" });
});

test("camt: amount problems quarantine the entry", () => {
  assert.deepEqual(one(camtEntry({ ref: "R", amount: "1.005" })).quarantine, { code: "too_many_decimals", field: "Amt", value: "1.005" });
  assert.deepEqual(one(camtEntry({ ref: "R", amount: "-5.00" })).quarantine, { code: "invalid_amount", field: "Amt", value: "-5.00" });
  assert.deepEqual(one(camtEntry({ ref: "R", amount: "5.00", ccy: "ZZZ" })).quarantine, { code: "unknown_currency", field: "Amt/@Ccy", value: "ZZZ" });
  assert.deepEqual(one(camtEntry({ ref: "R", ind: "" })).quarantine, { code: "missing_field", field: "CdtDbtInd" });
  assert.equal(one(camtEntry({ ref: "R", amount: "2700", ccy: "JPY" })).amount, 2700n);
});

test("camt: namespace prefixes and entity references", () => {
  const e = one(camtEntry({ ref: "R&amp;D", ustrd: ["A &lt;B&gt; &#x4E2D;"] }), { prefix: "ns2" });
  assert.equal(e.bankReference, "R&D");
  assert.equal(e.remittance, "A <B> 中");
});

test("camt: GB18030 by XML declaration, and by profile", () => {
  const xml = camt054([camtEntry({ ref: "R", debtor: "欧阳娜娜" })], { decl: '<?xml version="1.0" encoding="GB18030"?>' });
  const body = encodeGb18030(xml);
  assert.equal(entries(parseDocument(body, CAMT))[0]!.payerName, "欧阳娜娜");
  const noDecl = encodeGb18030(camt054([camtEntry({ ref: "R", debtor: "欧阳娜娜" })], { decl: "" }));
  assert.equal(entries(parseDocument(noDecl, { ...CAMT, encoding: "gb18030" }))[0]!.payerName, "欧阳娜娜");
  // Declared UTF-8 but GB18030 bytes: refused.
  const lie = encodeGb18030(camt054([camtEntry({ ref: "R", debtor: "欧阳娜娜" })]));
  assert.equal(parseDocument(lie, CAMT).errors[0]?.field, "encoding");
  // UTF-8 with a BOM
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(camt054([camtEntry({ ref: "R", debtor: "欧阳娜娜" })]))]);
  assert.equal(entries(parseDocument(bom, CAMT))[0]!.payerName, "欧阳娜娜");
});

test("camt.053 statement: balances, FrToDt, account by IBAN", () => {
  const xml = `<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.04"><BkToCstmrStmt><GrpHdr/><Stmt>
    <FrToDt><FrDtTm>2023-06-15T00:00:00+08:00</FrDtTm><ToDtTm>2023-06-15T23:59:59+08:00</ToDtTm></FrToDt>
    <Acct><Id><IBAN>CN00VA1</IBAN></Id><Ccy>CNY</Ccy></Acct>
    <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">10.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Dt><Dt>2023-06-15</Dt></Dt></Bal>
    <Bal><Tp><CdOrPrtry><Cd>CLAV</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">999.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2023-06-15</Dt></Dt></Bal>
    <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">90.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><DtTm>2023-06-15T23:59:59</DtTm></Dt></Bal>
    ${camtEntry({ ref: "R1" })}</Stmt></BkToCstmrStmt></Document>`;
  const doc = parseStatement(Buffer.from(xml));
  assert.deepEqual(doc.errors, []);
  assert.equal(doc.format, "camt053");
  const s = doc.statements[0]!;
  assert.equal(s.account, "CN00VA1");
  assert.deepEqual(s.opening, { amount: -1000n, currency: "CNY", date: "2023-06-15", tag: "OPBD" });
  assert.deepEqual(s.closing, { amount: 9000n, currency: "CNY", date: "2023-06-15", tag: "CLBD" });
  assert.equal(s.fromDate, "2023-06-15");
  assert.equal(s.toDate, "2023-06-15");
  assert.equal(s.entries[0]!.account, "CN00VA1");
});

// ---------------------------------------------------------------- MT940

const MT_PROFILE: BankProfile = { format: "mt940", timezone: "Asia/Shanghai", mt940_reference: "REF:([A-Z0-9]+)" };
function mt940(lines: string[], eol = "\r\n"): Buffer {
  return Buffer.from(lines.join(eol) + eol);
}
const HEAD = [":20:STMT1", ":25:VA0001", ":28C:1/1", ":60F:C230614CNY1000,00"];

test("mt940: reference after //, else the profile's rule on :86:, else quarantined", () => {
  const doc = parseDocument(
    mt940([...HEAD,
      ":61:2306150615C300000,NTRFNONREF//B230615001", ":86:AG-2023-0042 王小明",
      ":61:2306150615C5,50NTRFNONREF", ":86:payment REF:ABC123 thanks",
      ":61:2306150615C5,NTRFNONREF", ":86:no reference here",
      ":62F:C230615CNY301010,50", "-"]),
    MT_PROFILE,
  );
  assert.deepEqual(doc.errors, []);
  const [a, b, c] = entries(doc);
  assert.equal(a!.bankReference, "B230615001");
  assert.equal(a!.amount, 30000000n);
  assert.equal(a!.remittance, "AG-2023-0042 王小明");
  assert.equal(a!.bookedAtUs, us("2023-06-14T16:00:00Z")); // midnight in Shanghai
  assert.equal(b!.bankReference, "ABC123");
  assert.equal(b!.amount, 550n);
  assert.deepEqual(c!.quarantine, { code: "missing_bank_reference", field: "61" });
  assert.equal(doc.messageType, "MT940");
});

test("mt940: reversal marks, funds codes, structured :86:", () => {
  const doc = parseDocument(
    mt940([...HEAD,
      ":61:2306150615RCR204,88NMSCNONREF//R1", ":86:166?00GUTSCHRIFT?20EREF+AG-2023-?210042 Kaufpreis?30DEUTDEFF?31DE89370400440532013000?32MUSTERMANN?33 MAX",
      ":61:2306150615RD10,00NMSCNONREF//R2",
      ":61:2306150615DR6,00NMSCNONREF//R3",
      ":61:2306150615CN0,01NTRFNONREF//R4",
      ":62F:C230615CNY1000,00", "-"]),
    MT_PROFILE,
  );
  const [rc, rd, d, c] = entries(doc);
  assert.deepEqual([rc!.direction, rc!.reversal], ["debit", true]);
  assert.equal(rc!.remittance, "EREF+AG-2023-0042 Kaufpreis");
  assert.equal(rc!.payerName, "MUSTERMANN MAX");
  assert.equal(rc!.payerAccount, "DE89370400440532013000");
  assert.deepEqual([rd!.direction, rd!.reversal], ["credit", true]);
  assert.deepEqual([d!.direction, d!.reversal, d!.amount], ["debit", false, 600n]);
  assert.deepEqual([c!.direction, c!.amount], ["credit", 1n]);
});

test("mt940: booking dates (entry date across the year end, blank, invalid)", () => {
  const doc = parseDocument(
    mt940([":20:S", ":25:A", ":60F:C231231CNY0,",
      ":61:2312310102C1,NTRF//R1",
      ":61:231231    C1,NTRF//R2",
      ":61:2401011231C1,NTRF//R3",
      ":61:2302300301C1,NTRF//R4",
      ":61:230230C1,NTRF//R5",
      ":61:2306150231C1,NTRF//R6",
      ":62F:C240102CNY6,", "-"], "\n"),
    { format: "mt940", timezone: "UTC" },
  );
  assert.deepEqual(entries(doc).map((e) => e.bookingDate), ["2024-01-02", "2023-12-31", "2023-12-31", "2023-03-01", null, null]);
  assert.deepEqual(entries(doc)[4]!.quarantine, { code: "unparseable_date", field: "61/value_date", value: "230230" });
  assert.deepEqual(entries(doc)[5]!.quarantine, { code: "unparseable_date", field: "61/entry_date", value: "0231" });
});

test("mt940: SWIFT envelope, SOH/ETX framing, MT942", () => {
  const body = "\x01{1:F01BANKBEBBAXXX0000000000}{2:O9420000000000BANKBEBBAXXX00000000000000000000N}{4:\r\n:20:X\r\n:25:PL1\r\n:28C:1/1\r\n:34F:PLN0\r\n:13D:1701191815+0100\r\n:61:1701190119CN0,01NTRFNONREF//MB1\r\n911-TRANSAKCJA\r\n:86:text\r\n-}\x03";
  const doc = parseDocument(Buffer.from(body), { format: "mt940" });
  assert.deepEqual(doc.errors, []);
  assert.equal(doc.messageType, "MT942");
  const e = entries(doc)[0]!;
  assert.equal(e.currency, "PLN");
  assert.equal(e.bankReference, "MB1");
  assert.equal(e.remittance, "text");
});

test("mt940: a truncated statement keeps its entries and reports the missing closing balance", () => {
  const doc = parseDocument(mt940([...HEAD, ":61:2306150615C5,NTRF//R1"]), MT_PROFILE);
  assert.equal(entries(doc).length, 1);
  assert.equal(doc.errors[0]?.field, "62F");
});

test("mt940: a broken :61: quarantines that entry only", () => {
  const doc = parseDocument(mt940([...HEAD, ":61:garbage", ":61:2306150615C5,NTRF//R1", ":62F:C230615CNY1005,00"]), MT_PROFILE);
  const [bad, good] = entries(doc);
  assert.equal(bad!.quarantine?.code, "malformed");
  assert.equal(good!.quarantine, null);
});
