// The payments module's public surface.
export { PaymentService, INSTALLMENT_PERIODS, type PaymentsContext } from "./service.ts";
export { RefundService } from "./refunds.ts";
export { PayoutService } from "./payouts.ts";
export { NOTIFICATION_PURPOSE, NotificationInbox, sealClearNotificationBodies } from "./notifications.ts";
export { registerPaymentRoutes, attemptInput, AttemptCreate } from "./routes.ts";
export { registerNotifyRoutes } from "./notify-routes.ts";
export { checkoutUrl, paymentJson, attemptJson } from "./view.ts";
export type { Payment, Attempt, Refund, Payout, PaymentStatus } from "./model.ts";
