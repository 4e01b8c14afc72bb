// Screenshots of the cashier for the README: each language on a phone and on a desktop.
// Run: node --import tsx test/checkout/screenshots.ts  (writes docs/images/cashier-*.png)
import { mkdirSync } from "node:fs";
import { checkoutUrl, startBrowserRig } from "./browser.ts";

const OUT = new URL("../../docs/images/", import.meta.url);
mkdirSync(OUT, { recursive: true });
const rig = await startBrowserRig("checkout-screenshots");
try {
  const { url } = await checkoutUrl(rig, { methods: ["alipay", "wechat_pay", "unionpay", "card"] });
  for (const lang of ["zh-CN", "en"]) {
    for (const [device, viewport, scale] of [["phone", { width: 375, height: 667 }, 2], ["desktop", { width: 1280, height: 900 }, 1]] as const) {
      const context = await rig.browser.newContext({ locale: lang, viewport, deviceScaleFactor: scale });
      const page = await context.newPage();
      await page.goto(`${url}&lang=${lang}`);
      const path = new URL(`cashier-${lang}-${device}.png`, OUT);
      await page.screenshot({ path: path.pathname, fullPage: true });
      console.log(path.pathname);
      await context.close();
    }
  }
} finally {
  await rig.close();
}
