export { WebhookService, WEBHOOK_EVENT_TYPES, eventBody, type WebhookEndpoint } from "./service.ts";
export { registerWebhookRoutes } from "./routes.ts";
export { signatureHeader, verifySignature } from "./signing.ts";
