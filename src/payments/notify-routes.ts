// Channel notifications in (`POST /v1/channels/{channel}/notify`, no API key: channels sign
// their own) and the operators' view of the inbox (list, replay).
import type { FastifyInstance } from "fastify";
import { Type, type Static } from "typebox";
import { stringifyJson } from "../http/json.ts";
import { IdParams } from "../http/params.ts";
import { sendRendered } from "../http/server.ts";
import { formatTimestampUs } from "../kernel/clock.ts";
import type { Database } from "../db/database.ts";
import type { NotificationInbox } from "./notifications.ts";

/** A notification body larger than this is refused (channels send a few KiB). */
const NOTIFICATION_BYTES_MAX = 64 * 1024;

const InboxQuery = Type.Object(
  {
    status: Type.Optional(Type.Union(["received", "applied", "duplicate", "rejected", "ignored", "failed"].map((s) => Type.Literal(s)))),
    channel: Type.Optional(Type.String({ maxLength: 64 })),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,3}$" })),
  },
  { additionalProperties: false },
);

export function registerNotifyRoutes(app: FastifyInstance, deps: { inbox: NotificationInbox; db: Database }): void {
  // Channels post form-encoded (Alipay), JSON (WeChat Pay, the simulator) or anything else: the
  // body is taken as bytes, whatever its type, stored exactly as received before it is parsed,
  // and handed to the connector as UTF-8 text (with its bytes, for a channel that sends another
  // charset).
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: NOTIFICATION_BYTES_MAX }, (_request, body, done) => done(null, body));
    scope.post(
      "/v1/channels/:channel/notify",
      { bodyLimit: NOTIFICATION_BYTES_MAX, schema: { tags: ["channels"], summary: "A channel's asynchronous notification (its own format)", params: Type.Object({ channel: Type.String({ pattern: "^[a-z0-9_]{1,32}$" }) }) } },
      async (request, reply) => {
        const { channel } = request.params as { channel: string };
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(request.headers)) if (typeof v === "string") headers[k] = v;
        const bytes = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const outcome = await deps.inbox.receive(channel, { contentType: request.headers["content-type"], headers, body: bytes.toString("utf8"), bytes });
        return reply.code(outcome.ack.status).type(outcome.ack.contentType).send(outcome.ack.body);
      },
    );
  });

  app.get(
    "/v1/admin/notifications",
    { config: { scope: "keys:write" }, schema: { tags: ["channels"], summary: "The notification inbox, newest first", querystring: InboxQuery } },
    async (request, reply) => {
      const q = request.query as Static<typeof InboxQuery>;
      let query = deps.db.read.selectFrom("channel_notifications").selectAll();
      if (q.status) query = query.where("status", "=", q.status);
      if (q.channel) query = query.where("channel", "=", q.channel);
      const limit = Math.min(Math.max(Number(q.limit ?? 20), 1), 100);
      // One row whose seal does not open (its key lost, its bytes damaged) must not hide the rest;
      // it is listed with a null body and logged.
      const bodyOrNull = async (r: (typeof rows)[number]): Promise<string | null> => {
        try {
          return await deps.inbox.bodyOf(r);
        } catch (err) {
          request.log.error({ err, notification: r.id }, "a stored notification's seal does not open");
          return null;
        }
      };
      const rows = await query.orderBy("received_at", "desc").orderBy("id", "desc").limit(limit).execute();
      const data: unknown[] = [];
      for (const r of rows) {
        data.push({
          id: r.id,
          channel: r.channel,
          status: r.status,
          reason: r.reason,
          received_at: formatTimestampUs(BigInt(r.received_at)),
          content_type: r.content_type,
          body: await bodyOrNull(r),
        });
      }
      return sendRendered(reply, { status: 200, body: stringifyJson({ data, has_more: false }) });
    },
  );

  app.post(
    "/v1/admin/notifications/:id/replay",
    { config: { scope: "keys:write" }, schema: { tags: ["channels"], summary: "Process a stored notification again", params: IdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const outcome = await deps.inbox.replay(id);
      return sendRendered(reply, { status: 200, body: stringifyJson({ id: outcome.id, status: outcome.status, reason: outcome.reason }) });
    },
  );
}
