// TEMPLATE — copy to `src/channels/<name>/client.ts`. The connector's I/O: sign, send with a
// timeout, verify the answer's signature before reading it, and sort failures into the port's two
// kinds. Everything the channel says is interpreted in transform.ts, never here.
import type { Channel, ChannelFlow, NotificationVerdict, NotifyAck, PayRequest, PayResult, QueryRequest, RawNotification, RefundRequest, RefundResult } from "../channel.ts";
import { ChannelOutcomeUnknownError, ChannelUnavailableError, notSentCode } from "../channel.ts";
import { acknowledgeTemplate, verifyTemplateNotification } from "./notify.ts";
import { payBody, payRequestProblem, queryResult, refundResult } from "./transform.ts";

export interface TemplateConfig {
  // TODO: merchant id, keys (PEM text; the wiring reads them from *_FILE variables), base URL (so
  // tests can point at the fake), notify URL override, timeoutMs.
  readonly merchantId: string;
  readonly baseUrl: string;
  readonly timeoutMs?: number;
}

/** TODO: only the flows the connector really implements; routing reads this. */
const FLOWS: ReadonlySet<ChannelFlow> = new Set(["pay", "query", "refund", "notify"]);
/** Connection errors before a byte left: nothing can have moved, so routing may fail over. */

export class TemplateChannel implements Channel {
  readonly id = "template"; // TODO: the channel id used in routing and `/v1/channels/<id>/notify`
  readonly methods = ["card"] as const; // TODO
  readonly flows = FLOWS;

  constructor(private readonly config: TemplateConfig, private readonly nowMs: () => number = Date.now) {}

  async pay(request: PayRequest): Promise<PayResult> {
    const problem = payRequestProblem(request);
    if (problem !== null) return { status: "failed", failure: problem };
    const answer = await this.call("POST", "/pay", payBody(request));
    // TODO: map the answer in transform.ts (redirect URL, QR code, or a final status).
    return { status: "pending", nextAction: { type: typeof answer.url === "string" ? "redirect" : "none", ...(typeof answer.url === "string" ? { url: answer.url } : {}) } };
  }

  async query(request: QueryRequest): Promise<PayResult> {
    return queryResult(await this.call("GET", `/orders/${encodeURIComponent(request.attemptId)}`), request.amount);
  }

  async refund(request: RefundRequest): Promise<RefundResult> {
    try {
      return refundResult(await this.call("POST", "/refunds", { refund_no: request.refundId, order_no: request.attemptId, amount: String(request.amount) }));
    } catch (error) {
      // Sent but unanswered: the same refund id settles it later without refunding twice.
      if (error instanceof ChannelOutcomeUnknownError) return { status: "unknown" };
      throw error;
    }
  }

  async verifyNotification(notification: RawNotification): Promise<NotificationVerdict> {
    return verifyTemplateNotification(notification);
  }

  acknowledge(accepted: boolean): NotifyAck {
    return acknowledgeTemplate(accepted);
  }

  private async call(method: "GET" | "POST", path: string, body?: Record<string, unknown>): Promise<Record<string, unknown>> {
    // TODO: sign the request as the channel's documentation says (timestamp from this.nowMs()).
    void this.nowMs;
    let response: Response;
    try {
      response = await fetch(`${this.config.baseUrl}${path}`, {
        method,
        headers: { "content-type": "application/json", accept: "application/json" },
        signal: AbortSignal.timeout(this.config.timeoutMs ?? 10_000),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (error) {
      const code = notSentCode(error);
      if (code !== null) throw new ChannelUnavailableError(`${method} ${path} could not be sent: ${code}`, { cause: error });
      throw new ChannelOutcomeUnknownError(`${method} ${path}: no answer`, { cause: error });
    }
    const text = await response.text().catch((error: unknown) => {
      throw new ChannelOutcomeUnknownError(`${method} ${path}: the answer was cut off`, { cause: error });
    });
    // TODO: verify the answer's signature here; an unverifiable answer is ChannelOutcomeUnknownError.
    try {
      const data: unknown = JSON.parse(text);
      if (typeof data === "object" && data !== null && !Array.isArray(data)) return data as Record<string, unknown>;
    } catch {
      // falls through
    }
    throw new ChannelOutcomeUnknownError(`${method} ${path}: the answer is not a JSON object`);
  }
}

/** TODO: rename; the wiring (src/app.ts) calls this with a config read from the environment. */
export function createTemplateChannel(config: TemplateConfig, nowMs: () => number = Date.now): TemplateChannel {
  return new TemplateChannel(config, nowMs);
}
