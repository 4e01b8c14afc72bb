// A ~50 MiB camt.054 is parsed in bounded memory: the body is decoded and tokenised in 64 KiB
// pieces and no DOM is built, so the JS heap grows by far less than the file.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { parseDocument, type BankProfile } from "../../src/arrivals/parsers/index.ts";
import { camtEntry } from "./fixtures.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const TARGET_BYTES = 50 * 1024 * 1024;
const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>BIG</MsgId></GrpHdr><Ntfctn><Id>N</Id><Acct><Id><Othr><Id>VA0001</Id></Othr></Id></Acct>\n';
const TAIL = "</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>\n";

function entryXml(i: number): string {
  return (
    camtEntry({
      amount: `${(i % 100000) + 1}.${String(i % 100).padStart(2, "0")}`,
      ref: `REF${i}`,
      stsCd: "BOOK",
      debtorV8: `Payer number ${i} 王小明`,
      debtorAcct: `CN${String(i).padStart(20, "0")}`,
      ustrd: [`AG-2023-${i} deposit for the apartment, contract HT-${i}, first instalment`, "paid by bank transfer through the custody account"],
      bookg: "2023-06-15T10:00:00+08:00",
    }) + "\n"
  );
}

/** The file, generated chunk by chunk (~1 MiB each); it never exists whole. */
function* bigCamt(stats: { bytes: number; entries: number; minor: bigint }): Generator<Uint8Array> {
  let chunk = HEAD;
  let i = 0;
  while (stats.bytes + chunk.length < TARGET_BYTES) {
    const xml = entryXml(i);
    chunk += xml;
    stats.entries += 1;
    stats.minor += BigInt((i % 100000) + 1) * 100n + BigInt(i % 100);
    i += 1;
    if (chunk.length > 1024 * 1024) {
      const b = Buffer.from(chunk);
      stats.bytes += b.length;
      yield b;
      chunk = "";
    }
  }
  const b = Buffer.from(chunk + TAIL);
  stats.bytes += b.length;
  yield b;
}

test("memory: a generated ~50 MiB camt.054 is parsed with heap growth far below its size", { timeout: 300_000 }, () => {
  const stats = { bytes: 0, entries: 0, minor: 0n };
  gc();
  const baseline = process.memoryUsage().heapUsed;
  let peak = baseline; // live heap, sampled after a collection
  let rawPeak = baseline; // heap including garbage not yet collected
  let count = 0;
  let sum = 0n;
  const doc = parseDocument(bigCamt(stats), { format: "camt054" } as BankProfile, {
    onEntry(entry) {
      count += 1;
      sum += entry.amount ?? 0n;
      assert.equal(entry.quarantine, null);
      if (count % 1000 === 0) rawPeak = Math.max(rawPeak, process.memoryUsage().heapUsed);
      if (count % 10000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      }
    },
  });
  const growth = peak - baseline;
  console.log(`# big camt.054: ${(stats.bytes / 1048576).toFixed(1)} MiB, ${count} entries, live heap growth ${(growth / 1048576).toFixed(1)} MiB (with uncollected garbage ${((rawPeak - baseline) / 1048576).toFixed(1)} MiB)`);
  assert.deepEqual(doc.errors, []);
  assert.ok(stats.bytes >= 49 * 1024 * 1024);
  assert.equal(count, stats.entries);
  assert.equal(sum, stats.minor);
  assert.equal(doc.statements[0]!.entryCount, count);
  assert.equal(doc.statements[0]!.entries.length, 0);
  assert.ok(growth < stats.bytes / 10, `live heap grew by ${growth} bytes for a ${stats.bytes}-byte file`);
});

test("memory: the same file as one Buffer with every entry kept costs the entries, not the file", { timeout: 300_000 }, () => {
  const stats = { bytes: 0, entries: 0, minor: 0n };
  const body = Buffer.concat([...bigCamt(stats)]); // off-heap (ArrayBuffer), not counted in heapUsed
  gc();
  const baseline = process.memoryUsage().heapUsed;
  const doc = parseDocument(body, { format: "camt054" } as BankProfile);
  gc();
  const after = process.memoryUsage().heapUsed;
  const entries = doc.statements[0]!.entries;
  const growth = after - baseline;
  console.log(`# big camt.054 collected: ${entries.length} entries kept, heap growth ${(growth / 1048576).toFixed(1)} MiB for ${(body.length / 1048576).toFixed(1)} MiB`);
  assert.equal(entries.length, stats.entries);
  assert.equal(entries.at(-1)!.bankReference, `REF${stats.entries - 1}`);
  // What remains is the entries themselves (strings, bigints, objects): about 0.7 KiB each here,
  // whatever the file's size; the body and its decoded text are gone. Use onEntry to keep none.
  assert.ok(growth / entries.length < 1024, `${growth / entries.length} bytes per entry kept`);
});

test("memory: a generated ~30 MiB JSON notice is streamed too", { timeout: 300_000 }, () => {
  const profile = {
    format: "json",
    fields: { entries: "$.data.items", account: "$.header.acct", amount: "amt", currency: "ccy", direction: "dcFlag", credit_value: "C", bank_reference: "serialNo", payer_name: "payerName", remittance: "memo", booked_at: "tranTime" },
    amount_unit: "major", date_formats: ["yyyyMMdd HHmmss"], timezone: "Asia/Shanghai",
  } as BankProfile;
  const stats = { bytes: 0, entries: 0 };
  function* body(): Generator<Uint8Array> {
    let chunk = '{"header":{"acct":"VA0001"},"data":{"items":[';
    while (stats.bytes + chunk.length < 30 * 1024 * 1024) {
      const i = stats.entries;
      chunk += `${i === 0 ? "" : ","}{"amt":"${i % 1000}.${String(i % 100).padStart(2, "0")}","ccy":"CNY","dcFlag":"C","serialNo":"SN${i}","payerName":"王小明 ${i}","memo":"AG-2023-${i} deposit for the apartment, first instalment","tranTime":"20230615 143000"}`;
      stats.entries += 1;
      if (chunk.length > 1024 * 1024) {
        const b = Buffer.from(chunk);
        stats.bytes += b.length;
        yield b;
        chunk = "";
      }
    }
    const b = Buffer.from(chunk + "]}}");
    stats.bytes += b.length;
    yield b;
  }
  gc();
  const baseline = process.memoryUsage().heapUsed;
  let peak = baseline;
  let count = 0;
  const doc = parseDocument(body(), profile, {
    onEntry(entry) {
      count += 1;
      assert.equal(entry.quarantine, null);
      assert.equal(entry.account, "VA0001");
      if (count % 20000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      }
    },
  });
  const growth = peak - baseline;
  console.log(`# big JSON: ${(stats.bytes / 1048576).toFixed(1)} MiB, ${count} entries, live heap growth ${(growth / 1048576).toFixed(1)} MiB`);
  assert.deepEqual(doc.errors, []);
  assert.equal(count, stats.entries);
  assert.ok(growth < stats.bytes / 10, `live heap grew by ${growth} bytes for a ${stats.bytes}-byte file`);
});
