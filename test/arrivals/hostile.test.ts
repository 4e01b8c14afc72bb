// Hostile and broken bodies: every one is a document error (or quarantined entries), never a
// throw, a hang, an expanded entity or mojibake.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import fc from "fast-check";
import { parseDocument, parseStatement, type BankProfile, type ParsedDocument } from "../../src/arrivals/parsers/index.ts";
import { camt054, camtEntry, EXAMPLE } from "./fixtures.ts";

const CAMT: BankProfile = { format: "camt054" };
const MT: BankProfile = { format: "mt940" };
const CSV: BankProfile = { format: "csv", fields: { amount: "a", bank_reference: "r", booked_at: "t" }, currency: "CNY", amount_unit: "major", date_formats: ["yyyy-MM-dd"], timezone: "UTC" };
const PROFILES: BankProfile[] = [CAMT, MT, CSV, EXAMPLE as BankProfile];
const entryCount = (doc: ParsedDocument) => doc.statements.reduce((n, s) => n + s.entries.length, 0);

function refused(doc: ParsedDocument, pattern?: RegExp): void {
  assert.ok(doc.errors.length > 0, "a document error");
  if (pattern) assert.match(doc.errors.map((e) => `${e.field} ${e.value}`).join(" "), pattern);
}

test("XML: any DOCTYPE is refused (external entities, billion laughs)", () => {
  const xxe = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>${camt054([camtEntry({ ref: "&x;" })], { decl: "" })}`;
  const lol = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><Document><BkToCstmrDbtCdtNtfctn><Ntfctn>&lol9;</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>`;
  const plain = `<!DOCTYPE Document>${camt054([camtEntry({ ref: "R" })], { decl: "" })}`;
  for (const body of [xxe, lol, plain]) {
    const doc = parseDocument(Buffer.from(body), CAMT);
    refused(doc, /DOCTYPE/);
    assert.equal(entryCount(doc), 0);
    const st = parseStatement(Buffer.from(body));
    refused(st, /DOCTYPE/);
  }
});

test("XML: undefined entities, not XML, wrong root, deep nesting, long tokens", () => {
  refused(parseDocument(Buffer.from(camt054([camtEntry({ ref: "&nbsp;" })])), CAMT), /entity/);
  refused(parseDocument(Buffer.from("hello"), CAMT));
  refused(parseDocument(Buffer.from("<html><body/></html>"), CAMT), /root/);
  refused(parseDocument(Buffer.from('<Document xmlns="urn:x"><Other/></Document>'), CAMT));
  const deep = "<Document><BkToCstmrDbtCdtNtfctn><Ntfctn>" + "<a>".repeat(100_000) + "</a>".repeat(100_000) + "</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>";
  refused(parseDocument(Buffer.from(deep), CAMT), /deeper/);
  const longText = camt054([camtEntry({ ref: "R", ustrd: ["x".repeat(3 * 1024 * 1024)] })]);
  refused(parseDocument(Buffer.from(longText), CAMT), /1 MiB/);
  const longAttr = `<Document a="${"y".repeat(3 * 1024 * 1024)}"/>`;
  refused(parseDocument(Buffer.from(longAttr), CAMT), /1 MiB/);
  refused(parseDocument(Buffer.from(""), CAMT));
});

test("XML: a truncated notification keeps the entries read before the cut and reports it", () => {
  const full = camt054([camtEntry({ ref: "R1" }), camtEntry({ ref: "R2" }), camtEntry({ ref: "R3" })]);
  const cut = full.slice(0, full.indexOf("R3") + 1);
  const doc = parseDocument(Buffer.from(cut), CAMT);
  refused(doc);
  assert.deepEqual(doc.statements.flatMap((s) => s.entries.map((e) => e.bankReference)), ["R1", "R2"]);
  // every prefix of the file: no throw
  for (let i = 0; i < full.length; i += 7) parseDocument(Buffer.from(full.slice(0, i)), CAMT);
});

