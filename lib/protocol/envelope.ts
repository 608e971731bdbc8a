/**
 * oslo.messaging's message format (oslo-wire.md sections 6-8), the one codec every
 * transport uses. Bodies are JSON twice over: `{"oslo.version": "2.0", "oslo.message":
 * "<the message as JSON text>"}`; the request context is spread over `_context_*` keys.
 *
 * Courier's one extension: a caller that wants a stream sets `_courier_stream: true`,
 * and the server sends one reply per yielded item tagged `_courier_seq` before the
 * ending reply. Only such callers get tagged replies, so oslo peers never see them, and
 * a tagged item can never be taken for a call-monitor heartbeat.
 */
import { randomFillSync } from 'node:crypto';
import type { WireFailure } from '../errors';

export const ENVELOPE_VERSION = '2.0';
const CONTEXT_PREFIX = '_context_';
const MAX_DEPTH = 64;

export type Context = Record<string, unknown>;

/** A request as the server sees it after decoding. */
export interface Request {
  method: string;
  args: Record<string, unknown>;
  namespace?: string;
  /** Absent on the wire means "1.0" (oslo's default). */
  version: string;
  uniqueId?: string;
  /** Present on calls only: where and under which id to reply. */
  msgId?: string;
  replyQ?: string;
  /** oslo's call-monitor timeout in seconds (`_timeout`), or null. */
  monitorTimeout: number | null;
  stream: boolean;
  context: Context;
}

export interface RequestFields {
  method: string;
  args: Record<string, unknown>;
  namespace?: string;
  version?: string;
  uniqueId: string;
  call?: { msgId: string; replyQ: string; monitorTimeout: number | null; stream: boolean };
  context: Context;
}

/** One reply message. `seq` marks a streamed item (Courier extension). */
export interface Reply {
  msgId: string;
  result: unknown;
  failure: string | null;
  ending: boolean;
  seq?: number;
}

/** The body could not be used; `replyTo` is set when the caller can still be told. */
export class DecodeError extends Error {
  constructor(
    message: string,
    readonly replyTo?: { msgId: string; replyQ: string },
  ) {
    super(message);
  }
}

// Ids are drawn from a pool of random bytes refilled 256 ids at a time: three ids per
// call made this show up in profiles when each was a randomUUID() plus a regex.
const ID_POOL = Buffer.alloc(16 * 256);
let idOffset = ID_POOL.length;

/** uuid4 as 32 lowercase hex digits, the form oslo uses for every id. */
export function newId(): string {
  if (idOffset === ID_POOL.length) {
    randomFillSync(ID_POOL);
    idOffset = 0;
  }
  const o = idOffset;
  idOffset += 16;
  ID_POOL[o + 6] = (ID_POOL[o + 6] & 0x0f) | 0x40; // version 4
  ID_POOL[o + 8] = (ID_POOL[o + 8] & 0x3f) | 0x80; // RFC 4122 variant
  return ID_POOL.toString('hex', o, o + 16);
}

export function encodeRequest(r: RequestFields): Buffer {
  // Key order follows what Python emits (section 7), which makes captures comparable.
  const m: Record<string, unknown> = { method: r.method, args: r.args };
  if (r.namespace !== undefined) m.namespace = r.namespace;
  if (r.version !== undefined) m.version = r.version;
  if (r.call) {
    m._msg_id = r.call.msgId;
    m._reply_q = r.call.replyQ;
    m._timeout = r.call.monitorTimeout;
    if (r.call.stream) m._courier_stream = true;
  }
  m._unique_id = r.uniqueId;
  for (const key in r.context) m[CONTEXT_PREFIX + key] = r.context[key];
  return wrap(m);
}

export function encodeReply(r: Reply): Buffer {
  const m: Record<string, unknown> = { result: r.result, failure: r.failure, ending: r.ending, _msg_id: r.msgId, _unique_id: newId() };
  if (r.seq !== undefined) m._courier_seq = r.seq;
  return wrap(m);
}

/** The failure field is itself JSON text inside the message (section 9). */
export function failureText(failure: WireFailure): string {
  return JSON.stringify(failure);
}

