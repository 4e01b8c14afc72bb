// How the simulated bank writes what it sends: arrival notices in the four formats a real bank
// uses (JSON, CSV, camt.054, MT940) with a configurable date format, and daily statements in
// camt.053 or MT940. Amounts go out as exact decimal strings, never through a float.
import { formatMinor } from "../../kernel/money.ts";

export interface BankCredit {
  readonly bankReference: string;
  readonly accountNumber: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly payerName: string;
  readonly payerAccount: string;
  readonly remittance: string;
  /** Booking moment, µs since the epoch. */
  readonly bookedAtUs: bigint;
}

export type NoticeFormat = "json" | "csv" | "camt054" | "mt940";

const SHANGHAI_OFFSET_MS = 8 * 3600_000;

/** The parts of a moment in Asia/Shanghai (UTC+8, no DST), the bank's local time. */
function localParts(us: bigint) {
  const d = new Date(Number(us / 1000n) + SHANGHAI_OFFSET_MS);
  const p2 = (n: number) => String(n).padStart(2, "0");
  return {
    yyyy: String(d.getUTCFullYear()).padStart(4, "0"),
    MM: p2(d.getUTCMonth() + 1),
    dd: p2(d.getUTCDate()),
    HH: p2(d.getUTCHours()),
    mm: p2(d.getUTCMinutes()),
    ss: p2(d.getUTCSeconds()),
    SSS: String(d.getUTCMilliseconds()).padStart(3, "0"),
  };
}

/** Formats a moment with the bank-profile date tokens (yyyy MM dd HH mm ss SSS XXX), local time. */
export function formatDate(us: bigint, pattern: string): string {
  const p = localParts(us);
  return pattern.replace(/yyyy|MM|dd|HH|mm|ss|SSS|XXX/g, (token) => (token === "XXX" ? "+08:00" : p[token as keyof typeof p]));
}

function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function writeNotice(credits: readonly BankCredit[], format: NoticeFormat, dateFormat: string, messageId: string): string {
  switch (format) {
    case "json":
      return JSON.stringify({
        code: "0000",
        data: {
          items: credits.map((c) => ({
            serialNo: c.bankReference,
            acctNo: c.accountNumber,
            amt: formatMinor(c.amount, c.currency),
            ccy: c.currency,
            dcFlag: "C",
            payerName: c.payerName,
            payerAcct: c.payerAccount,
            memo: c.remittance,
            tranTime: formatDate(c.bookedAtUs, dateFormat),
          })),
        },
      });
    case "csv":
      return [
        "serial_no,account,amount,currency,dc,payer_name,payer_account,memo,booked_at",
        ...credits.map((c) =>
          [c.bankReference, c.accountNumber, formatMinor(c.amount, c.currency), c.currency, "C", c.payerName, c.payerAccount, c.remittance, formatDate(c.bookedAtUs, dateFormat)].map(csvField).join(","),
        ),
      ].join("\r\n") + "\r\n";
    case "camt054":
      return camt("054", noticeBlocks(credits), messageId);
    case "mt940":
      return noticeBlocks(credits).map((b) => mt940(b, messageId)).join("\r\n");
  }
}

function isoDate(us: bigint): string {
  const p = localParts(us);
  return `${p.yyyy}-${p.MM}-${p.dd}`;
}

function isoDateTime(us: bigint): string {
  const p = localParts(us);
  return `${p.yyyy}-${p.MM}-${p.dd}T${p.HH}:${p.mm}:${p.ss}+08:00`;
}

function entryXml(c: BankCredit): string {
  return `<Ntry><Amt Ccy="${c.currency}">${formatMinor(c.amount, c.currency)}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><DtTm>${isoDateTime(c.bookedAtUs)}</DtTm></BookgDt><ValDt><Dt>${isoDate(c.bookedAtUs)}</Dt></ValDt><AcctSvcrRef>${xmlEscape(c.bankReference)}</AcctSvcrRef><BkTxCd/><NtryDtls><TxDtls><RltdPties><Dbtr><Nm>${xmlEscape(c.payerName)}</Nm></Dbtr><DbtrAcct><Id><Othr><Id>${xmlEscape(c.payerAccount)}</Id></Othr></Id></DbtrAcct></RltdPties><RmtInf><Ustrd>${xmlEscape(c.remittance)}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>`;
}

