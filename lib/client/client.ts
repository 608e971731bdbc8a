/**
 * The caller's side of the rpc API: `call`, `cast`, `fanoutCast` and `multicall` on a
 * topic, and typed proxies over them. One reply queue per client; replies are matched
 * to waiting calls by `_msg_id`. Every wait is bounded: a call that times out leaves no
 * timer and no pending entry behind.
 *
 * Delivery promise, as oslo's: call and cast are at most once from the caller's view
 * (nothing is resent); a call or cast that no queue can take fails at once with
 * `UndeliverableError` instead of vanishing.
 */
import type { Logger } from '../logger';
import { outgoingContext } from '../context';
import { RpcTimeoutError, UndeliverableError, VersionCapError, failureFromJson } from '../errors';
import { type Reply, decodeReply, encodeRequest, newId } from '../protocol/envelope';
import { isCompatible, isVersion } from '../protocol/version';
import type { PublishTarget, Transport } from '../transport/transport';
import type { Class } from '../../decorators/metadata';
import { createProxy } from './proxy';
import type { ProxyOptions, RpcProxy } from './types';

/** A request in the seed's functional form: nova's `{method, args}`. */
export interface RpcMessage {
  method: string;
  /** Keyword arguments (default `{}`). */
  args?: Record<string, unknown>;
}

export interface CallOptions {
  /** Send to `<topic>.<server>`: that host only. */
  server?: string;
  /** Milliseconds to wait for the reply (for a multicall: for each next item). Default 60 000. */
  timeout?: number;
  /** API version to stamp on the message, `X.Y`. */
  version?: string;
  /** Refuse locally, before sending, a message whose version this cap cannot serve. */
  versionCap?: string;
  namespace?: string;
  /** Control exchange (default: the client's, `openstack`). */
  exchange?: string;
  /** Request context; merged over the context of the handler we are called from. */
  context?: Record<string, unknown>;
  /** Seconds: ask the server for call-monitor heartbeats and fail early when they stop. */
  heartbeat?: number;
}

export interface ClientOptions {
  exchange: string;
  timeout: number;
  logger: Logger;
}

export const DEFAULT_TIMEOUT = 60_000;
export const MAX_TIMER_MS = 2 ** 31 - 1;

interface Pending {
  onReply(reply: Reply): void;
  fail(err: unknown): void;
  /** Where the request went (`topic` or `topic.server`), for error messages. */
  where: string;
}

export class RpcClient {
  private readonly pending = new Map<string, Pending>();
  private replyQ?: string;
  private replyQReady?: Promise<string>;
  private closed = false;

  /** @internal Use `createClient()` or `app.client`. */
  constructor(
    private readonly transport: Transport,
    private readonly options: ClientOptions,
  ) {
    transport.onReturn((msgId) => {
      const p = this.pending.get(msgId);
      p?.fail(new UndeliverableError(`no queue is bound for ${JSON.stringify(p.where)}: no server is subscribed to that topic or host`));
    });
  }

  /** A typed client for the `@RpcService` class `cls`. */
  proxy<T>(cls: Class<T>, options: ProxyOptions = {}): RpcProxy<T> {
    return createProxy(this, cls, options);
  }

