import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDocument, type BankProfile, type ParsedDocument, type ParsedEntry } from "../../src/arrivals/parsers/index.ts";
import { EXAMPLE, encodeGb18030 } from "./fixtures.ts";

const us = (iso: string) => BigInt(Date.parse(iso)) * 1000n;
const entries = (doc: ParsedDocument): ParsedEntry[] => doc.statements.flatMap((s) => s.entries);
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

// ---------------------------------------------------------------- JSON

test("json: the ESCROW.md example profile", () => {
  const body = Buffer.from(`{"code":"0000","data":{"items":[
    {"acctNo":"9558800200112233","amt":"1234.50","ccy":"CNY","dcFlag":"C","serialNo":"SN001","payerName":"王小明","payerAcct":"6222020200112233445","memo":"AG-2023-0042 首付","tranTime":"20230615 143000"},
    {"acctNo":"9558800200112233","amt":300000,"ccy":"CNY","dcFlag":"C","serialNo":"SN002","payerName":"李四","tranTime":"2023-06-15 14:31:00"},
    {"acctNo":"9558800200112233","amt":"10.00","ccy":"CNY","dcFlag":"D","serialNo":"SN003","tranTime":"2023-06-15 14:32:00"}
  ]}}`);
  const doc = parseDocument(body, EXAMPLE as BankProfile);
  assert.deepEqual(doc.errors, []);
  assert.equal(doc.format, "json");
  const [a, b, c] = entries(doc);
  assert.deepEqual(a, {
    position: 0, account: "9558800200112233", amount: 123450n, currency: "CNY", direction: "credit", status: "booked",
    reversal: false, bankReference: "SN001", payerName: "王小明", payerAccount: "6222020200112233445",
    remittance: "AG-2023-0042 首付", bookedAtUs: us("2023-06-15T06:30:00Z"), bookingDate: "2023-06-15", quarantine: null,
  });
  assert.equal(b!.amount, 30000000n); // a JSON number read as written, never as a float
  assert.equal(b!.bookedAtUs, us("2023-06-15T06:31:00Z"));
  assert.equal(b!.payerAccount, null);
  assert.equal(c!.direction, "debit");
});

test("json: quarantine reasons per entry, the others still parse", () => {
  const items = [
    { acctNo: "A", amt: "1.005", ccy: "CNY", dcFlag: "C", serialNo: "1", tranTime: "2023-06-15 14:31:00" },
    { acctNo: "A", amt: "1.00", ccy: "CNY", dcFlag: "C", serialNo: "2", tranTime: "2023/06/15 14:31" },
    { acctNo: "A", amt: "1.00", ccy: "CNY", dcFlag: "C", tranTime: "2023-06-15 14:31:00" },
    { acctNo: "A", ccy: "CNY", dcFlag: "C", serialNo: "4", tranTime: "2023-06-15 14:31:00" },
    { acctNo: "A", amt: "1.00", ccy: "XXY", dcFlag: "C", serialNo: "5", tranTime: "2023-06-15 14:31:00" },
    { acctNo: "A", amt: "abc", ccy: "CNY", dcFlag: "C", serialNo: "6", tranTime: "2023-06-15 14:31:00" },
    { acctNo: "A", amt: "1.00", ccy: "CNY", dcFlag: "C", serialNo: "7", tranTime: "2023-02-30 14:31:00" },
    { acctNo: "A", amt: "1.00", ccy: "CNY", dcFlag: "C", serialNo: "8", tranTime: "2023-06-15 14:31:00" },
    { acctNo: "A", amt: "1.00", ccy: "CNY", dcFlag: "C", serialNo: "", tranTime: "2023-06-15 14:31:00" },
    "not an object",
  ];
  const got = entries(parseDocument(json({ data: { items } }), EXAMPLE as BankProfile)).map((e) => e.quarantine);
  assert.deepEqual(got, [
    { code: "too_many_decimals", field: "amount", value: "1.005" },
    { code: "unparseable_date", field: "booked_at", value: "2023/06/15 14:31" },
    { code: "missing_bank_reference", field: "bank_reference" },
    { code: "missing_field", field: "amount" },
    { code: "unknown_currency", field: "currency", value: "XXY" },
    { code: "invalid_amount", field: "amount", value: "abc" },
    { code: "unparseable_date", field: "booked_at", value: "2023-02-30 14:31:00" },
    null,
    { code: "missing_bank_reference", field: "bank_reference" },
    { code: "malformed", field: "entries", value: "an entry is not an object" },
  ]);
});

test("json: JSONPath forms, root fields, minor units, sign as direction", () => {
  const profile: BankProfile = {
    format: "json",
    fields: { entries: "$['resp'].batches[0][\"rows\"]", account: "$.header.acct", amount: "money.value", bank_reference: "id", booked_at: "at" },
    amount_unit: "minor", currency: "CNY", date_formats: ["yyyy-MM-ddTHH:mm:ssXXX"],
  };
  const body = json({ header: { acct: "VA-1" }, resp: { batches: [{ rows: [{ id: "r1", money: { value: 150 }, at: "2023-06-15T10:00:00+08:00" }, { id: "r2", money: { value: "-25" }, at: "2023-06-15T10:00:00Z" }] }] } });
  const [a, b] = entries(parseDocument(body, profile));
  assert.equal(a!.account, "VA-1");
  assert.equal(a!.amount, 150n);
  assert.equal(a!.direction, "credit");
  assert.equal(a!.bookedAtUs, us("2023-06-15T02:00:00Z"));
  assert.equal(b!.amount, 25n);
  assert.equal(b!.direction, "debit");
  assert.equal(parseDocument(json({ resp: { batches: [] } }), profile).errors[0]?.code, "missing_field");
});

