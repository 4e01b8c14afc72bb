// Webhook endpoints and events over HTTP (PAYMENTS.md "Webhooks to merchants").
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type, type Static } from "typebox";
import type { StoredResponse } from "../db/idempotency.ts";
import { stringifyJson } from "../http/json.ts";
import { IdParams } from "../http/params.ts";
import { sendRendered, unitOfWorkHook, type HttpDeps } from "../http/server.ts";
import { formatTimestampUs } from "../kernel/clock.ts";
import { WEBHOOK_EVENT_TYPES, deliveryJson, type WebhookEndpoint, type WebhookService } from "./service.ts";

const EndpointCreate = Type.Object(
  {
    url: Type.String({ minLength: 8, maxLength: 2048, pattern: "^https?://[^\\s]+$" }),
    events: Type.Array(Type.Union([Type.Literal("*"), ...WEBHOOK_EVENT_TYPES.map((t) => Type.Literal(t))]), { minItems: 1, maxItems: 32, uniqueItems: true }),
  },
  { additionalProperties: false },
);

function endpointJson(e: WebhookEndpoint, secret?: string) {
  return { id: e.id, object: "webhook_endpoint", url: e.url, events: e.events, created_at: formatTimestampUs(e.createdAt), ...(secret ? { secret } : {}) };
}

const json = (status: number, body: unknown): StoredResponse => ({ status, body: stringifyJson(body) });

export function registerWebhookRoutes(app: FastifyInstance, deps: Pick<HttpDeps, "idempotency"> & { webhooks: WebhookService }): void {
  const { webhooks } = deps;
  const merchantOf = (request: FastifyRequest) => request.principal?.merchantId ?? null;

  app.post(
    "/v1/webhook-endpoints",
    { config: { scope: "webhooks:write" }, schema: { tags: ["webhooks"], summary: "Subscribe an endpoint to events; the answer carries its signing secret, shown once", body: EndpointCreate } },
    async (request, reply) => {
      const body = request.body as Static<typeof EndpointCreate>;
      const render = (v: { endpoint: WebhookEndpoint; secret: string }) => json(201, endpointJson(v.endpoint, v.secret));
      const hook = unitOfWorkHook(deps, request, render);
      const created = await webhooks.createEndpoint(merchantOf(request), body.url, body.events, hook);
      return sendRendered(reply, render(created));
    },
  );

  app.get("/v1/webhook-endpoints", { config: { scope: "webhooks:write" }, schema: { tags: ["webhooks"], summary: "List webhook endpoints" } }, async (request, reply) => {
    const endpoints = await webhooks.listEndpoints(merchantOf(request));
    return sendRendered(reply, json(200, { data: endpoints.map((e) => endpointJson(e)), has_more: false }));
  });

  app.get("/v1/events/:id", { config: { scope: "payments:read" }, schema: { tags: ["webhooks"], summary: "Retrieve an event", params: IdParams } }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const event = await webhooks.event(id, merchantOf(request));
    return reply.code(200).type("application/json; charset=utf-8").send(`{"id":${JSON.stringify(event.id)},"object":"event","type":${JSON.stringify(event.type)},"created_at":${JSON.stringify(formatTimestampUs(event.createdAt))},"data":${event.data}}`);
  });

  app.get(
    "/v1/events/:id/deliveries",
    { config: { scope: "payments:read" }, schema: { tags: ["webhooks"], summary: "Every delivery attempt of an event", params: IdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const rows = await webhooks.deliveries(id, merchantOf(request));
      return sendRendered(reply, json(200, { data: rows.map(deliveryJson), has_more: false }));
    },
  );

  app.post(
    "/v1/events/:id/redeliver",
    { config: { scope: "webhooks:write" }, schema: { tags: ["webhooks"], summary: "Send an event again to its endpoints", params: IdParams } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const render = (queued: number) => json(202, { event_id: id, deliveries_queued: queued });
      const queued = await webhooks.redeliver(id, merchantOf(request), unitOfWorkHook(deps, request, render));
      return sendRendered(reply, render(queued));
    },
  );
}
