// The streaming JSON reader against the whole-body reader: same entries and errors, however the
// body is cut into pieces.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { DocumentBuilder } from "../../src/arrivals/parsers/builder.ts";
import { parseDocument, type BankProfile, type ParsedDocument } from "../../src/arrivals/parsers/index.ts";
import { compileProfile } from "../../src/arrivals/parsers/profile.ts";
import { readJsonNotice } from "../../src/arrivals/parsers/tabular.ts";
import { EXAMPLE } from "./fixtures.ts";

function whole(text: string, profile: BankProfile): ParsedDocument {
  const doc = new DocumentBuilder("json");
  readJsonNotice(text, doc, compileProfile(profile));
  return doc.build();
}

function* pieces(body: Buffer, sizes: number[]): Generator<Uint8Array> {
  let offset = 0;
  let k = 0;
  while (offset < body.length) {
    const size = Math.max(1, sizes[k++ % sizes.length] ?? 1);
    yield body.subarray(offset, offset + size);
    offset += size;
  }
}

const ROOTED: BankProfile = {
  ...(EXAMPLE as BankProfile),
  fields: { ...EXAMPLE.fields, account: "$.header.acct", entries: "$.data.items" },
};

const DOCS = [
  `{"header":{"acct":"VA-1"},"data":{"items":[{"amt":"1.50","ccy":"CNY","dcFlag":"C","serialNo":"S1","tranTime":"20230615 143000","memo":"a \\"q\\" \\u4e2d \\ud83d\\ude00"},{"amt":2,"ccy":"CNY","dcFlag":"D","serialNo":"S2","tranTime":"2023-06-15 14:30:00","extra":[1,{"x":[[],{}]},null,true,false,-0.5e-3]}]}}`,
  `{"data":{"items":[{"amt":"1.50","ccy":"CNY","dcFlag":"C","serialNo":"S1","tranTime":"20230615 143000"}]},"header":{"acct":"VA-LATE"}}`,
  `{"data":{"items":[]},"header":{"acct":"X"}}`,
  `  {"data" : { "items" : [ 1 , "x" , [ ] , { } ] } , "header" : { } }  `,
  `{"data":{"items":{"a":1}}}`,
  `{"data":{}}`,
  `{"data":{"items":[{"amt":"1.50"}]`,
  `{"data":{"items":[{"amt":1.5.0}]}}`,
  `{"data":{"items":[{"amt":tru}]}}`,
  `{"data":{"items":[{"amt":"1"}]}} x`,
  `{"data":{"items":[{"amt":"1"}],}}`,
  `{"__proto__":{"polluted":1},"data":{"items":[{"__proto__":{"amt":"9"},"amt":"1.00","ccy":"CNY","dcFlag":"C","serialNo":"P","tranTime":"20230615 143000"}]}}`,
  ``,
];

for (const [n, text] of DOCS.entries()) {
  test(`json stream ${n}: same result as the whole-body reader, in any pieces`, () => {
    const expected = whole(text, ROOTED);
    for (const sizes of [[text.length + 1], [1], [2, 3], [7], [1, 13, 2]]) {
      const got = parseDocument(pieces(Buffer.from(text), sizes), ROOTED);
      assert.deepEqual(got.statements.flatMap((s) => s.entries), expected.statements.flatMap((s) => s.entries), `sizes ${sizes}`);
      assert.equal(got.errors.length > 0, expected.errors.length > 0, `errors ${JSON.stringify(got.errors)} vs ${JSON.stringify(expected.errors)}`);
    }
  });
}

test("json stream: a root field after the entries array still reaches every entry", () => {
  const doc = parseDocument(Buffer.from(DOCS[1]!), ROOTED);
  assert.equal(doc.statements[0]!.entries[0]!.account, "VA-LATE");
});

test("json stream: wildcards selecting several arrays are refused", () => {
  const profile: BankProfile = { ...(EXAMPLE as BankProfile), fields: { ...EXAMPLE.fields, entries: "$.pages[*].items" } };
  const one = parseDocument(Buffer.from(`{"pages":[{"items":[{"serialNo":"S"}]}]}`), profile);
  assert.deepEqual(one.errors, []);
  assert.equal(one.statements[0]!.entries.length, 1);
  const two = parseDocument(Buffer.from(`{"pages":[{"items":[]},{"items":[]}]}`), profile);
  assert.equal(two.errors[0]?.field, "entries");
});

test("json: negative indices fall back to the whole-body reader", () => {
  const profile: BankProfile = { ...(EXAMPLE as BankProfile), fields: { ...EXAMPLE.fields, entries: "$.pages[-1].items" } };
  const doc = parseDocument(Buffer.from(`{"pages":[{"items":[{"serialNo":"A"}]},{"items":[{"serialNo":"B"}]}]}`), profile);
  assert.equal(doc.statements[0]!.entries[0]!.bankReference, "B");
});

test("property: random entries in random pieces read the same as whole", () => {
  const scalar = fc.oneof(fc.string(), fc.integer().map(String), fc.constantFrom("1.50", "0.001", "x", "2023-06-15 14:30:00", "20230615 143000"));
  const item = fc.record(
    { amt: fc.oneof(scalar, fc.integer()), ccy: fc.constantFrom("CNY", "JPY", "ZZZ"), dcFlag: fc.constantFrom("C", "D"), serialNo: scalar, tranTime: scalar, memo: fc.jsonValue() },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(fc.array(fc.oneof(item, fc.jsonValue()), { maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 }), (items, sizes) => {
      const text = JSON.stringify({ header: { acct: "A" }, data: { items } });
      const expected = whole(text, ROOTED);
      const got = parseDocument(pieces(Buffer.from(text), sizes), ROOTED);
      assert.deepEqual(got.statements.flatMap((s) => s.entries), expected.statements.flatMap((s) => s.entries));
      assert.deepEqual(got.errors, expected.errors);
    }),
    { numRuns: 300 },
  );
});