test("encodings: invalid UTF-8, UTF-16, unknown declarations, NUL bytes", () => {
  const bad = Buffer.concat([Buffer.from(camt054([camtEntry({ ref: "R", debtor: "A" })]).replace("A</Nm>", "")), Buffer.from([0xc3, 0x28])]);
  const badDoc = parseDocument(bad, CAMT);
  refused(badDoc, /utf-8/);
  assert.equal(badDoc.statements.length, 0); // no entries from a body in the wrong encoding
  // GB18030 bytes after 100 KiB of good UTF-8: the entries before them are dropped too.
  const many = Array.from({ length: 400 }, (_, i) => camtEntry({ ref: `R${i}` }));
  const [before, after] = camt054([...many, camtEntry({ ref: "LAST", debtor: "@@" })]).split("@@");
  const late = Buffer.concat([Buffer.from(before!), Buffer.from([0xb0, 0xa1]), Buffer.from(after!)]);
  assert.ok(late.length > 100_000);
  const lateDoc = parseDocument(late, CAMT);
  refused(lateDoc, /utf-8/);
  assert.equal(lateDoc.statements.length, 0);
  refused(parseDocument(Buffer.from("\ufeff:20:X", "utf16le"), MT), /UTF-16/);
  refused(parseDocument(Buffer.from(camt054([], { decl: '<?xml version="1.0" encoding="EBCDIC-XYZ"?>' })), CAMT), /unsupported/);
  refused(parseDocument(Buffer.from(":20:X\n:25:A\u0000\n"), MT), /NUL/);
  // a multi-byte character cut at the very end
  refused(parseDocument(Buffer.from([...Buffer.from(":20:X\n:25:中"), 0xe4, 0xb8]), MT), /utf-8/);
});

test("MT940 / CSV / JSON: garbage and overlong input", () => {
  refused(parseDocument(Buffer.from("no tags at all\njust text"), MT));
  refused(parseDocument(Buffer.from(":20:" + "x".repeat(100_000)), MT), /line longer/);
  refused(parseDocument(Buffer.from("[".repeat(200_000)), EXAMPLE as BankProfile), /deeper/);
  refused(parseDocument(Buffer.from('{"data":{"items":[{"amt":1.0e'), EXAMPLE as BankProfile));
  refused(parseDocument(Buffer.from(`a,r,t\n"${"x".repeat(100_000)}",1,2\n`), CSV), /64 KiB/);
});

test("random binary never throws, in every format", () => {
  for (let i = 0; i < 200; i += 1) {
    const body = randomBytes(1 + (i * 37) % 4000);
    for (const profile of PROFILES) {
      const doc = parseDocument(body, profile);
      assert.ok(Array.isArray(doc.errors));
    }
    parseStatement(body);
  }
});

test("property: mutated valid files never throw and never produce unquarantined entries without an amount", () => {
  const base = Buffer.from(camt054([camtEntry({ ref: "R1", debtor: "王小明" }), camtEntry({ ref: "R2", ind: "DBIT" })]));
  const mt = Buffer.from(":20:S\r\n:25:A\r\n:60F:C230614CNY1000,00\r\n:61:2306150615C5,NTRF//R1\r\n:86:x\r\n:62F:C230615CNY1005,00\r\n-\r\n");
  fc.assert(
    fc.property(fc.constantFrom(base, mt), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(), (src, edits, cut) => {
      const body = Buffer.from(src.subarray(0, src.length - (cut % 20)));
      for (const [pos, byte] of edits) body[pos % body.length] = byte;
      for (const doc of [parseDocument(body, src === base ? CAMT : MT), parseStatement(body)]) {
        for (const s of doc.statements) {
          for (const e of s.entries) {
            if (e.quarantine === null) {
              assert.equal(typeof e.amount, "bigint");
              assert.notEqual(e.direction, null);
              assert.notEqual(e.bankReference, null);
            }
          }
        }
      }
    }),
    { numRuns: 500 },
  );
});