  /** Call `method` on one server of `topic` and wait for its return value. */
  call<R = unknown>(topic: string, message: RpcMessage, opts: CallOptions = {}): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const call = new PendingCall(this, topic, message.method, opts.timeout ?? this.options.timeout, opts.heartbeat, resolve as (v: unknown) => void, reject);
      this.send(topic, message, opts, call, false).catch((err: unknown) => call.fail(err));
    });
  }

  /** Call a generator method and receive its items as they are produced. */
  multicall<Y = unknown>(topic: string, message: RpcMessage, opts: CallOptions = {}): AsyncIterable<Y> {
    const client = this;
    return {
      [Symbol.asyncIterator]() {
        const stream = new PendingStream<Y>(client, topic, message.method, opts.timeout ?? client.options.timeout);
        client.send(topic, message, opts, stream, true).catch((err: unknown) => stream.fail(err));
        return stream;
      },
    };
  }

  /** One-way: resolves once the broker holds the message; the server's outcome is not reported. */
  async cast(topic: string, message: RpcMessage, opts: CallOptions = {}): Promise<void> {
    await this.send(topic, message, opts);
  }

  /** One-way to every server of `topic`. */
  async fanoutCast(topic: string, message: RpcMessage, opts: CallOptions = {}): Promise<void> {
    await this.send(topic, message, { ...opts, server: undefined }, undefined, false, true);
  }

  /** Stop waiting for replies and release the connection. Pending calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('the client was closed before the reply arrived');
    for (const p of [...this.pending.values()]) p.fail(err);
    this.pending.clear();
    await this.transport.close();
  }

  /** @internal */
  forget(msgId: string): void {
    this.pending.delete(msgId);
  }

  private async send(topic: string, message: RpcMessage, opts: CallOptions, waiter?: Pending & { msgId: string; timeout: number; arm(): void }, stream = false, fanout = false): Promise<void> {
    if (this.closed) throw new Error('the client is closed');
    checkMessage(topic, message);
    const version = checkOptions(opts);
    if (opts.versionCap !== undefined && (version === undefined || !isCompatible(opts.versionCap, version))) {
      throw new VersionCapError(`${topic}.${message.method} needs version ${version ?? '(none)'}, above the version cap ${opts.versionCap}: not sent`);
    }
    const context = outgoingContext(opts.context);
    const uniqueId = newId();
    let call;
    if (waiter) {
      const replyQ = this.replyQ ?? (await this.replyQueue());
      call = { msgId: waiter.msgId, replyQ, monitorTimeout: opts.heartbeat ?? null, stream };
      waiter.where = opts.server ? `${topic}.${opts.server}` : topic;
      this.pending.set(waiter.msgId, waiter);
      waiter.arm();
    }
    const body = encodeRequest({ method: message.method, args: message.args ?? {}, namespace: opts.namespace, version, uniqueId, call, context });
    const target: PublishTarget = { exchange: opts.exchange ?? this.options.exchange, topic, server: opts.server, fanout };
    if (waiter) await this.transport.publish(target, body, { id: waiter.msgId, expirationMs: waiter.timeout, confirm: false });
    else await this.transport.publish(target, body, { id: uniqueId });
  }

  private replyQueue(): Promise<string> {
    this.replyQReady ??= this.transport.replyQueue((body) => this.onReply(body)).then(
      (q) => (this.replyQ = q),
      (err) => {
        this.replyQReady = undefined;
        throw err;
      },
    );
    return this.replyQReady;
  }

  private onReply(body: Buffer): void {
    let reply: Reply;
    try {
      reply = decodeReply(body);
    } catch (err) {
      this.options.logger.warn(`dropped an unreadable reply: ${(err as Error).message}`);
      return;
    }
    const p = this.pending.get(reply.msgId);
    if (p) p.onReply(reply);
    else this.options.logger.debug(`no call waiting for reply ${reply.msgId} (it timed out or was abandoned)`);
  }
}

/** A reply that carries neither result nor failure nor end: oslo's call-monitor ping. */
function isHeartbeat(r: Reply): boolean {
  return !r.ending && r.seq === undefined && r.result === null && r.failure === null;
}

class PendingCall implements Pending {
  readonly msgId = newId();
  where = '';
  private timer?: NodeJS.Timeout;
  private monitor?: NodeJS.Timeout;
  private result: unknown = null;
  private done = false;

  constructor(
    private readonly client: RpcClient,
    private readonly topic: string,
    private readonly method: string,
    readonly timeout: number,
    private readonly heartbeat: number | undefined,
    private readonly resolve: (v: unknown) => void,
    private readonly reject: (e: unknown) => void,
  ) {}

  arm(): void {
    this.timer = setTimeout(() => this.fail(new RpcTimeoutError(`no reply to ${this.topic}.${this.method} within ${this.timeout} ms`)), this.timeout);
    this.watch();
  }

  onReply(r: Reply): void {
    if (r.failure !== null) return this.fail(failureFromJson(r.failure));
    if (isHeartbeat(r)) return this.watch();
    // The last non-null result wins, as in oslo's reply waiter (legacy two-part replies).
    if (r.result !== null) this.result = r.seq === undefined ? r.result : [...((this.result as unknown[] | null) ?? []), r.result];
    if (r.ending) this.finish(() => this.resolve(this.result));
  }

  fail(err: unknown): void {
    this.finish(() => this.reject(err));
  }