export function decodeRequest(body: Buffer): Request {
  const m = unwrap(body);
  const replyTo =
    typeof m._msg_id === 'string' && typeof m._reply_q === 'string' ? { msgId: m._msg_id, replyQ: m._reply_q } : undefined;
  const fail = (why: string): never => {
    throw new DecodeError(why, replyTo);
  };
  if (m.__envelopeError) fail(String(m.__envelopeError));
  if (typeof m.method !== 'string' || !m.method) fail('request has no method name');
  const args = m.args === undefined ? {} : m.args;
  if (!isPlainObject(args)) fail(`args must be an object of keyword arguments, got ${describeType(args)}`);
  if (depthExceeds(args, MAX_DEPTH)) fail(`args are nested deeper than ${MAX_DEPTH} levels`);
  if (m.namespace !== undefined && m.namespace !== null && typeof m.namespace !== 'string') fail('namespace must be a string');
  // An explicit null version matches no endpoint in oslo; keep it distinguishable.
  if ('version' in m && typeof m.version !== 'string') fail(`version must be a string like "1.0", got ${JSON.stringify(m.version)}`);

  const context: Context = {};
  for (const key of Object.keys(m)) {
    if (key.startsWith(CONTEXT_PREFIX)) defineOwn(context, key.slice(CONTEXT_PREFIX.length), m[key]);
  }
  // The context is sent on with every call the handler makes: refuse what would break that.
  if (depthExceeds(context, MAX_DEPTH)) fail(`the context is nested deeper than ${MAX_DEPTH} levels`);
  const timeout = m._timeout;
  return {
    method: m.method as string,
    args: args as Record<string, unknown>,
    namespace: typeof m.namespace === 'string' ? m.namespace : undefined,
    version: typeof m.version === 'string' ? m.version : '1.0',
    uniqueId: typeof m._unique_id === 'string' ? m._unique_id : undefined,
    msgId: replyTo?.msgId,
    replyQ: replyTo?.replyQ,
    monitorTimeout: typeof timeout === 'number' && Number.isFinite(timeout) ? timeout : null,
    stream: m._courier_stream === true,
    context,
  };
}

export function decodeReply(body: Buffer): Reply {
  const m = unwrap(body);
  if (m.__envelopeError) throw new DecodeError(String(m.__envelopeError));
  if (typeof m._msg_id !== 'string') throw new DecodeError('reply has no _msg_id');
  return {
    msgId: m._msg_id,
    result: m.result ?? null,
    failure: m.failure === undefined || m.failure === null ? null : typeof m.failure === 'string' ? m.failure : JSON.stringify(m.failure),
    // oslo callers never finish without `ending`; we treat a missing one as the end
    // rather than hang, since no peer we know sends partial replies without it.
    ending: m.ending === undefined ? true : m.ending === true,
    seq: typeof m._courier_seq === 'number' ? m._courier_seq : undefined,
  };
}

function wrap(message: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ 'oslo.version': ENVELOPE_VERSION, 'oslo.message': JSON.stringify(message) }));
}

function unwrap(body: Buffer): Record<string, unknown> {
  let outer: unknown;
  try {
    outer = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new DecodeError(`body is not JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(outer)) throw new DecodeError(`body must be a JSON object, got ${describeType(outer)}`);
  if (!('oslo.version' in outer) || !('oslo.message' in outer)) return outer; // legacy 1.0: the dict is the message
  const inner = outer['oslo.message'];
  let message: unknown;
  try {
    message = typeof inner === 'string' ? JSON.parse(inner) : inner;
  } catch (err) {
    throw new DecodeError(`oslo.message is not JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(message)) throw new DecodeError(`oslo.message must be a JSON object, got ${describeType(message)}`);
  const version = outer['oslo.version'];
  if (typeof version !== 'string' || !/^2\.0(\.\d+)?$/.test(version)) {
    // Still hand back the reply address so a call gets a clear error instead of a timeout.
    return { ...message, __envelopeError: `unsupported envelope version ${JSON.stringify(version)} (this peer speaks ${ENVELOPE_VERSION})` };
  }
  return message;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** JSON.parse makes `__proto__` an own key; copy it as data, never as a prototype. */
function defineOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function depthExceeds(root: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d >= max) return true;
    for (const k in v) stack.push([(v as Record<string, unknown>)[k], d + 1]);
  }
  return false;
}
