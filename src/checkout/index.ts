// The cashier (收银台): the hosted page a payer opens from a payment's checkout_url.
export { registerCheckoutRoutes, type CheckoutDeps } from "./routes.ts";
export { installmentPlan, installmentPlansFor, installmentFee, HUABEI_FEE_RATE_BASIS_POINTS, type InstallmentPlan } from "./installments.ts";
