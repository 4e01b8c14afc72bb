// The custody banks Tally knows: real connectors (none yet) and the simulated `demo-*` banks,
// made on first use, each with a default notice profile so a newcomer's first transfer funds.
import type { Clock } from "../kernel/clock.ts";
import type { CustodyBank } from "./custody-bank.ts";
import { DemoBank, DEFAULT_DEMO_BEHAVIOUR, type DocumentSink } from "./demo-bank/bank.ts";

export const DEMO_BANK = /^demo-[a-z0-9-]{1,27}$/;

/** The profile that reads the demo bank's default notices (JSON, `yyyy-MM-dd HH:mm:ss`). */
export const DEMO_DEFAULT_PROFILE = {
  format: "json",
  fields: {
    entries: "$.data.items",
    account: "acctNo",
    amount: "amt",
    currency: "ccy",
    direction: "dcFlag",
    credit_value: "C",
    bank_reference: "serialNo",
    payer_name: "payerName",
    payer_account: "payerAcct",
    remittance: "memo",
    booked_at: "tranTime",
  },
  amount_unit: "major",
  date_formats: [DEFAULT_DEMO_BEHAVIOUR.notice.date_format],
  timezone: "Asia/Shanghai",
} as const;

export class CustodyBanks {
  private readonly banks = new Map<string, CustodyBank>();
  private sink: DocumentSink | null = null;

  constructor(private readonly clock: Clock, real: readonly CustodyBank[] = []) {
    for (const b of real) this.banks.set(b.code, b);
  }

  /** Where simulated banks send their notices and statements (Tally's inbox). */
  connect(sink: DocumentSink): void {
    this.sink = sink;
  }

  get(code: string): CustodyBank | undefined {
    let bank = this.banks.get(code);
    if (!bank && DEMO_BANK.test(code)) {
      bank = new DemoBank(code, this.clock, (b, kind, body, type) => {
        if (!this.sink) throw new Error("the custody inbox is not connected");
        return this.sink(b, kind, body, type);
      });
      this.banks.set(code, bank);
    }
    return bank;
  }

  demo(code: string): DemoBank | null {
    const bank = DEMO_BANK.test(code) ? this.get(code) : undefined;
    return bank instanceof DemoBank ? bank : null;
  }

  close(): void {
    for (const b of this.banks.values()) if (b instanceof DemoBank) b.close();
  }
}
