// State machines as data: a table from (status, event) to the next status, read by one function.
// An event a status does not accept is a typed error, never a silent no-op.

export type TransitionTable<S extends string, E extends string> = Readonly<Record<E, Readonly<Partial<Record<S, S>>>>>;

export class InvalidTransitionError extends Error {
  override name = "InvalidTransitionError";
  constructor(readonly machine: string, readonly from: string, readonly event: string) {
    super(`${machine}: "${event}" is not allowed in status "${from}"`);
  }
}

export function transition<S extends string, E extends string>(machine: string, table: TransitionTable<S, E>, from: S, event: E): S {
  const to = table[event][from];
  if (to === undefined) throw new InvalidTransitionError(machine, from, event);
  return to;
}

export function canTransition<S extends string, E extends string>(table: TransitionTable<S, E>, from: S, event: E): boolean {
  return table[event][from] !== undefined;
}
