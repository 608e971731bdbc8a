/**
 * The baseline's whole protocol: the floor Courier is measured against. One connection
 * with TCP_NODELAY, JSON bodies `{ method, args }`, replies `{ result }` (or, for a
 * stream, `{ item }`... `{ end: true }`) through the default exchange to the caller's
 * reply queue, matched by correlation id. Requests go through a topic exchange to the
 * topic queue, as Courier's do; fanout through `<topic>_fanout`.
 */
export const CONNECT_OPTIONS = { noDelay: true } as const;

export const JSON_PROPS = { contentType: 'application/json' } as const;

/** Unacked deliveries per consumer: Courier's default service concurrency (oslo's executor size). */
export const PREFETCH = 64;

export const fanoutExchange = (topic: string): string => `${topic}_fanout`;

export interface Request {
  method: 'echo' | 'noop' | 'count' | 'bump' | 'waitCount' | 'stream' | 'fanoutHit';
  args: Record<string, unknown>;
}

export type Reply = { result: unknown } | { item: unknown } | { end: true } | { error: string };