export interface StatementAccount {
  readonly account: string;
  readonly currency: string;
  readonly opening: bigint;
  readonly closing: bigint;
  /** The statement's day, YYYY-MM-DD (bank local). */
  readonly date: string;
  readonly credits: readonly BankCredit[];
}

function camt(kind: "053" | "054", blocks: readonly StatementAccount[], messageId: string): string {
  const root = kind === "053" ? "BkToCstmrStmt" : "BkToCstmrDbtCdtNtfctn";
  const block = kind === "053" ? "Stmt" : "Ntfctn";
  const parts = blocks.map((b, i) => {
    const c = b.currency;
    const bal =
      kind === "053"
        ? `<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="${c}">${formatMinor(b.opening, c)}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>${b.date}</Dt></Dt></Bal><Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="${c}">${formatMinor(b.closing, c)}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>${b.date}</Dt></Dt></Bal>`
        : "";
    const period = kind === "053" ? `<FrToDt><FrDtTm>${b.date}T00:00:00+08:00</FrDtTm><ToDtTm>${b.date}T23:59:59+08:00</ToDtTm></FrToDt>` : "";
    return `<${block}><Id>${xmlEscape(messageId)}-${i}</Id><CreDtTm>${b.date}T23:59:59+08:00</CreDtTm>${period}<Acct><Id><Othr><Id>${xmlEscape(b.account)}</Id></Othr></Id><Ccy>${c}</Ccy></Acct>${bal}${b.credits.map(entryXml).join("")}</${block}>`;
  });
  const ns = kind === "053" ? "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08" : "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08";
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="${ns}"><${root}><GrpHdr><MsgId>${xmlEscape(messageId)}</MsgId><CreDtTm>${blocks[0]?.date ?? "1970-01-01"}T23:59:59+08:00</CreDtTm></GrpHdr>${parts.join("")}</${root}></Document>\n`;
}

/** Notices carry no balances: one block per account with the credits only. */
function noticeBlocks(credits: readonly BankCredit[]): StatementAccount[] {
  const byAccount = new Map<string, BankCredit[]>();
  for (const c of credits) byAccount.set(c.accountNumber, [...(byAccount.get(c.accountNumber) ?? []), c]);
  return [...byAccount].map(([account, list]) => ({ account, currency: list[0]!.currency, opening: 0n, closing: 0n, date: isoDate(list[0]!.bookedAtUs), credits: list }));
}

function mtAmount(amount: bigint, currency: string): string {
  return formatMinor(amount, currency).replace(".", ",");
}

function yymmdd(us: bigint): string {
  const p = localParts(us);
  return `${p.yyyy.slice(2)}${p.MM}${p.dd}`;
}

function mt940(b: StatementAccount, messageId: string): string {
  const c = b.currency;
  const date = b.date.slice(2).replace(/-/g, "");
  const lines = [`:20:${messageId.slice(0, 16)}`, `:25:${b.account}`, ":28C:1/1", `:60F:C${date}${c}${mtAmount(b.opening, c)}`];
  for (const credit of b.credits) {
    const d = yymmdd(credit.bookedAtUs);
    lines.push(`:61:${d}${d.slice(2)}C${mtAmount(credit.amount, c)}NTRFNONREF//${credit.bankReference}`);
    lines.push(`:86:${credit.remittance.replace(/\r?\n/g, " ").slice(0, 300)} /PAYER/${credit.payerName}/ACCT/${credit.payerAccount}`);
  }
  lines.push(`:62F:C${date}${c}${mtAmount(b.closing, c)}`);
  return lines.join("\r\n") + "\r\n-";
}

export function writeStatement(accounts: readonly StatementAccount[], format: "camt053" | "mt940", messageId: string): string {
  return format === "camt053" ? camt("053", accounts, messageId) : accounts.map((b) => mt940(b, messageId)).join("\r\n");
}
