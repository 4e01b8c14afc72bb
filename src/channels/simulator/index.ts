export { SimulatorChannel, defaultSimulatorSettings, type SimulatorSettings, type NotificationSink } from "./client.ts";
export { PAY_OUTCOMES, PAYOUT_OUTCOMES, FINAL_OUTCOMES, SIMULATOR_CODES } from "./transform.ts";