test("json: minor units must be integers", () => {
  const profile: BankProfile = { ...(EXAMPLE as BankProfile), amount_unit: "minor" };
  const body = json({ data: { items: [{ acctNo: "A", amt: "12.5", ccy: "CNY", dcFlag: "C", serialNo: "1", tranTime: "20230615 143000" }] } });
  assert.deepEqual(entries(parseDocument(body, profile))[0]!.quarantine, { code: "invalid_amount", field: "amount", value: "12.5" });
});

test("json: the path must select one array", () => {
  for (const data of [{ data: { items: {} } }, { data: {} }, []]) {
    const doc = parseDocument(json(data), EXAMPLE as BankProfile);
    assert.equal(doc.statements.length, 0);
    assert.equal(doc.errors[0]?.field, "entries");
  }
});

test("json: an invalid profile is a document error, not a throw", () => {
  const doc = parseDocument(json({}), { format: "json" } as BankProfile);
  assert.equal(doc.errors[0]?.field, "profile.amount_unit");
});

// ---------------------------------------------------------------- CSV

const CSV_PROFILE: BankProfile = {
  format: "csv",
  fields: { account: "账号", amount: "金额", currency: "币种", direction: "借贷", credit_value: "贷", debit_value: "借", bank_reference: "流水号", payer_name: "付款人", remittance: "附言", booked_at: "交易时间" },
  amount_unit: "major",
  date_formats: ["yyyy-MM-dd HH:mm:ss"],
  timezone: "Asia/Shanghai",
};

test("csv: quoted fields, commas, quotes, line breaks in quotes, CRLF, BOM", () => {
  const text =
    "\ufeff账号,金额,币种,借贷,流水号,付款人,附言,交易时间\r\n" +
    '9558801,"1,234.50",CNY,贷,SN1,"王小明","AG-2023-0042, 首付 ""定金""",2023-06-15 14:30:00\r\n' +
    '9558801,10.00,CNY,借,SN2,,"two\r\nlines",2023-06-15 14:31:00\r\n' +
    "\r\n" +
    "9558801,5.00,CNY,贷,SN3,张三,,2023-06-15 14:32:00";
  const doc = parseDocument(Buffer.from(text), CSV_PROFILE);
  assert.deepEqual(doc.errors, []);
  const [a, b, c] = entries(doc);
  assert.equal(entries(doc).length, 3);
  assert.equal(a!.account, "9558801");
  // "1,234.50" is not a plain decimal: thousands separators are refused, not guessed
  assert.deepEqual(a!.quarantine, { code: "invalid_amount", field: "amount", value: "1,234.50" });
  assert.equal(a!.remittance, 'AG-2023-0042, 首付 "定金"');
  assert.equal(a!.payerName, "王小明");
  assert.equal(b!.direction, "debit");
  assert.equal(b!.remittance, "two\r\nlines");
  assert.equal(b!.payerName, null);
  assert.equal(c!.amount, 500n);
  assert.equal(c!.bookedAtUs, us("2023-06-15T06:32:00Z"));
  assert.equal(c!.position, 2);
});

test("csv: a missing column, a short row, an unknown direction, semicolons", () => {
  const doc = parseDocument(Buffer.from("账号,金额,币种,借贷,流水号,交易时间\n1,2.00,CNY,X,S1,2023-06-15 14:30:00\n1,2.00\n"), CSV_PROFILE);
  const [a, b] = entries(doc);
  assert.deepEqual(a!.quarantine, { code: "malformed", field: "direction", value: "X" });
  assert.deepEqual(b!.quarantine?.code, "malformed");
  const semi = parseDocument(Buffer.from("a;b;c;d\n1;2.50;S;2023-06-15 14:30:00\n"), {
    format: "csv", fields: { amount: "b", bank_reference: "c", booked_at: "d" }, currency: "CNY", amount_unit: "major",
    date_formats: ["yyyy-MM-dd HH:mm:ss"], timezone: "Asia/Shanghai", csv_delimiter: ";",
  });
  assert.equal(entries(semi)[0]!.amount, 250n);
  assert.equal(entries(semi)[0]!.quarantine, null);
});

test("csv: truncated inside quotes and stray quotes are document errors", () => {
  assert.equal(parseDocument(Buffer.from('账号,金额\n1,"2.00'), CSV_PROFILE).errors[0]?.code, "malformed");
  assert.equal(parseDocument(Buffer.from('账号,金额\n1,2"00\n'), CSV_PROFILE).errors[0]?.code, "malformed");
  assert.equal(parseDocument(Buffer.from(""), CSV_PROFILE).errors[0]?.code, "malformed");
});

test("csv: GB18030 bodies", () => {
  const text = "账号,金额,币种,借贷,流水号,付款人,附言,交易时间\r\n9558801,8.00,CNY,贷,SN9,欧阳娜娜,𠀀 AG-1,2023-06-15 14:30:00\r\n";
  const profile: BankProfile = { ...CSV_PROFILE, encoding: "gb18030" };
  const body = encodeGb18030(text);
  const e = entries(parseDocument(body, profile))[0]!;
  assert.equal(e.payerName, "欧阳娜娜");
  assert.equal(e.remittance, "𠀀 AG-1");
  // The same bytes read as UTF-8 are invalid: a document error, not mojibake.
  const wrong = parseDocument(body, CSV_PROFILE);
  assert.equal(wrong.errors[0]?.field, "encoding");
  assert.equal(entries(wrong).length, 0);
});