  private watch(): void {
    if (this.heartbeat === undefined) return;
    clearTimeout(this.monitor);
    const ms = this.heartbeat * 1000;
    this.monitor = setTimeout(() => this.fail(new RpcTimeoutError(`${this.topic}.${this.method}: the server sent no heartbeat for ${ms} ms`)), ms);
  }

  private finish(settle: () => void): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    clearTimeout(this.monitor);
    this.client.forget(this.msgId);
    settle();
  }
}

/** The receiving end of a multicall: an async iterator fed by replies. */
class PendingStream<Y> implements Pending, AsyncIterator<Y> {
  readonly msgId = newId();
  where = '';
  private readonly items: Y[] = [];
  private error?: unknown;
  private ended = false;
  private waiter?: { resolve: (r: IteratorResult<Y>) => void; reject: (e: unknown) => void };
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly client: RpcClient,
    private readonly topic: string,
    private readonly method: string,
    readonly timeout: number,
  ) {}

  arm(): void {
    this.restartTimer();
  }

  onReply(r: Reply): void {
    if (this.ended) return;
    if (r.failure !== null) return this.end(failureFromJson(r.failure));
    if (isHeartbeat(r)) return this.restartTimer();
    if (r.seq !== undefined && !r.ending) this.push(r.result as Y);
    else if (r.seq === undefined && r.result !== null) this.push(r.result as Y); // a plain result: one item
    if (r.ending) this.end();
    else this.restartTimer();
  }

  fail(err: unknown): void {
    if (!this.ended) this.end(err);
  }

  next(): Promise<IteratorResult<Y>> {
    if (this.items.length) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.ended) {
      if (this.error !== undefined) {
        const e = this.error;
        this.error = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** The consumer stopped early (`break`): stop listening; late items are dropped. */
  return(): Promise<IteratorResult<Y>> {
    this.items.length = 0;
    this.error = undefined;
    if (!this.ended) this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  private push(item: Y): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  private end(err?: unknown): void {
    this.ended = true;
    clearTimeout(this.timer);
    this.client.forget(this.msgId);
    if (err !== undefined) this.error = err;
    if (this.waiter && !this.items.length) {
      const w = this.waiter;
      this.waiter = undefined;
      if (this.error !== undefined) {
        const e = this.error;
        this.error = undefined;
        w.reject(e);
      } else {
        w.resolve({ value: undefined, done: true });
      }
    }
  }

  private restartTimer(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.end(new RpcTimeoutError(`no item from ${this.topic}.${this.method} within ${this.timeout} ms`)), this.timeout);
  }
}

function checkMessage(topic: string, message: RpcMessage): void {
  if (typeof topic !== 'string' || !topic) throw new TypeError('topic must be a non-empty string');
  if (!message || typeof message.method !== 'string' || !message.method) throw new TypeError('message.method must be a non-empty string');
  const args = message.args;
  if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
    throw new TypeError('message.args must be an object of keyword arguments');
  }
}

function checkOptions(opts: CallOptions): string | undefined {
  // Node fires timers above 2^31-1 ms at once; refuse them rather than time out instantly.
  if (opts.timeout !== undefined && !(typeof opts.timeout === 'number' && opts.timeout > 0 && opts.timeout <= MAX_TIMER_MS)) {
    throw new TypeError(`timeout must be a number of milliseconds between 1 and ${MAX_TIMER_MS}, got ${String(opts.timeout)}`);
  }
  if (opts.heartbeat !== undefined && !(typeof opts.heartbeat === 'number' && opts.heartbeat >= 2 && opts.heartbeat * 1000 <= MAX_TIMER_MS)) {
    throw new TypeError(`heartbeat must be a number of seconds >= 2 (oslo sends none below that), got ${String(opts.heartbeat)}`);
  }
  if (opts.version !== undefined && !isVersion(opts.version)) throw new TypeError(`version must look like "1.3", got ${JSON.stringify(opts.version)}`);
  if (opts.versionCap !== undefined && !isVersion(opts.versionCap)) throw new TypeError(`versionCap must look like "1.3", got ${JSON.stringify(opts.versionCap)}`);
  if (opts.server !== undefined && (typeof opts.server !== 'string' || !opts.server)) throw new TypeError('server must be a non-empty string');
  return opts.version;
}
