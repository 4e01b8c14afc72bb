// What the cashier shows a payer: amounts formatted by Intl from bigint minor units, exactly as
// Intl formats the same decimal; the language picked from ?lang= and Accept-Language; the
// escaping of anything merchant-supplied.
import { test } from "node:test";
import assert from "node:assert/strict";
import { failureText, pickLang } from "../../src/checkout/i18n.ts";
import { escapeHtml, formatMoney, jsonForScript, safeHttpUrl } from "../../src/web/index.ts";

test("amounts are formatted as Intl.NumberFormat formats them, in both locales", () => {
  const cases: [bigint, string, string, string][] = [
    [250_000n, "CNY", "zh-CN", "¥2,500.00"],
    [250_000n, "CNY", "en", "CN¥2,500.00"],
    [1n, "CNY", "zh-CN", "¥0.01"],
    [5n, "CNY", "en", "CN¥0.05"],
    [100_000_000_000n, "CNY", "zh-CN", "¥1,000,000,000.00"],
    [5_000n, "JPY", "en", "¥5,000"],
    [1_234_567n, "BHD", "en", "BHD 1,234.567"],
    [1_999n, "USD", "en", "$19.99"],
    [1_999n, "USD", "zh-CN", "US$19.99"],
  ];
  for (const [minor, currency, locale, expected] of cases) {
    const text = formatMoney(minor, currency, locale).replace(/\u00a0/g, " ");
    assert.equal(text, expected, `${minor} ${currency} ${locale}`);
  }
  // Against Intl itself on a decimal string (exact, no float), for amounts past 2^53.
  for (const [minor, decimal] of [[9_007_199_254_740_993n, "90071992547409.93"], [123_456_789_012_345_678_901n, "1234567890123456789.01"]] as const) {
    for (const locale of ["zh-CN", "en"]) {
      const expected = new Intl.NumberFormat(locale, { style: "currency", currency: "CNY" }).format(decimal as unknown as number);
      assert.equal(formatMoney(minor, "CNY", locale), expected);
    }
  }
});

test("language: ?lang= first, then Accept-Language by q-value, else zh-CN", () => {
  const cases: [unknown, unknown, string][] = [
    [undefined, undefined, "zh-CN"],
    ["en", "zh-CN", "en"],
    ["EN-us", undefined, "en"],
    ["zh-CN", "en-US", "zh-CN"],
    ["fr", "en-GB,en;q=0.9", "en"],
    [undefined, "en-US,en;q=0.9,zh-CN;q=0.8", "en"],
    [undefined, "zh-TW,zh;q=0.9,en;q=0.8", "zh-CN"],
    [undefined, "fr-FR,en;q=0.5,zh;q=0.7", "zh-CN"],
    [undefined, "de-DE,fr;q=0.9", "zh-CN"],
    [undefined, "en;q=0,zh;q=0.1", "zh-CN"],
    [["en", "zh"], undefined, "zh-CN"],
  ];
  for (const [lang, accept, expected] of cases) assert.equal(pickLang(lang, accept), expected, `${String(lang)} / ${String(accept)}`);
});

test("failure codes read as words a payer understands, with a fallback", () => {
  assert.match(failureText("zh-CN", "declined"), /拒绝/);
  assert.match(failureText("en", "insufficient_funds"), /enough balance/);
  assert.match(failureText("en", "channel_error"), /not charged/);
  assert.equal(failureText("zh-CN", "misconfigured"), failureText("zh-CN", null));
  assert.equal(failureText("en", "__proto__"), failureText("en", undefined));
});

test("escaping: HTML text, script JSON and URLs", () => {
  assert.equal(escapeHtml(`<script>alert("1")</script>&'`), "&lt;script&gt;alert(&quot;1&quot;)&lt;/script&gt;&amp;&#39;");
  const json = jsonForScript({ d: "</script><!-- \u2028", n: 12n });
  assert.ok(!json.includes("<") && !json.includes("\u2028"));
  assert.deepEqual(JSON.parse(json), { d: "</script><!-- \u2028", n: "12" });
  const urls: [string | null, string | null][] = [
    ["https://merchant.example/orders/1?x=<y>", "https://merchant.example/orders/1?x=%3Cy%3E"],
    ["http://127.0.0.1:3000/done", "http://127.0.0.1:3000/done"],
    ["javascript:alert(1)", null],
    ["  JavaScript:alert(1)", null],
    ["data:text/html,<script>alert(1)</script>", null],
    ["/relative", null],
    [null, null],
  ];
  for (const [input, expected] of urls) assert.equal(safeHttpUrl(input), expected, String(input));
});
