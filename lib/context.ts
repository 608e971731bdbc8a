/**
 * The request context (oslo's `ctxt`): what the caller sent, available to the handler
 * through `currentContext()` and carried on by every call the handler makes, across
 * `await` and `yield`, without the user passing it along (AsyncLocalStorage).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Context } from './protocol/envelope';

const storage = new AsyncLocalStorage<Context>();

/** The context of the request being handled, or `undefined` outside a handler. */
export function currentContext(): Record<string, unknown> | undefined {
  return storage.getStore();
}

export function runWithContext<R>(context: Context, fn: () => R): R {
  return storage.run(context, fn);
}

/** oslo.context's format, so Python services log the same kind of id. */
export function newRequestId(): string {
  return `req-${randomUUID()}`;
}

/**
 * The context a new outgoing message carries: explicit values win over the handler's
 * own, and every request has a `request_id`. Refuses values JSON cannot carry, here on
 * the caller's side, instead of sending something the server would see differently.
 */
export function outgoingContext(explicit: Record<string, unknown> | undefined): Context {
  const inherited = storage.getStore();
  if (explicit !== undefined && (typeof explicit !== 'object' || explicit === null || Array.isArray(explicit))) {
    throw new TypeError('context must be a plain object');
  }
  if (inherited === undefined && explicit === undefined) return { request_id: newRequestId() }; // the hot path
  const ctx: Context = inherited ? { ...inherited, ...explicit } : { ...explicit };
  // The inherited part too: a handler can put anything into its own context object.
  assertJsonSafe(ctx, 'context');
  if (typeof ctx.request_id !== 'string' || !ctx.request_id) ctx.request_id = newRequestId();
  return ctx;
}

/** Throws a TypeError naming the first path whose value JSON would drop or mangle. */
export function assertJsonSafe(value: unknown, path: string, seen: Set<object> = new Set()): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${path} is ${value}, which JSON cannot carry`);
      return;
    case 'object': {
      if (value === null) return;
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return; // Date and friends
      if (seen.has(value)) throw new TypeError(`${path} is a circular reference, which JSON cannot carry`);
      seen.add(value);
      if (Array.isArray(value)) value.forEach((v, i) => assertJsonSafe(v, `${path}[${i}]`, seen));
      else if (value instanceof Map || value instanceof Set) throw new TypeError(`${path} is a ${value.constructor.name}, which JSON cannot carry`);
      else for (const k of Object.keys(value)) assertJsonSafe((value as Record<string, unknown>)[k], `${path}.${k}`, seen);
      seen.delete(value);
      return;
    }
    default:
      throw new TypeError(`${path} is ${typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`}, which JSON cannot carry`);
  }
}
